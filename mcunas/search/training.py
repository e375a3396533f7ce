"""One candidate's training as seen from the search: the warm worker watched through its Optuna trial.

The worker itself (:mod:`mcunas.train.worker`) trains, exports, evaluates
and measures.  This side relays each epoch's accuracy to Optuna (single-
objective studies only: Optuna takes intermediate values only then) and to
the live view, prunes by stopping the candidate when Optuna says so or when
``--halving`` stops it at a rung (:mod:`mcunas.search.halving`), and renews this
worker's lease on the trial (:func:`mcunas.search.recovery.renew_lease`),
which also fails other workers' dead trials so their candidates are queued
again promptly rather than at the next trial's start.  A candidate past its
wall-clock limit (:func:`candidate_limit_s`) is killed with its worker and
fails with the reason.
"""

from __future__ import annotations

from functools import lru_cache

from mcunas.search.progress import Progress
from mcunas.train.worker import TrainJob, run_in_worker

LIMIT_FLOOR_S = 600.0
# Seconds of training plus validation per image and epoch, S0 + S1 x MACs, fitted above what this
# project's 2-core machine (TF 2.21 CPU, batch 32, other jobs running) measured for epochs after the
# first on 500 images: 4.2 ms at 7.6M MACs, 17 ms at 49M, 18-41 ms at 106M (mlperf-vww,
# mobilenet-v1-0.5-128, mobilenet-v1-0.75-128).  The first epoch's tracing (40-70 s there) is covered
# by the floor.
IMAGE_EPOCH_S = 0.002
IMAGE_EPOCH_S_PER_MAC = 0.4e-9
LIMIT_SAFETY = 10  # a slower or busier machine must never have a healthy candidate killed


def candidate_limit_s(c, macs: int) -> float:
    """The per-candidate wall-clock limit: ``--candidate-timeout``, else a generous estimate.

    The estimate is :data:`LIMIT_SAFETY` times the expected training time
    (epochs, QAT epochs included, x images in ``--data`` and ``--eval-data`` x seconds per image
    for a network of ``macs``), and never under :data:`LIMIT_FLOOR_S`, which
    also covers a fresh worker's start, the export and the TFLM measurement.
    """
    if c.candidate_timeout_s is not None:
        return c.candidate_timeout_s
    images = sum(_count_images(path) for path in (c.data, c.eval_data) if path)
    expected_s = (c.epochs + c.qat_epochs) * images * (IMAGE_EPOCH_S + IMAGE_EPOCH_S_PER_MAC * macs)
    return max(LIMIT_FLOOR_S, LIMIT_SAFETY * expected_s)


@lru_cache(maxsize=8)
def _count_images(path: str) -> int:
    from mcunas.data.formats import count_images

    return count_images(path)


def train_for_trial(c, trial, arch: str, progress: Progress) -> dict:
    """Train ``arch`` for ``trial`` of campaign ``c``; the worker's result dict, or ``{"error": reason}``.

    Raises ``optuna.TrialPruned`` when the study's pruner or ``--halving`` stops the candidate.
    """
    import optuna

    from mcunas.search.halving import stop_at_rung

    job = TrainJob(arch=arch, data=c.data, eval_data=c.eval_data, epochs=c.epochs, batch=c.batch,
                   recipe=c.recipe, seed=c.seed + trial.number,
                   out_dir=str(c.out_dir / "trials" / f"{trial.number:05d}"), split_seed=c.seed,
                   qat_epochs=c.qat_epochs, supernet=c.init_supernet)
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
        keep_lease(trial, progress)
        if epochs_seen and c.pruner != "none" and trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epochs_seen[-1]}")

    return run_in_worker(job, on_epoch, poll, limit_s=candidate_limit_s(c, trial.user_attrs["costs"]["macs"]),
                         on_stage=lambda text: progress.note(f"trial {trial.number}: {text}"))


def keep_lease(trial, progress) -> None:
    """Renew this trial's lease while its worker runs, and say which dead workers' trials were failed."""
    from mcunas.search.recovery import renew_lease

    for number in renew_lease(trial):
        progress.note(f"trial {number} was left RUNNING by a dead worker: failed and queued again")
