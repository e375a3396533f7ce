"""Benchmark: how the supernet score's recalibration settings move Kendall tau and the seconds per score.

Takes the JSON of ``mcunas bench supernet ... --save-supernet FILE --json``
(its members and their stand-alone float / int8 validation accuracies, the
ground truth) and that supernet file, and scores the same members again
with each number of BatchNorm calibration images given, printing per
setting the median in-process seconds per score (the split already read,
as in a warm worker) and tau against the stand-alone accuracies.  No
stand-alone training is repeated, so settings are compared on one ground
truth.

Usage (from the repo root; the generated set is made again, it is
deterministic)::

    python tests/bench/supernet_rescore.py bench.json supernet.npz --demo-images 2000 --images 64,128,256,512
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # this checkout's mcunas, not an installed one


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bench_json", type=Path)
    p.add_argument("supernet", type=Path)
    p.add_argument("--data", help="the bench's --data (default: generate its demo set again)")
    p.add_argument("--demo-images", type=int, default=800)
    p.add_argument("--images", default="64,128,256,512", help="calibration image counts to compare")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    from mcunas.bench.supernet import demo_set, kendall_tau
    from mcunas.supernet import score
    from mcunas.train.worker import TrainJob

    bench = json.loads(a.bench_json.read_text())
    rows = bench["rows"]
    with tempfile.TemporaryDirectory() as tmp:
        data = a.data or demo_set(Path(tmp) / "demo", a.seed, a.demo_images)
        jobs = [TrainJob(arch=r["arch"], data=data, eval_data=None, epochs=0, batch=32, recipe="fast", seed=a.seed,
                         out_dir=tmp, split_seed=a.seed, kind="score", supernet=str(a.supernet.resolve()))
                for r in rows]
        score.score_candidate(jobs[0])  # reads the file and the split once, as a warm worker has
        out = []
        for count in (int(n) for n in a.images.split(",")):
            score.CALIBRATION_IMAGES = count
            score._scoring_sets.cache_clear()
            score.score_candidate(jobs[0])
            seconds, accuracies = [], []
            for job in jobs:
                start = time.perf_counter()
                accuracies.append(score.score_candidate(job)["supernet_accuracy"])
                seconds.append(time.perf_counter() - start)
            out.append({"calibration_images": count, "median_score_s": round(statistics.median(seconds), 3),
                        "kendall_tau_float": round(kendall_tau(accuracies, [r["float_accuracy"] for r in rows]), 3),
                        "kendall_tau_int8": round(kendall_tau(accuracies, [r["int8_accuracy"] for r in rows]), 3),
                        "supernet_accuracy": [round(x, 4) for x in accuracies]})
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"bench": str(a.bench_json), "supernet": str(a.supernet), "members": len(rows), "settings": out},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
