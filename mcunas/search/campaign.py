"""The search loop: sample, cost, reject before training, train the rest.

Every sampled candidate is costed with the pure-Python model first.  One
over any budget is told to Optuna at once as a COMPLETE trial whose
constraints are positive (``trial.set_constraint``), with its costs in user
attributes — so the sampler learns where the wall is — and is never trained.
Only candidates that fit reach a worker process (:mod:`mcunas.train.worker`).
``n_trials`` counts trained candidates; rejections are free.

The study is resumable by construction: all state lives in the Optuna
storage, artefacts are written atomically, and re-running the same command
continues where the last run stopped.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mcunas.budget import Budget, cost_members, share_that_fits
from mcunas.errors import UserError
from mcunas.output import plural
from mcunas.search.halving import Halving
from mcunas.search.objectives import DIRECTIONS, objective_values
from mcunas.search.progress import Progress
from mcunas.spaces import Space, reference_choices, sample_arch


@dataclass
class Campaign:
    """Everything one ``mcunas search`` run needs, already validated."""

    space: Space
    study_name: str
    storage_url: str
    budget: Budget
    objectives: list[str]
    sampler: str = "tpe"
    pruner: str = "none"
    data: str | None = None
    eval_data: str | None = None
    n_trials: int = 10
    timeout_s: float | None = None
    seed: int = 0
    epochs: int = 3
    batch: int = 32
    recipe: str = "fast"
    max_consecutive_rejections: int = 2000
    results_dir: Path = field(default_factory=lambda: Path("results"))
    heartbeat_s: int | None = None
    qat_epochs: int = 0  # quantisation-aware fine-tuning after training (mcunas.train.qat)
    candidate_timeout_s: float | None = None  # None: derived from epochs, images and MACs (search.training)
    halving: Halving | None = None
    data_figures: dict = field(default_factory=dict)  # mcunas.data.check: test size, majority_test_accuracy
    supernet: str | None = None  # score candidates with this supernet's weights instead of training them
    finalists: int = 0  # with supernet: then train the best this many of the front (mcunas.search.supernet)
    finalist_init: str = "supernet"  # finalists start from inherited weights, or "scratch"
    init_supernet: str | None = None  # trained candidates start from this supernet's weights (finalists)

    @property
    def needs_training(self) -> bool:
        return "accuracy" in self.objectives

    @property
    def out_dir(self) -> Path:
        return self.results_dir / self.study_name


PRECHECK_SAMPLES = 1000


def precheck(c: Campaign) -> float:
    """Share of the space that fits the budget (1,000 random members); refuses a budget none meets."""
    df, _ = share_that_fits(c.space, c.budget, PRECHECK_SAMPLES, seed=0)
    if not df.fits.any():
        seen = ", ".join(f"{c.budget.key(d)} {int(df[c.budget.key(d)].min()):,}" for d in c.budget.limits())
        raise UserError(
            f"no member of space '{c.space.name}' fits {c.budget.describe()} in {PRECHECK_SAMPLES:,} samples "
            f"(smallest seen: {seen}): loosen the budget or use a smaller space"
        )
    return float(df.fits.mean())


def _study_identity(c: Campaign) -> dict:
    """What one study must keep across runs: its candidates are judged and compared under these."""
    return {"space": c.space.name, "objectives": c.objectives, "budget": c.budget.as_dict(),
            "space_sha256": space_fingerprint(c.space), "halving": c.halving and c.halving.as_dict()}


def space_fingerprint(space: Space) -> str:
    """SHA-256 of the space's content (key order, comments and layout of the YAML do not count)."""
    import hashlib

    return hashlib.sha256(json.dumps(space.spec, sort_keys=True, default=str).encode()).hexdigest()


