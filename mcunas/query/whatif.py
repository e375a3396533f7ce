"""What-if budgets over stored trials: filter, rank, Pareto set, price of tightening.

**Which figure is checked.** With the deployable budget model (default) a
trained trial is checked against what was *measured* for its own exported
file — the TFLM arena (``tflm_arena_bytes_measured``) and the ``.tflite``
size (``tflite_bytes_measured``) — because that is the truth the prediction
only approximates; trials without a measurement (rejected candidates, cost-
only studies) use the cost model's prediction.  The paper model checks the
paper's rule and int8 weight count.  A trial stored before the cost model
gave some figure is re-costed from its architecture string (pure Python,
microseconds).

**Unset limits.** A dimension the user does not name keeps each study's own
campaign budget (when that was set in the same budget model), so
``--sram 128KB`` asks "this campaign, but with 128 KB of SRAM"; without a
known campaign budget the dimension is not limited.

**Ranking.** A study whose objectives include ``accuracy`` ranks its trained
trials by int8 accuracy, ties to the smaller SRAM figure.  That is the int8
accuracy on the validation set, the one the search selected on; the int8
test accuracy (``test_accuracy``, never selected on) is shown beside it, and
the study's ``majority_test_accuracy`` baseline with the answer.  Trials
stopped by ``--halving`` are counted as ``pruned`` and never ranked.  A cost-only study
(e.g. ``capacity,sram``) has no accuracy: its candidates — including ones its
campaign rejected, since no training is needed to judge them — are ranked by
its objectives in order (``capacity`` = MACs, larger first).

**Tightening ladder.** Starting from the query's limit (or, if unset, the
loosest campaign budget, or else the largest value seen), each dimension is
stepped down one at a time through a fixed ladder of round sizes
(:data:`LADDERS`) while the other limits stay, until nothing fits.  Each
step reports the best score still reachable and its loss against the start.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mcunas.budget import COLUMN, Budget, judged_frame
from mcunas.errors import UserError
from mcunas.query.studies import StudyTrials
from mcunas.search.storage import redact

# Round steps (KB = 1000 B) that boards and the VWW paper use; MACs per inference.
LADDERS = {
    "sram": [1_000_000, 512_000, 320_000, 250_000, 192_000, 128_000, 96_000, 64_000, 48_000, 32_000, 16_000],
    "flash": [2_000_000, 1_000_000, 512_000, 384_000, 250_000, 192_000, 128_000, 96_000, 64_000, 32_000],
    "macs": [600_000_000, 300_000_000, 200_000_000, 100_000_000, 60_000_000, 40_000_000, 20_000_000,
             10_000_000, 5_000_000, 2_000_000, 1_000_000],
    "latency": [5000, 2000, 1000, 500, 200, 100, 50, 20, 10],  # ms, upper band on the budget's board
}
# objective -> (column, larger is better)
OBJECTIVE_ORDER = {"accuracy": ("int8_accuracy", True), "capacity": ("macs", True), "macs": ("macs", False),
                   "sram": ("sram_bytes", False), "flash": ("flash_bytes", False)}
# sram_bytes/flash_bytes are the judged figures; both predicted arenas (TFLM's plan, the offline plan) beside them
SHOWN = ["study", "number", "status", "int8_accuracy", "test_accuracy", "float_accuracy", "sram_bytes", "sram_figure",
         "flash_bytes", "flash_figure", "sram_tflm_bytes", "sram_tflm_offline_bytes", "macs", "latency_high_ms",
         "params", "arch"]
INT_COLUMNS = ("sram_bytes", "flash_bytes", "sram_tflm_bytes", "sram_tflm_offline_bytes", "macs", "params", "number")


def campaign_budget(study: StudyTrials) -> Budget | None:
    """The budget the study's campaign searched under, if it recorded one."""
    return Budget.from_dict(study.search_budget) if study.search_budget else None


def ranking(study: StudyTrials) -> list[tuple[str, bool]]:
    """Sort keys ``(column, larger_is_better)`` for a study, from its objectives."""
    if study.needs_training:
        return [("int8_accuracy", True), ("sram_bytes", False)]
    keys = [OBJECTIVE_ORDER[o] for o in study.objectives if o in OBJECTIVE_ORDER]
    return keys + [k for k in [("sram_bytes", False)] if k not in keys]


def describe_ranking(study: StudyTrials) -> str:
    if study.needs_training:
        return "int8 accuracy (ties: smaller SRAM)"
    names = {"capacity": "capacity (MACs, larger first)", "macs": "MACs (smaller first)",
             "sram": "SRAM (smaller first)", "flash": "flash (smaller first)"}
    return (f"cost-only study (objectives {','.join(study.objectives)}, no accuracy): ranked by "
            + ", then ".join(names[o] for o in study.objectives if o in names))


def candidates(study: StudyTrials, budget: Budget) -> pd.DataFrame:
    """Trials that can be ranked: trained with an int8 accuracy, or (cost-only) every costed one.

    One row per architecture (the earliest trial), so duplicates do not crowd the list.
    """
    df = study.frame
    if study.needs_training:
        df = df[(df.status == "trained") & df.int8_accuracy.notna()]
    else:
        df = df[df.status.isin(["trained", "rejected"]) & df.arch.notna()]
    df = df.sort_values("number").drop_duplicates("arch")
    return judged_frame(df, budget) if len(df) else df.assign(**{column: [] for column in COLUMN.values()})


