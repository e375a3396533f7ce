"""Worker process for one candidate: ``python -m mcunas.train.worker JOB.json``.

Reads the job, writes one ``epoch <n> <val_accuracy>`` line per epoch to
``progress.txt`` beside it (the parent reports these to Optuna and may kill
the worker to prune), and finally ``result.json`` — atomically, so a worker
killed half-way leaves no result the parent could mistake for a real one.
Any exception becomes ``{"error": "<type>: <message>"}`` and exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def main(job_path: str) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    job_file = Path(job_path)
    job = json.loads(job_file.read_text())
    progress = job_file.with_name("progress.txt")
    result_file = job_file.with_name("result.json")

    def on_epoch(epoch: int, accuracy: float) -> None:
        with progress.open("a") as f:
            f.write(f"epoch {epoch} {accuracy:.6f}\n")

    from mcunas.atomic import write_atomic
    from mcunas.train import train_candidate

    try:
        result = train_candidate(job, on_epoch)
        status = 0
    except Exception as exc:  # reported to the search as a failed trial, with its reason
        last = traceback.extract_tb(exc.__traceback__)[-1]
        result = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                  "where": f"{Path(last.filename).name}:{last.lineno}"}
        status = 1
    write_atomic(result_file, json.dumps(result, indent=2).encode())
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
