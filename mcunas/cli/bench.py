"""``mcunas bench ...``: benchmarks that print figures (never timed unit tests).

Each benchmark lives in ``mcunas/bench/<name>.py`` with ``register(sub)``.
Machines here are shared and noisy, so benchmarks report medians of
repeated runs and ratios measured within one run.
"""

from __future__ import annotations

import importlib

BENCHES = ["cost", "search", "fidelity", "data", "latency", "worker", "memory_plan", "supernet"]


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks that print figures",
                       description="Run a benchmark and print its figures (medians, ratios).")
    inner = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name in BENCHES:
        importlib.import_module(f"mcunas.bench.{name}").register(inner)
