"""``mcunas bench worker``: wall time a trained candidate spends outside ``model.fit``, fresh vs warm worker.

Trains the same architecture (``--preset``, default ``mlperf-vww``) for
``--candidates`` seeds through :class:`mcunas.train.worker.TrainingWorker`
in one run, alternating: **fresh** (a new worker process per candidate,
TensorFlow imported each time, as before the warm worker) and **warm** (one
worker for all; its first candidate waits for its start).  A candidate's wall time runs from the end of the previous candidate
to the end of its own, so a worker's start, data loading, the export, the
int8 evaluation and the TFLM measurement all count; its overhead is that
wall time minus ``train_s`` (the worker's own timing of ``model.fit``).
The figures are medians over the candidates of each mode and the overhead
as a share of training time (the goal is at most 25 % at 5 epochs on 500
images).  Also measured: how long a pruned candidate takes to stop when
the warm worker is asked between batches, against a fresh worker's start
(what a kill would cost instead), and the warm worker's resident size.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("worker", help="overhead per trained candidate: fresh worker per candidate vs warm worker",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--data", metavar="DIR",
                   help="dataset (default ../shared/data/vww01_dev if present, else a generated synth set)")
    p.add_argument("--preset", default="mlperf-vww", help="architecture trained (default mlperf-vww)")
    p.add_argument("--candidates", type=int, default=3, help="candidates (seeds) per mode (default 3)")
    p.add_argument("--epochs", type=int, default=5, help="epochs per candidate (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


class _StopAtFirstEpoch(Exception):
    pass


def run(args) -> int:
    from mcunas.bench.data import default_data
    from mcunas.errors import UserError
    from mcunas.output import print_figures
    from mcunas.presets import preset_arch
    from mcunas.train.worker import RESTART_EVERY, TrainingWorker, TrainJob, rss_bytes

    if min(args.candidates, args.epochs) < 1:
        raise UserError("--candidates and --epochs must be at least 1")
    data = str(Path(args.data) if args.data else default_data())
    arch = str(preset_arch(args.preset))
    figures = {"data": data, "arch": args.preset, "epochs": args.epochs, "candidates": args.candidates}
    fresh, warm = TrainingWorker(restart_every=1), TrainingWorker(restart_every=RESTART_EVERY)
    rows = {"fresh": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        def job(mode: str, seed: int) -> TrainJob:
            return TrainJob(arch=arch, data=data, eval_data=None, epochs=args.epochs, batch=32, recipe="fast",
                            seed=seed, out_dir=f"{tmp}/{mode}/{seed}")

        try:
            for seed in range(args.candidates):  # alternating, so a shared machine's drift hits both modes
                rows["fresh"].append(_timed(fresh, job("fresh", seed)))
                fresh.close()  # its successor starts with the next fresh candidate, not during a warm one
                rows["warm"].append(_timed(warm, job("warm", seed)))
            figures["warm_worker_rss_mib"] = round(rss_bytes(warm.proc.pid) / 2**20, 1)
            figures["stop_between_batches_s"] = round(_stop_time(warm, job("warm", args.candidates)), 2)
        finally:
            fresh.close()
            warm.close()
    for mode, mode_rows in rows.items():
        figures.update(_summary(mode, mode_rows))
    figures["overhead_ratio_fresh_over_warm"] = round(figures["fresh_overhead_s"] / figures["warm_overhead_s"], 2)
    print_figures(figures, args.json)
    return 0


def _timed(worker, job) -> dict:
    """One candidate: wall time (from the end of the previous one), fit time, worker start wait."""
    from mcunas.errors import UserError

    begin, sent_unix = time.monotonic(), time.time()
    result = worker.run(job, lambda epoch, accuracy: None)
    wall_s = time.monotonic() - begin
    if "error" in result:
        raise UserError(f"benchmark candidate failed: {result['error']}")
    started = [ln.split() for ln in (Path(job.out_dir) / "progress.txt").read_text().splitlines()
               if ln.startswith("started ")]
    return {"wall_s": wall_s, "train_s": result["train_s"], "start_wait_s": float(started[0][2]) - sent_unix}


def _summary(mode: str, rows: list[dict]) -> dict:
    overheads = [r["wall_s"] - r["train_s"] for r in rows]
    return {
        f"{mode}_wall_s": round(statistics.median(r["wall_s"] for r in rows), 2),
        f"{mode}_train_s": round(statistics.median(r["train_s"] for r in rows), 2),
        f"{mode}_worker_start_wait_s": round(statistics.median(r["start_wait_s"] for r in rows), 2),
        f"{mode}_overhead_s": round(statistics.median(overheads), 2),
        f"{mode}_overhead_share_of_training": round(statistics.median(
            o / r["train_s"] for o, r in zip(overheads, rows)), 3),
        f"{mode}_overhead_s_each": " ".join(f"{o:.1f}" for o in overheads),
    }


def _stop_time(worker, job) -> float:
    """Seconds from a pruning decision at epoch 1 until the warm worker is free for the next candidate."""
    asked = []

    def prune(epoch: int, accuracy: float) -> None:
        asked.append(time.monotonic())
        raise _StopAtFirstEpoch

    try:
        worker.run(job, prune)
    except _StopAtFirstEpoch:
        pass
    stopped = time.monotonic() - asked[0]
    if worker.proc is None or worker.jobs_done == 0:
        raise RuntimeError("the warm worker was killed instead of stopping between batches")
    return stopped