def rank(df: pd.DataFrame, keys: list[tuple[str, bool]]) -> pd.DataFrame:
    cols = [c for c, _ in keys] + ["number"]
    return df.sort_values(cols, ascending=[not big for _, big in keys] + [True], kind="stable")


def pareto(df: pd.DataFrame, study: StudyTrials) -> pd.DataFrame:
    """The Pareto set: accuracy vs SRAM, or the study's own cost objectives."""
    from mcunas.search.results import pareto_mask

    if study.needs_training:
        keys = [("int8_accuracy", True), ("sram_bytes", False)]
    else:
        keys = [OBJECTIVE_ORDER[o] for o in study.objectives if o in OBJECTIVE_ORDER]
    if not len(df):
        return df
    mask = pareto_mask(df, [c for c, big in keys if big], [c for c, big in keys if not big])
    return df[mask].sort_values("sram_bytes")


def rows(df: pd.DataFrame, study: str) -> list[dict]:
    """Plain dicts for JSON: ints as ints, missing as None."""
    out = []
    for _, r in df.assign(study=study).iterrows():
        row = {}
        for c in SHOWN + [c for c in ("over_by",) if c in df.columns]:
            v = r.get(c)
            if isinstance(v, float) and np.isnan(v):
                v = None
            elif c in INT_COLUMNS and v is not None:
                v = int(v)
            row[c] = v
        out.append(row)
    return out


def study_answer(study: StudyTrials, budget: Budget, top: int) -> dict:
    """Everything ``mcunas query`` says about one study under ``budget`` (unset limits: the campaign's)."""
    budget = budget.filled_from(campaign_budget(study))
    cands = candidates(study, budget)
    keys = ranking(study)
    ok = budget.fits(cands)
    inside = rank(cands[ok], keys)
    answer = {
        "study": study.name, "storage": redact(study.storage_url), "space": study.space,
        "objectives": study.objectives, "ranked_by": describe_ranking(study),
        "search_budget": study.search_budget, "majority_test_accuracy": study.majority_test_accuracy,
        "budget": {**budget.as_dict(), "description": budget.describe()},
        "trials": int(len(study.frame)),
        "status_counts": {k: int(v) for k, v in study.frame.status.value_counts().items()},
        "candidates": int(len(cands)), "fitting": int(ok.sum()),
        "best": rows(inside.head(top), study.name),
        "pareto": rows(pareto(inside, study), study.name),
    }
    if study.needs_training:
        rejected = study.frame[study.frame.status == "rejected"].drop_duplicates("arch")
        answer["untrained_fitting"] = (int(budget.fits(judged_frame(rejected, budget)).sum())
                                       if len(rejected) else 0)
    if not ok.any() and len(cands):
        near = cands.assign(_over=budget.overshoot(cands))
        near = rank(near, keys).sort_values("_over", kind="stable").head(min(top, 5))
        over_by = [budget.over_by(row) for _, row in near.iterrows()]
        answer["nearest"] = rows(near.assign(over_by=over_by), study.name)
    return answer


def ladder_start(dim: str, budget: Budget, studies: list[StudyTrials], frames: list[pd.DataFrame]) -> int | None:
    """Where a dimension's tightening starts: the query limit, the loosest campaign budget, or the largest value."""
    own = [budget.filled_from(campaign_budget(s)).limit(dim) for s in studies]
    if all(v is not None for v in own):
        return int(max(own))
    seen = [f[COLUMN[dim]].max() for f in frames if len(f)]
    return int(max(seen)) if seen else None


def tightening(studies: list[StudyTrials], budget: Budget) -> list[dict]:
    """Best score per study at each rung of each dimension's ladder (see module doc)."""
    frames = [candidates(s, budget.filled_from(campaign_budget(s))) for s in studies]
    out = []
    for dim in budget.dimensions():
        start = ladder_start(dim, budget, studies, frames)
        if start is None:
            continue
        steps = [start] + [v for v in LADDERS[dim] if v < start]
        base = {}
        for step in steps:
            row = {"dimension": dim, "limit": int(step), "studies": {}}
            any_fit = False
            for study, df in zip(studies, frames):
                rung = budget.with_limit(dim, step).filled_from(campaign_budget(study))
                inside = rank(df[rung.fits(df)], ranking(study))
                col, _ = ranking(study)[0]
                if len(inside):
                    any_fit = True
                    best = inside.iloc[0]
                    score = float(best[col])
                    base.setdefault(study.name, score)
                    row["studies"][study.name] = {"fitting": int(len(inside)), "score": score, "score_name": col,
                                                  "change": score - base[study.name], "number": int(best["number"]),
                                                  "arch": best["arch"]}
                else:
                    row["studies"][study.name] = {"fitting": 0, "score": None, "score_name": col,
                                                  "change": None, "number": None, "arch": None}
            out.append(row)
            if not any_fit:
                break
    return out


def answer(studies: list[StudyTrials], budget: Budget, top: int = 10) -> dict:
    """The whole what-if answer for one or several studies."""
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    return {"budget": {**budget.as_dict(), "description": budget.describe(unset="as each study's campaign")},
            "studies": [study_answer(s, budget, top) for s in studies],
            "tightening": tightening(studies, budget)}
