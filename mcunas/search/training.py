"""One candidate's training as seen from the search: a worker process watched through its Optuna trial.

The worker itself (:mod:`mcunas.train.worker`) trains, exports, evaluates
and measures.  This side relays each epoch's accuracy to Optuna (single-
objective studies only: Optuna takes intermediate values only then) and to
the live view, prunes by stopping the worker when Optuna says so or when
``--halving`` stops it at a rung (:mod:`mcunas.search.halving`), and renews this
worker's lease on the trial (:func:`mcunas.search.recovery.renew_lease`),
which also fails other workers' dead trials so their candidates are queued
again promptly rather than at the next trial's start.
"""

from __future__ import annotations

from mcunas.search.progress import Progress
from mcunas.train.worker import TrainJob, run_in_worker


def train_for_trial(c, trial, arch: str, progress: Progress) -> dict:
    """Train ``arch`` for ``trial`` of campaign ``c``; the worker's result dict, or ``{"error": reason}``.

    Raises ``optuna.TrialPruned`` when the study's pruner or ``--halving`` stops the candidate.
    """
    import optuna

    from mcunas.search.halving import stop_at_rung
    from mcunas.search.recovery import renew_lease

    job = TrainJob(arch=arch, data=c.data, eval_data=c.eval_data, epochs=c.epochs, batch=c.batch,
                   recipe=c.recipe, seed=c.seed + trial.number,
                   out_dir=str(c.out_dir / "trials" / f"{trial.number:05d}"), split_seed=c.seed)
    single_objective = len(trial.study.directions) == 1
    epochs_seen = []
    rungs_reached: dict[str, float] = {}

    def on_epoch(epoch: int, accuracy: float) -> None:
        if single_objective:
            trial.report(accuracy, epoch)
        epochs_seen.append(epoch)
        progress.epoch(trial.number, epoch, accuracy)
        if stop_at_rung(trial, c, epoch, accuracy, rungs_reached):
            raise optuna.TrialPruned(f"stopped at rung {epoch} (validation accuracy {accuracy:.3f}) by --halving")

    def poll() -> None:
        for number in renew_lease(trial):  # keeps this trial's lease; fails dead workers' trials
            progress.note(f"trial {number} was left RUNNING by a dead worker: failed and queued again")
        if epochs_seen and c.pruner != "none" and trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epochs_seen[-1]}")

    return run_in_worker(job, on_epoch, poll)
