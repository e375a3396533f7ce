"""Scale-out benchmark: rejection-only trials/s with 1, 2 and 4 workers, PostgreSQL vs journal file,
and the time from a worker's death to its trial being failed and queued again.

Run from the repository root (starts its own throw-away PostgreSQL server)::

    python tests/bench/scaleout.py [--seconds 10] [--heartbeat 2]

Rejection-only load: every worker asks, samples, costs, records and tells
candidates under a 1 KB SRAM budget that nothing meets — the path a campaign
takes for every over-budget candidate (:func:`mcunas.bench.search.ask_and_cost`).
Figures are total trials/s over all workers for a fixed wall time; one run,
so compare within the table, not across machines.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for pg_server


def _worker(storage_url: str, study_name: str, seconds: float, seed: int, counter) -> None:
    import optuna

    from mcunas.bench.search import ask_and_cost
    from mcunas.budget import PAPER_BUDGET, parse_budget
    from mcunas.search.objectives import make_sampler
    from mcunas.search.storage import open_storage
    from mcunas.spaces import load_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url),
                              sampler=make_sampler("random", seed))
    space, budget = load_space("mobilenet_v2"), parse_budget(sram="1KB", defaults=PAPER_BUDGET)
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        ask_and_cost(study, space, budget, ["capacity", "sram"])
        n += 1
    with counter.get_lock():
        counter.value += n


def trials_per_s(storage_url: str, workers: int, seconds: float) -> float:
    import optuna

    from mcunas.search.storage import open_storage

    name = f"load-{workers}-{time.monotonic_ns()}"
    optuna.create_study(study_name=name, storage=open_storage(storage_url), directions=["maximize", "minimize"])
    counter = mp.Value("l", 0)
    procs = [mp.Process(target=_worker, args=(storage_url, name, seconds, i, counter)) for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value / seconds


def _hold_a_trial(storage_url: str, study_name: str, heartbeat_s: int, ready) -> None:
    """A worker that runs a trial in ``study.optimize`` (so Optuna's heartbeat beats), then waits to be killed."""
    import optuna

    from mcunas.search.storage import open_storage

    def hold(trial):
        trial.suggest_float("x", 0, 1)
        ready.set()
        time.sleep(3600)

    study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url, heartbeat_s))
    study.optimize(hold, n_trials=1)


def death_to_retry_s(storage_url: str, heartbeat_s: int) -> float:
    """SIGKILL a worker holding a RUNNING trial; time until a live worker has failed and re-queued it.

    The live worker checks every ``heartbeat_s`` like a campaign's training loop does.
    """
    import optuna

    from mcunas.search.storage import open_storage

    name = f"death-{time.monotonic_ns()}"
    storage = open_storage(storage_url, heartbeat_s)
    study = optuna.create_study(study_name=name, storage=storage)
    ready = mp.Event()
    victim = mp.Process(target=_hold_a_trial, args=(storage_url, name, heartbeat_s, ready))
    victim.start()
    ready.wait(60)
    time.sleep(heartbeat_s)  # let it beat at least once
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    victim.join()
    while True:
        optuna.storages.fail_stale_trials(study)
        if any(t.state == optuna.trial.TrialState.WAITING for t in study.get_trials(deepcopy=False)):
            return time.monotonic() - killed_at
        time.sleep(heartbeat_s)


def main() -> int:
    import warnings

    warnings.simplefilter("ignore")
    from pg_server import postgres_server

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="wall time per measurement (default 10)")
    ap.add_argument("--heartbeat", type=int, default=2, help="heartbeat seconds for the death test (default 2)")
    args = ap.parse_args()
    with postgres_server() as pg, tempfile.TemporaryDirectory() as tmp:
        storages = {"postgresql": pg, "journal file": f"journal:{tmp}/bench.journal"}
        print(f"rejection-only trials/s (all workers together, {args.seconds:g} s each, 2 cores)")
        print(f"{'storage':<14}" + "".join(f"{w:>12} worker{'s' if w > 1 else ' '}" for w in (1, 2, 4)))
        for label, url in storages.items():
            rates = [trials_per_s(url, w, args.seconds) for w in (1, 2, 4)]
            print(f"{label:<14}" + "".join(f"{r:>19,.1f}" for r in rates))
        delay = death_to_retry_s(pg, args.heartbeat)
        print(f"postgresql, heartbeat {args.heartbeat} s (grace {2 * args.heartbeat} s): worker SIGKILLed -> "
              f"trial failed and queued again after {delay:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
