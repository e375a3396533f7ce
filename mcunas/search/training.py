"""One candidate's training, run in a worker process and watched from the search.

The worker (:mod:`mcunas.train.worker`) trains, exports, evaluates and
measures; this side writes its job file, relays each epoch's accuracy to
Optuna (and to the live view), prunes by killing the worker when Optuna says
so, and during long trainings on an RDB storage fails other workers' stale
trials so their candidates are queued again promptly.  The worker dies with
the search process (PR_SET_PDEATHSIG), so nothing trains on orphaned.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

from mcunas.search.progress import Progress


def train_in_worker(c, trial, arch: str, progress: Progress) -> dict:
    """Train ``arch`` for ``trial`` of campaign ``c`` in a worker process, relaying epochs (and pruning).

    Returns the worker's result dict, or ``{"error": reason}``.
    """
    import optuna

    from mcunas.search.recovery import renew_lease

    job_dir = c.out_dir / "trials" / f"{trial.number:05d}"
    job_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("progress.txt", "result.json"):
        (job_dir / stale).unlink(missing_ok=True)
    job = {"arch": arch, "data": c.data, "eval_data": c.eval_data, "epochs": c.epochs, "batch": c.batch,
           "recipe": c.recipe, "seed": c.seed + trial.number, "out_dir": str(job_dir)}
    (job_dir / "job.json").write_text(json.dumps(job, indent=2))
    with (job_dir / "worker.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mcunas.train.worker", str(job_dir / "job.json")],
                                stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        reported, last_stale_check = 0, time.monotonic()
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                reported = _relay_epochs(job_dir, trial, reported, progress)
                for number in renew_lease(trial):  # keeps this trial's lease; fails dead workers' trials
                    progress.note(f"trial {number} was left RUNNING by a dead worker: failed and queued again")
                if c.heartbeat_s and time.monotonic() - last_stale_check > c.heartbeat_s:
                    # Optuna only fails stale trials before a new trial starts; during a long training
                    # this worker checks too, so a dead worker's candidate is queued again promptly.
                    last_stale_check = time.monotonic()
                    _fail_stale_trials(trial.study)
                if reported and c.pruner != "none" and trial.should_prune():
                    proc.kill()
                    proc.wait()
                    raise optuna.TrialPruned(f"pruned after epoch {reported}")
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
    _relay_epochs(job_dir, trial, reported, progress)
    result_file = job_dir / "result.json"
    if not result_file.exists():
        return {"error": f"worker exited with status {proc.returncode} and no result (see {job_dir / 'worker.log'})"}
    return json.loads(result_file.read_text())


def _fail_stale_trials(study) -> None:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)


def _die_with_parent() -> None:
    """Linux: the worker gets SIGKILL when the search process dies, so none trains on orphaned."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _relay_epochs(job_dir: Path, trial, reported: int, progress: Progress) -> int:
    path = job_dir / "progress.txt"
    if not path.exists():
        return reported
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.startswith("epoch ")]
    single = len(trial.study.directions) == 1  # Optuna takes intermediate values only then
    for _, epoch, acc in lines[reported:]:
        if single:
            trial.report(float(acc), int(epoch))
        progress.epoch(trial.number, int(epoch), float(acc))
    return len(lines)
