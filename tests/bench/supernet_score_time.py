"""Benchmark: where a supernet score's time goes, recalibration against validation, at one resolution.

Times :func:`mcunas.supernet.score.recalibrated_stats` (256 calibration
images) and :func:`mcunas.supernet.score.member_accuracy` (the validation
share) for the members ``mcunas bench supernet --spread macs`` would pick,
on untrained supernet weights (what a score costs does not depend on them),
after one warm-up score.  Prints each member's seconds and the medians.

To compare two versions of the code, run it from each checkout in turn
(it imports the ``mcunas`` of the checkout it lives in), alternating, on
the same load::

    python tests/bench/supernet_score_time.py --resolution 96 --members 6
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # this checkout's mcunas, not an installed one


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="mobilenet_v2")
    p.add_argument("--resolution", type=int, default=96)
    p.add_argument("--members", type=int, default=6)
    p.add_argument("--demo-images", type=int, default=800)
    a = p.parse_args()

    import tensorflow as tf

    from mcunas.arch import parse_arch
    from mcunas.bench.supernet import bench_members, demo_set
    from mcunas.spaces import load_space
    from mcunas.supernet import score
    from mcunas.supernet.members import largest_shape, member_slots
    from mcunas.supernet.net import initial_weights, member_params

    space = load_space(a.space)
    weights = {k: tf.constant(v) for k, v in initial_weights(largest_shape(space), 0).items()}
    with tempfile.TemporaryDirectory() as tmp:
        data = demo_set(Path(tmp) / "demo", 0, a.demo_images)

        def timed(text: str):
            arch = parse_arch(text)
            calibration, images, labels = score.scoring_sets(data, None, a.resolution, arch.in_channels, 0, 0)
            start = time.perf_counter()
            params = member_params(weights, arch, member_slots(space, arch))
            stats = score.recalibrated_stats(params, arch, calibration)
            middle = time.perf_counter()
            score.member_accuracy(params, arch, stats, images, labels)
            return middle - start, time.perf_counter() - middle

        members = bench_members(space, a.members, a.resolution, "macs")
        timed(members[0])  # warm-up: TensorFlow's kernels
        rows = [timed(m) for m in members]
    for (recal, val), m in zip(rows, members):
        print(f"recalibration {recal:.3f} s  validation {val:.3f} s  {m}")
    print(f"median: recalibration {statistics.median(r for r, _ in rows):.3f} s, validation "
          f"{statistics.median(v for _, v in rows):.3f} s, score {statistics.median(r + v for r, v in rows):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
