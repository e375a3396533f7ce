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

from mcunas.cost import estimate
from mcunas.errors import UserError
from mcunas.search.budget import Budget
from mcunas.search.objectives import DIRECTIONS, objective_values
from mcunas.search.progress import Progress
from mcunas.spaces import RandomTrial, Space, sample_arch


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

    @property
    def needs_training(self) -> bool:
        return "accuracy" in self.objectives

    @property
    def out_dir(self) -> Path:
        return self.results_dir / self.study_name


def fraction_that_fits(space: Space, budget: Budget, n: int = 1000, seed: int = 0) -> tuple[float, dict]:
    """Share of ``n`` random members of ``space`` within ``budget``, and the smallest costs seen."""
    trial = RandomTrial(seed)
    fits, smallest = 0, {}
    for _ in range(n):
        costs = estimate(sample_arch(space, trial))
        fits += not budget.violations(costs)
        for key in (budget.sram_key, budget.flash_key, "macs"):
            smallest[key] = min(smallest.get(key, costs[key]), costs[key])
    return fits / n, smallest


def _study_identity(c: Campaign) -> dict:
    return {"space": c.space.name, "objectives": c.objectives, "budget": c.budget.as_dict()}


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
        study = optuna.create_study(study_name=c.study_name, storage=storage, sampler=sampler, pruner=pruner,
                                    directions=[DIRECTIONS[o] for o in c.objectives])
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=c.study_name, storage=storage, sampler=sampler, pruner=pruner)
        _check_identity(study, identity, c)
    else:
        for key, value in identity.items():
            study.set_user_attr(key, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" since Optuna 3.2, still there in 5
            study.set_metric_names(c.objectives)
        enqueue_feasible_presets(study, c)
    recovered = recover_dead_trials(study)
    if recovered:
        print(f"mcunas: trials {recovered} were left RUNNING by a dead worker: failed and queued again", flush=True)
    others = other_workers(study)
    if c.storage_url.startswith("sqlite") and others:
        print(f"mcunas: warning: {', '.join(others)} also work(s) on this SQLite study; SQLite locks under "
              "parallel workers: use --storage journal:FILE for several processes on one machine, or "
              "postgresql://... for several machines", file=sys.stderr, flush=True)
    return study


def _check_identity(study, identity: dict, c: Campaign) -> None:
    """Refuse (one line, nothing written) to add to a study made for another space or objectives."""
    stored = {k: study.user_attrs.get(k) for k in identity}
    if stored["objectives"] is None and len(study.directions) != len(c.objectives):
        stored["objectives"] = f"{len(study.directions)} objective(s)"
    for key, flag in (("space", "--space"), ("objectives", "--objectives")):
        if stored[key] is not None and stored[key] != identity[key]:
            raise UserError(
                f"study '{c.study_name}' exists with {key} {stored[key]!r}, not {identity[key]!r}: "
                f"rerun with the same {flag} or pick a new --study name"
            )


def enqueue_feasible_presets(study, c: Campaign, limit: int = 2) -> list[str]:
    """Seed a new study with the space's reference nets that fit, largest first."""
    from mcunas.spaces import RecordingTrial, ReferenceTrial

    spec = c.space.spec
    found = []
    for width in spec["width"] if isinstance(spec["width"], list) else [spec["width"]]:
        for resolution in (96, 128, 160):
            if resolution not in spec["input"]["resolution"]:
                continue
            rec = RecordingTrial(ReferenceTrial({"width": width, "resolution": resolution}))
            costs = estimate(sample_arch(c.space, rec))
            if not c.budget.violations(costs):
                found.append((costs["macs"], rec.params))
    chosen = sorted(found, key=lambda f: -f[0])[:limit]
    for _, params in chosen:
        study.enqueue_trial(params, user_attrs={"seeded_from": "preset"})
    return [str(p) for _, p in chosen]


def cost_candidate(trial, space: Space, budget: Budget) -> tuple[str, dict, list[str]]:
    """Sample one candidate on ``trial``, cost it, record costs and constraints.

    Returns ``(arch, costs, reasons)``; ``reasons`` is empty when it fits.
    """
    candidate = sample_arch(space, trial)
    arch, costs = str(candidate), estimate(candidate)
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


def ask_and_cost(study, space: Space, budget: Budget, objectives: list[str]):
    """Ask/tell form of :func:`cost_candidate`: a rejected candidate is told at once."""
    trial = study.ask()
    arch, costs, reasons = cost_candidate(trial, space, budget)
    if reasons:
        study.tell(trial, objective_values(objectives, costs, budget, None))
    return trial, arch, costs, reasons


def _trained_results(study) -> dict[str, dict]:
    """Arch string -> recorded training result, to avoid training one network twice."""
    import optuna

    out = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if "int8_accuracy" in t.user_attrs:
            out[t.user_attrs["arch"]] = {k: t.user_attrs[k] for k in t.user_attrs if k not in ("arch", "costs")}
    return out


class CandidateFailed(Exception):
    """Training, export or TFLM failed for one candidate: the trial fails, the campaign goes on."""


@dataclass
class _Tally:
    trained: int = 0
    rejected: int = 0
    failed: int = 0
    pruned: int = 0
    consecutive_rejections: int = 0
    consecutive_failures: int = 0
    last_failure: str = ""
    gave_up: bool = False

MAX_CONSECUTIVE_FAILURES = 5  # then the setup, not the candidates, is broken


def run_campaign(c: Campaign) -> dict:
    """Run until ``n_trials`` candidates are trained (or the timeout); returns run figures.

    Uses ``study.optimize`` so Optuna's own machinery applies: heartbeats and
    stale-trial failing on RDB storages, ``catch`` for failed candidates, and
    ``study.stop()`` when enough candidates were trained.
    """
    import optuna

    from mcunas.search.recovery import OWNER_ATTR, owner
    from mcunas.search.results import write_results
    from mcunas.search.training import train_in_worker

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    c.out_dir.mkdir(parents=True, exist_ok=True)
    share, smallest = fraction_that_fits(c.space, c.budget)
    if share == 0:
        seen = ", ".join(f"{k} {v:,}" for k, v in smallest.items())
        raise UserError(
            f"no member of space '{c.space.name}' fits {c.budget.describe()} in 1,000 samples "
            f"(smallest seen: {seen}): loosen the budget or use a smaller space"
        )
    study = open_study(c)
    (c.out_dir / "campaign.json").write_text(json.dumps(
        {**asdict(c), "space": str(c.space.path), "results_dir": str(c.results_dir)}, indent=2, default=str))
    progress = Progress(c.n_trials, c.timeout_s, share)
    trained_before = _trained_results(study)
    tally = _Tally()

    def objective(trial):
        trial.set_user_attr(OWNER_ATTR, owner())
        arch, costs, reasons = cost_candidate(trial, c.space, c.budget)
        if reasons:
            tally.rejected += 1
            tally.consecutive_rejections += 1
            progress.rejected(trial.number, reasons)
            if tally.consecutive_rejections >= c.max_consecutive_rejections:
                tally.gave_up = True
                study.stop()
            return objective_values(c.objectives, costs, c.budget, None)
        tally.consecutive_rejections = 0
        if not c.needs_training:
            tally.trained += 1
            progress.trained(trial.number, arch, None)
            return objective_values(c.objectives, costs, c.budget, None)
        tally.trained += 1  # a pruned candidate used training time too
        try:
            result = ({**trained_before[arch], "duplicate_of_earlier_trial": True} if arch in trained_before
                      else train_in_worker(c, trial, arch, progress))
        except optuna.TrialPruned as exc:
            tally.pruned += 1
            progress.note(f"trial {trial.number} {exc}")
            raise
        if "error" in result:
            trial.set_user_attr("fail_reason", result["error"])
            tally.trained -= 1
            tally.failed += 1
            tally.consecutive_failures += 1
            tally.last_failure = f"{result['error']} (trial {trial.number})"
            progress.failed(trial.number, result["error"])
            if tally.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                study.stop()
            raise CandidateFailed(result["error"])
        tally.consecutive_failures = 0
        for key, value in result.items():
            trial.set_user_attr(key, value)
        trained_before[arch] = result
        progress.trained(trial.number, arch, result)
        return objective_values(c.objectives, costs, c.budget, result["int8_accuracy"])

    def after_trial(study, frozen):
        if frozen.state != optuna.trial.TrialState.COMPLETE or "rejected" not in frozen.user_attrs:
            if c.needs_training:
                write_results(study, c)
        if tally.trained >= c.n_trials:
            study.stop()

    start = time.monotonic()
    study.optimize(objective, timeout=c.timeout_s, callbacks=[after_trial], catch=(CandidateFailed,),
                   gc_after_trial=False)
    paths = write_results(study, c)
    if tally.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
        raise UserError(
            f"{tally.consecutive_failures} candidates in a row failed to train, last: {tally.last_failure}; "
            f"fix the cause (worker logs in {c.out_dir / 'trials'}) and rerun the same command to resume"
        )
    if tally.gave_up:
        raise UserError(
            f"{tally.consecutive_rejections} candidates in a row exceed {c.budget.describe()}; only "
            f"{share:.2%} of the space fits: loosen the budget or narrow the space (results so far are in {c.out_dir})"
        )
    if c.timeout_s is not None and tally.trained < c.n_trials:
        progress.note(f"timeout reached after {tally.trained} trained candidates")
    elapsed = time.monotonic() - start
    figures = {"trained": tally.trained, "rejected": tally.rejected, "failed": tally.failed,
               "pruned": tally.pruned, "elapsed_s": round(elapsed, 1)}
    if not c.needs_training and elapsed:  # a throughput only means something without training in between
        figures["candidates_per_s"] = round((tally.trained + tally.rejected) / elapsed, 1)
    return {**figures, **paths}