def open_study(c: Campaign):
    """Create or resume the study; refuse to mix different spaces or objectives in one."""
    import optuna

    from mcunas.search.objectives import make_pruner, make_sampler
    from mcunas.search.recovery import other_workers, recover_dead_trials
    from mcunas.search.storage import open_storage

    storage = open_storage(c.storage_url, c.heartbeat_s)
    summaries = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    n_before = summaries[c.study_name].n_trials if c.study_name in summaries else 0
    # A resumed run continues the random stream instead of replaying the first run's proposals.
    sampler = make_sampler(c.sampler, c.seed + n_before)
    pruner = make_pruner(c.pruner, c.objectives, c.epochs)
    identity = _study_identity(c)
    try:  # exactly one of several workers starting at once creates the study
        if c.study_name in summaries:  # resumed: checked before anything is written (a journal's failed
            raise optuna.exceptions.DuplicatedStudyError  # create_study would still append a line)
        study = optuna.create_study(study_name=c.study_name, storage=storage, sampler=sampler, pruner=pruner,
                                    directions=[DIRECTIONS[o] for o in c.objectives])
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=c.study_name, storage=storage, sampler=sampler, pruner=pruner)
        _check_identity(study, identity, c)
        print(f"mcunas: resuming study {c.study_name} ({plural(n_before, 'trial')} so far; this run adds "
              f"{plural(c.n_trials, 'trained candidate')})", file=sys.stderr, flush=True)
        for key, value in {**identity, **c.data_figures}.items():  # a study from before these were recorded
            if key not in study.user_attrs:
                study.set_user_attr(key, value)
    else:
        for key, value in {**identity, **c.data_figures}.items():
            study.set_user_attr(key, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" since Optuna 3.2, still there in 5
            study.set_metric_names(c.objectives)
        seed_with_reference_networks(study, c)
    recovered = recover_dead_trials(study)
    if recovered:
        print(f"mcunas: trials {recovered} were left RUNNING by a dead worker: failed and queued again",
              file=sys.stderr, flush=True)
    others = other_workers(study)
    if c.storage_url.startswith("sqlite") and others:
        print(f"mcunas: warning: {', '.join(others)} also work(s) on this SQLite study; SQLite locks under "
              "parallel workers: use --storage journal:FILE for several processes on one machine, or "
              "postgresql://... for several machines", file=sys.stderr, flush=True)
    return study


def _check_identity(study, identity: dict, c: Campaign) -> None:
    """Refuse (one line, nothing written) to add to a study made for another space, objectives, budget or halving.

    One study judged under two budgets, or sampled from two versions of a
    space file, would mix candidates that were never comparable; a study
    recorded before a key existed is not refused on that key.
    """
    stored = {k: study.user_attrs.get(k, "unrecorded") for k in identity}
    if stored["objectives"] == "unrecorded" and len(study.directions) != len(c.objectives):
        stored["objectives"] = f"{len(study.directions)} objective(s)"
    for key, flag in (("space", "--space"), ("objectives", "--objectives")):
        if stored[key] != "unrecorded" and stored[key] != identity[key]:
            raise UserError(
                f"study '{c.study_name}' exists with {key} {stored[key]!r}, not {identity[key]!r}: "
                f"rerun with the same {flag} or pick a new --study name"
            )
    if stored["space_sha256"] not in ("unrecorded", identity["space_sha256"]):
        raise UserError(f"space file {c.space.path} changed since study '{c.study_name}' began: restore it, or "
                        "pick a new --study name for the edited space")
    if stored["budget"] != "unrecorded" and Budget.from_dict(stored["budget"]) != c.budget:
        raise UserError(f"study '{c.study_name}' was searched under {Budget.from_dict(stored['budget']).describe()}, "
                        f"not {c.budget.describe()}: rerun with the same budget flags, or pick a new --study name "
                        "(`mcunas query --sram ...` answers other budgets from this study)")
    if stored["halving"] != "unrecorded" and stored["halving"] != identity["halving"]:
        was = "no --halving" if stored["halving"] is None else f"--halving {stored['halving']['eta']} rungs {stored['halving']['rungs']}"
        now = "no --halving" if identity["halving"] is None else f"--halving {c.halving.eta} rungs {list(c.halving.rungs)}"
        raise UserError(f"study '{c.study_name}' ran with {was}, not {now}: rerun with the same --halving/--rungs/"
                        "--epochs, or pick a new --study name")


def seed_with_reference_networks(study, c: Campaign, limit: int = 2) -> list[str]:
    """Queue the space's reference networks that fit (every listed width and resolution), largest MACs first."""
    members = reference_choices(c.space)
    if not members:  # the space lists none of the paper's resolutions
        return []
    df = cost_members(c.space, members, c.budget)
    df = df[c.budget.fits(c.budget.judged(df))].drop_duplicates("arch")
    chosen = df.sort_values("macs", ascending=False, kind="stable").head(limit)
    for choices in chosen.choices:
        study.enqueue_trial(choices, user_attrs={"seeded_from": "preset"})
    return list(chosen.arch)


def cost_candidate(trial, space: Space, budget: Budget) -> tuple[str, dict, list[str]]:
    """Sample one candidate on ``trial``, cost it, record costs and constraints.

    Returns ``(arch, costs, reasons)``; ``reasons`` is empty when it fits.
    """
    candidate = sample_arch(space, trial)
    arch, costs = str(candidate), budget.estimate(candidate)
    trial.set_user_attr("arch", arch)
    trial.set_user_attr("costs", costs)
    with warnings.catch_warnings():  # a retried trial carries its constraints over already
        warnings.simplefilter("ignore", UserWarning)
        for name, value in budget.constraints(costs).items():
            trial.set_constraint(name, value)
    reasons = budget.violations(costs)
    if reasons:
        trial.set_user_attr("rejected", "; ".join(reasons))
    return arch, costs, reasons


def _trained_results(study) -> dict[str, dict]:
    """Arch string -> recorded training result (or halving stop), to avoid training one network twice."""
    import optuna

    out = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                      optuna.trial.TrialState.PRUNED)):
        if "int8_accuracy" in t.user_attrs or "rung" in t.user_attrs:
            out[t.user_attrs["arch"]] = {k: v for k, v in t.user_attrs.items() if k not in _OWN_ATTRS}
    return out


