"""``mcunas search --supernet``: score every fitting candidate with inherited weights, then train finalists.

Scoring is a job of kind ``score`` in the same warm worker that trains
candidates (:mod:`mcunas.train.worker`), so the search process stays free
of TensorFlow and a crash fails one trial; the worker reads the supernet
file once and only reads it, so any number of search processes can share
one file.  A scored trial records ``supernet_accuracy`` (float validation
accuracy with recalibrated BatchNorm), which is also its accuracy objective.

Finalists: after the scoring run, the best ``--finalists`` candidates of the
Pareto front (then of the next fronts, if the first has fewer) are queued
as new trials with the same choices and trained, exported and tested like
any candidate of an ordinary search, starting from their inherited weights
(``--finalist-init supernet``, the default) or from scratch.  A finalist's
trial carries ``finalist_of`` (the scored trial's number); one already
trained, queued or running is not queued again, so a resumed or parallel
run trains each finalist once.
"""

from __future__ import annotations

from pathlib import Path

from mcunas.errors import UserError
from mcunas.search.progress import Progress
from mcunas.train.worker import TrainJob, run_in_worker

SCORE_LIMIT_S = 600.0  # a score takes seconds; this covers a fresh worker's start and a new resolution's data cache
FINALIST_INITS = ("supernet", "scratch")


def check_supernet(path: str, space, data: str, seed: int) -> None:
    """Refuse (one line, before anything is written) a file that is no supernet, or one made for another
    space, data or seed: scoring on validation images it trained on would flatter every candidate."""
    from mcunas.search.campaign import space_fingerprint
    from mcunas.supernet.file import check_for_space, read_meta
    from mcunas.supernet.members import check_supported

    check_supported(space)
    meta = read_meta(Path(path))
    check_for_space(Path(path), meta, space, space_fingerprint(space))
    given = {"--data": str(Path(data).resolve()), "--seed": seed}
    stored = {"--data": meta.get("data"), "--seed": meta.get("split_seed")}
    for flag, value in given.items():
        if stored[flag] != value:
            raise UserError(f"--supernet {path} was trained with {flag} {stored[flag]}, not {value}: give the same "
                            f"{flag} (the validation share must be images it never trained on), or train a "
                            "supernet for these")


def score_for_trial(c, trial, arch: str, progress: Progress) -> dict:
    """``arch``'s supernet score for ``trial``; the worker's result dict, or ``{"error": reason}``."""
    from mcunas.search.training import keep_lease

    job = TrainJob(arch=arch, data=c.data, eval_data=c.eval_data, epochs=0, batch=c.batch, recipe=c.recipe,
                   seed=c.seed, out_dir=str(c.out_dir / "trials" / f"{trial.number:05d}"), split_seed=c.seed,
                   kind="score", supernet=str(Path(c.supernet).resolve()))

    return run_in_worker(job, lambda epoch, accuracy: None, lambda: keep_lease(trial, progress), limit_s=c.candidate_timeout_s or SCORE_LIMIT_S)


def choose_finalists(study, objectives: list[str], k: int) -> list:
    """The ``k`` best scored trials by supernet accuracy, front by front (one per architecture)."""
    import numpy as np
    import optuna
    import pandas as pd

    from mcunas.search.results import pareto_mask

    scored, seen = [], set()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        arch = t.user_attrs.get("arch")
        if "supernet_accuracy" in t.user_attrs and "rejected" not in t.user_attrs and arch not in seen:
            seen.add(arch)
            scored.append(t)
    directions = study.directions
    frame = pd.DataFrame([t.values for t in scored], columns=objectives) if scored else pd.DataFrame()
    maximize = [o for o, d in zip(objectives, directions) if d == optuna.study.StudyDirection.MAXIMIZE]
    minimize = [o for o in objectives if o not in maximize]
    chosen, left = [], np.arange(len(scored))
    while len(chosen) < k and len(left):
        front = left[pareto_mask(frame.iloc[left], maximize, minimize)]
        chosen += sorted((scored[i] for i in front), key=lambda t: -t.user_attrs["supernet_accuracy"])
        left = np.setdiff1d(left, front)
    return chosen[:k]


def train_finalists(c, study, share: float) -> dict[str, int]:
    """Queue and train the finalists not yet trained, queued or running; ``{"finalists": how many there are,
    "trained": how many this run trained, "failed": ...}`` (the run's counts, which ``summary.md`` shows)."""
    import dataclasses

    import optuna

    from mcunas.search.campaign import CandidateFailed, _Run

    chosen = choose_finalists(study, c.objectives, c.finalists)
    taken = {t.user_attrs.get("arch") for t in study.get_trials(deepcopy=False)
             if "finalist_of" in t.user_attrs and t.state in (optuna.trial.TrialState.COMPLETE,
                                                              optuna.trial.TrialState.RUNNING,
                                                              optuna.trial.TrialState.WAITING)}
    todo = [t for t in chosen if t.user_attrs["arch"] not in taken]
    if not todo:
        return {"finalists": len(chosen), "trained": 0, "failed": 0}
    for t in todo:
        study.enqueue_trial(t.params, user_attrs={"finalist_of": t.number, "arch": t.user_attrs["arch"]})
    final = dataclasses.replace(c, supernet=None, n_trials=len(todo),
                                init_supernet=c.supernet if c.finalist_init == "supernet" else None)
    progress = Progress(len(todo), None, share)
    progress.note(f"training {len(todo)} finalist(s) ({c.finalist_init} weights): "
                  + ", ".join(f"trial {t.number}" for t in todo))
    run = _Run(final, study, progress)
    study.optimize(run.objective, n_trials=len(todo), callbacks=[run.after_trial], catch=(CandidateFailed,),
                   gc_after_trial=False)
    return {"finalists": len(chosen), "trained": run.counts["trained"], "failed": run.counts["failed"]}
