"""One candidate's training in a worker process: the job, the parent side and the child side.

Training runs in a child process (``python -m mcunas.train.worker JOB.json``),
never in the search's own: TensorFlow's memory is returned after every
candidate, and a crash or abort inside TF or TFLM fails one trial instead
of the campaign.  The protocol is files in the job's folder:

* the parent writes ``job.json`` (a :class:`TrainJob`) and starts the child;
* the child appends one ``epoch <n> <val_accuracy>`` line per epoch to
  ``progress.txt`` and finally writes ``result.json`` — atomically, so a
  child killed half-way leaves no result the parent could mistake for a
  real one; any exception becomes ``{"error": "<type>: <message>"}``;
* the parent relays each new epoch line and calls ``poll`` every half
  second; whatever ``poll`` raises (a pruning decision, Ctrl-C) kills the
  child first.  The child dies with the parent (PR_SET_PDEATHSIG), so
  nothing trains on orphaned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

POLL_S = 0.5


@dataclass(frozen=True)
class TrainJob:
    """Everything a worker needs to train, export and evaluate one architecture."""

    arch: str
    data: str
    eval_data: str | None  # the test set; None: the eval split of ``data`` (mcunas.data.split)
    epochs: int
    batch: int
    recipe: str
    seed: int
    out_dir: str
    qat_epochs: int = 0  # quantisation-aware fine-tuning epochs after training (mcunas.train.qat)
    split_seed: int = 0  # draws the validation set: the campaign's seed, the same for all its candidates

    @classmethod
    def read(cls, path: Path) -> "TrainJob":
        return cls(**json.loads(Path(path).read_text()))


def run_in_worker(job: TrainJob, on_epoch: Callable[[int, float], None],
                  poll: Callable[[], None] = lambda: None) -> dict:
    """Run ``job`` in a child process; returns its result dict, or ``{"error": reason}``."""
    job_dir = Path(job.out_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("progress.txt", "result.json"):
        (job_dir / stale).unlink(missing_ok=True)
    (job_dir / "job.json").write_text(json.dumps(asdict(job), indent=2))
    relayed = 0
    with (job_dir / "worker.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mcunas.train.worker", str(job_dir / "job.json")],
                                stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        try:
            while proc.poll() is None:
                time.sleep(POLL_S)
                relayed = _relay_epochs(job_dir, relayed, on_epoch)
                poll()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    _relay_epochs(job_dir, relayed, on_epoch)
    result_file = job_dir / "result.json"
    if not result_file.exists():
        return {"error": f"worker exited with status {proc.returncode} and no result (see {job_dir / 'worker.log'})"}
    return json.loads(result_file.read_text())


def _relay_epochs(job_dir: Path, relayed: int, on_epoch: Callable[[int, float], None]) -> int:
    path = job_dir / "progress.txt"
    if not path.exists():
        return relayed
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.startswith("epoch ")]
    for _, epoch, accuracy in lines[relayed:]:
        on_epoch(int(epoch), float(accuracy))
    return len(lines)


def _die_with_parent() -> None:
    """Linux: the worker gets SIGKILL when the search process dies, so none trains on orphaned."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main(job_path: str) -> int:
    """The child: train the job, report epochs, write the result."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    job_file = Path(job_path)
    progress = job_file.with_name("progress.txt")

    def on_epoch(epoch: int, accuracy: float) -> None:
        with progress.open("a") as f:
            f.write(f"epoch {epoch} {accuracy:.6f}\n")

    from mcunas.atomic import write_atomic
    from mcunas.train import train_candidate

    try:
        result = train_candidate(TrainJob.read(job_file), on_epoch)
        status = 0
    except Exception as exc:  # reported to the search as a failed trial, with its reason
        last = traceback.extract_tb(exc.__traceback__)[-1]
        result = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                  "where": f"{Path(last.filename).name}:{last.lineno}"}
        status = 1
    write_atomic(job_file.with_name("result.json"), json.dumps(result, indent=2).encode())
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