# a trial's own bookkeeping, never copied to a later trial of the same network
_OWN_ATTRS = ("arch", "costs", "worker", "retry", "retried_from", "retry_reason", "seeded_from")


class CandidateFailed(Exception):
    """Training, export or TFLM failed for one candidate: the trial fails, the campaign goes on."""


MAX_CONSECUTIVE_FAILURES = 5  # then the setup, not the candidates, is broken
PLOTS_EVERY_S = 30.0  # the PNGs are redrawn at most this often during a run (and always at its end): 0.9 s a time


class _Run:
    """One ``mcunas search`` run over an open study: the objective Optuna calls, and its tallies.

    A rejected candidate is told at once; a fitting one is trained (or, if the
    same network was trained before in this study, its result is reused).
    ``n_trials`` counts trained candidates (scored ones with a supernet), so
    the run stops itself when enough were, after too many rejections in a
    row (the sampler keeps proposing misfits) or failures in a row (the setup
    is broken).
    """

    def __init__(self, c: Campaign, study, progress: Progress):
        self.c, self.study, self.progress = c, study, progress
        self.trained_before = {} if c.supernet else _trained_results(study)  # a finalist's result is no score
        self.done = progress.done_label  # what --n-trials counts: "trained", or "scored" with a supernet
        self.counts = {self.done: 0, "rejected": 0, "failed": 0, "pruned": 0}
        self.rejections_in_a_row = 0
        self.failures_in_a_row = 0
        self.last_failure = ""
        self.plotted_at = float("-inf")  # the first result draws them

    def objective(self, trial) -> list[float]:
        from mcunas.search.recovery import OWNER_ATTR, owner

        c = self.c
        trial.set_user_attr(OWNER_ATTR, owner())
        arch, costs, reasons = cost_candidate(trial, c.space, c.budget)
        if reasons:
            self._rejected(trial, reasons)
            return objective_values(c.objectives, costs, c.budget, None)
        self.rejections_in_a_row = 0
        self.counts[self.done] += 1  # taken back if it is pruned or fails
        if not c.needs_training:
            self.progress.trained(trial.number, arch, None)
            return objective_values(c.objectives, costs, c.budget, None)
        result = self._train(trial, arch)
        for key, value in result.items():
            trial.set_user_attr(key, value)
        self.trained_before[arch] = result
        if c.supernet:
            self.progress.scored(trial.number, arch, result)
            return objective_values(c.objectives, costs, c.budget, result["supernet_accuracy"])
        self.progress.trained(trial.number, arch, result)
        return objective_values(c.objectives, costs, c.budget, result["int8_accuracy"])

    def _rejected(self, trial, reasons: list[str]) -> None:
        self.counts["rejected"] += 1
        self.rejections_in_a_row += 1
        self.progress.rejected(trial.number, reasons)
        if self.rejections_in_a_row >= self.c.max_consecutive_rejections:
            self.study.stop()

    def _train(self, trial, arch: str) -> dict:
        """The training result of ``arch`` (reused when trained before); raises when it fails or is pruned."""
        import optuna

        from mcunas.search.training import train_for_trial

        if arch in self.trained_before:
            earlier = {**self.trained_before[arch], "duplicate_of_earlier_trial": True}
            if "rung" not in earlier:
                return earlier
            for key, value in earlier.items():  # stopped before by --halving: stopped again, untrained
                trial.set_user_attr(key, value)
            self._pruned(trial, f"is a network stopped at rung {earlier['rung']} before: stopped again")
        from mcunas.search.supernet import score_for_trial

        try:
            result = (score_for_trial if self.c.supernet else train_for_trial)(self.c, trial, arch, self.progress)
        except optuna.TrialPruned as exc:
            if "rung" in trial.user_attrs:
                self.trained_before[arch] = {k: v for k, v in trial.user_attrs.items() if k not in _OWN_ATTRS}
            self._pruned(trial, str(exc))
        if "error" not in result:
            self.failures_in_a_row = 0
            return result
        trial.set_user_attr("fail_reason", result["error"])
        self.counts[self.done] -= 1
        self.counts["failed"] += 1
        self.failures_in_a_row += 1
        self.last_failure = f"{result['error']} (trial {trial.number})"
        self.progress.failed(trial.number, result["error"])
        if self.failures_in_a_row >= MAX_CONSECUTIVE_FAILURES:
            self.study.stop()
        raise CandidateFailed(result["error"])

    def _pruned(self, trial, why: str) -> None:
        """Count a stopped candidate (not as trained: ``--n-trials`` counts finished ones) and stop it."""
        import optuna

        self.counts[self.done] -= 1
        self.counts["pruned"] += 1
        self.progress.note(f"trial {trial.number} {why}")
        raise optuna.TrialPruned(why)

    def after_trial(self, study, frozen) -> None:
        """Rewrite the result files after every trial that was not a rejection (the plots at most every
        :data:`PLOTS_EVERY_S`); stop when enough trained."""
        import optuna

        from mcunas.search.results import write_results

        rejected = frozen.state == optuna.trial.TrialState.COMPLETE and "rejected" in frozen.user_attrs
        if self.c.needs_training and not rejected:
            plots = time.monotonic() - self.plotted_at >= PLOTS_EVERY_S
            write_results(study, self.c, self.counts, plots=plots)
            if plots:
                self.plotted_at = time.monotonic()
        if self.counts[self.done] >= self.c.n_trials:
            study.stop()

    def check_gave_up(self, share: float) -> None:
        """Raise the one-line reason a run stopped itself, if it did."""
        c = self.c
        if self.failures_in_a_row >= MAX_CONSECUTIVE_FAILURES:
            raise UserError(
                f"{plural(self.failures_in_a_row, 'candidate')} in a row failed to train, last: {self.last_failure}; "
                f"fix the cause (worker logs in {c.out_dir / 'trials'}) and rerun the same command to resume"
            )
        if self.rejections_in_a_row >= c.max_consecutive_rejections:
            raise UserError(
                f"{plural(self.rejections_in_a_row, 'candidate')} in a row exceed {c.budget.describe()}; only "
                f"{share:.2%} of the space fits: loosen the budget or narrow the space (results so far are in "
                f"{c.out_dir})"
            )


def run_campaign(c: Campaign) -> dict:
    """Run until ``n_trials`` candidates are trained (or the timeout); returns run figures.

    Uses ``study.optimize`` so Optuna's own machinery applies: heartbeats and
    stale-trial failing on RDB storages, ``catch`` for failed candidates, and
    ``study.stop()`` when enough candidates were trained.
    """
    import optuna

    from mcunas.search.results import write_results

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    c.out_dir.mkdir(parents=True, exist_ok=True)
    share = precheck(c)
    study = open_study(c)
    _write_campaign_record(c)
    if c.needs_training:
        from mcunas.train.worker import shared_worker

        shared_worker().start()  # TensorFlow imports in the worker while the first candidate is sampled
    run = _Run(c, study, Progress(c.n_trials, c.timeout_s, share, scoring=bool(c.supernet)))
    start = time.monotonic()
    try:
        study.optimize(run.objective, timeout=c.timeout_s, callbacks=[run.after_trial], catch=(CandidateFailed,),
                       gc_after_trial=False)
    except KeyboardInterrupt:
        if c.needs_training:  # the CSVs are current; the plots may be up to PLOTS_EVERY_S behind them
            write_results(study, c, run.counts)
        raise
    except Exception as error:  # Optuna's own bookkeeping can fail while it handles our one-line error
        if isinstance(error.__context__, UserError):
            raise error.__context__ from None
        raise
    paths = write_results(study, c, run.counts)
    run.check_gave_up(share)
    if c.supernet and c.finalists:
        from mcunas.search.supernet import train_finalists

        finals = train_finalists(c, study, share)
        run.counts.update(finalists=finals["finalists"], trained=finals["trained"],
                          failed=run.counts["failed"] + finals["failed"])
        paths = write_results(study, c, run.counts)
    if c.timeout_s is not None and run.counts[run.done] < c.n_trials:
        run.progress.note(f"timeout reached after {plural(run.counts[run.done], run.done + ' candidate')}")
    elapsed = time.monotonic() - start
    figures = {**run.counts, "elapsed_s": round(elapsed, 1)}
    if not c.needs_training and elapsed:  # a throughput only means something without training in between
        figures["candidates_per_s"] = round((run.counts[run.done] + run.counts["rejected"]) / elapsed, 1)
    return {**figures, **paths}


def _write_campaign_record(c: Campaign) -> None:
    """``campaign.json``: the run's settings as given (a storage password masked), for people reading the results folder."""
    from mcunas.atomic import write_atomic
    from mcunas.search.storage import redact

    write_atomic(c.out_dir / "campaign.json", json.dumps(
        {**asdict(c), "space": str(c.space.path), "results_dir": str(c.results_dir),
         "storage_url": redact(c.storage_url)}, indent=2, default=str))
