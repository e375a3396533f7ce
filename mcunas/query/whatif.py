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
trials by int8 accuracy, ties to the smaller SRAM figure.  A cost-only study
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

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from mcunas.errors import UserError
from mcunas.query.studies import StudyTrials
from mcunas.search.budget import FIGURES
from mcunas.units import parse_bytes, parse_count

# Round steps (KB = 1000 B) that boards and the VWW paper use; MACs per inference.
LADDERS = {
    "sram": [1_000_000, 512_000, 320_000, 250_000, 192_000, 128_000, 96_000, 64_000, 48_000, 32_000, 16_000],
    "flash": [2_000_000, 1_000_000, 512_000, 384_000, 250_000, 192_000, 128_000, 96_000, 64_000, 32_000],
    "macs": [600_000_000, 300_000_000, 200_000_000, 100_000_000, 60_000_000, 40_000_000, 20_000_000,
             10_000_000, 5_000_000, 2_000_000, 1_000_000],
}
# budget model -> dimension -> (measured column, predicted cost key); the predicted keys are
# the ones a campaign's budget checks (mcunas.search.budget.FIGURES), so both judge alike.
_MEASURED = {"deployable": ("tflm_arena_bytes_measured", "tflite_bytes_measured"), "paper": (None, None)}
FIGURE_SOURCES = {
    model: {"sram": (_MEASURED[model][0], sram_key), "flash": (_MEASURED[model][1], flash_key)}
    for model, (sram_key, flash_key) in FIGURES.items()
}
COLUMN = {"sram": "sram_bytes", "flash": "flash_bytes", "macs": "macs"}
# objective -> (column, larger is better)
OBJECTIVE_ORDER = {"accuracy": ("int8_accuracy", True), "capacity": ("macs", True), "macs": ("macs", False),
                   "sram": ("sram_bytes", False), "flash": ("flash_bytes", False)}
SHOWN = ["study", "number", "status", "int8_accuracy", "float_accuracy", "sram_bytes", "sram_figure",
         "flash_bytes", "flash_figure", "macs", "params", "arch"]


@dataclass(frozen=True)
class Limits:
    """A what-if budget; ``None`` leaves a dimension unlimited."""

    sram_bytes: int | None = None
    flash_bytes: int | None = None
    macs: int | None = None
    model: str = "deployable"

    def limit(self, dim: str) -> int | None:
        return {"sram": self.sram_bytes, "flash": self.flash_bytes, "macs": self.macs}[dim]

    def replace(self, dim: str, value: int) -> "Limits":
        d = asdict(self)
        d[{"sram": "sram_bytes", "flash": "flash_bytes", "macs": "macs"}[dim]] = value
        return Limits(**d)

    def within(self, search_budget: dict | None) -> "Limits":
        """These limits, with unset dimensions taken from a campaign's budget of the same model."""
        if not search_budget or search_budget.get("model", "deployable") != self.model:
            return self
        pick = {k: getattr(self, k) if getattr(self, k) is not None else search_budget.get(k)
                for k in ("sram_bytes", "flash_bytes", "macs")}
        return Limits(**pick, model=self.model)

    def describe(self, unset: str = "unlimited") -> str:
        parts = [f"SRAM ≤ {self.sram_bytes:,} B" if self.sram_bytes is not None else f"SRAM {unset}",
                 f"flash ≤ {self.flash_bytes:,} B" if self.flash_bytes is not None else f"flash {unset}",
                 f"MACs ≤ {self.macs:,}" if self.macs is not None else f"MACs {unset}"]
        return ", ".join(parts) + f" ({self.model} figures)"


def make_limits(sram: str | None, flash: str | None, macs: str | None, board=None,
                model: str = "deployable") -> Limits:
    """Limits from CLI strings; a board fills SRAM and flash not given explicitly."""
    if model not in FIGURE_SOURCES:
        raise UserError(f"unknown budget model '{model}': use deployable or paper")
    sram_bytes = parse_bytes(sram) if sram else (board.sram_bytes if board else None)
    flash_bytes = parse_bytes(flash) if flash else (board.flash_bytes if board else None)
    return Limits(sram_bytes, flash_bytes, parse_count(macs) if macs else None, model)


def _recost(arch: str) -> dict:
    from mcunas.arch import parse_arch
    from mcunas.cost import estimate

    return estimate(parse_arch(arch))


def with_figures(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """Add ``sram_bytes``/``flash_bytes`` (the figures checked) and where each came from."""
    df = frame.copy()
    missing = df.macs.isna()
    for measured, predicted in FIGURE_SOURCES[model].values():
        missing |= df[predicted].isna() & (df[measured].isna() if measured else True)
    missing &= df.arch.notna()
    for i in df.index[missing]:
        costs = _recost(df.at[i, "arch"])
        for dim, (_, key) in FIGURE_SOURCES[model].items():
            if key not in costs:
                raise UserError(f"this cost model gives no {key} for the {model} budget model: "
                                "use --budget-model paper")
            if pd.isna(df.at[i, key]):
                df.at[i, key] = costs[key]
        if pd.isna(df.at[i, "macs"]):
            df.at[i, "macs"] = costs["macs"]
    for dim, (measured, predicted) in FIGURE_SOURCES[model].items():
        values = df[predicted].astype(float)
        source = pd.Series("predicted" if model == "deployable" else "paper", index=df.index)
        if measured:
            has = df[measured].notna()
            values = values.where(~has, df[measured].astype(float))
            source = source.where(~has, "measured")
        df[COLUMN[dim]] = values
        df[f"{dim}_figure"] = source
    df["macs"] = df["macs"].astype(float)
    return df


def fits(df: pd.DataFrame, limits: Limits) -> np.ndarray:
    """True for rows within every set limit (a missing figure never fits)."""
    ok = np.ones(len(df), dtype=bool)
    for dim, col in COLUMN.items():
        limit = limits.limit(dim)
        if limit is not None:
            ok &= (df[col].to_numpy(float) <= limit)
    return ok


def overshoot(df: pd.DataFrame, limits: Limits) -> pd.Series:
    """Sum over dimensions of the relative excess over each limit (0 when it fits)."""
    total = pd.Series(0.0, index=df.index)
    for dim, col in COLUMN.items():
        limit = limits.limit(dim)
        if limit is not None:
            total += (df[col] / max(limit, 1) - 1).clip(lower=0)
    return total


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


def candidates(study: StudyTrials, model: str) -> pd.DataFrame:
    """Trials that can be ranked: trained with an int8 accuracy, or (cost-only) every costed one.

    One row per architecture (the earliest trial), so duplicates do not crowd the list.
    """
    df = study.frame
    if study.needs_training:
        df = df[(df.status == "trained") & df.int8_accuracy.notna()]
    else:
        df = df[df.status.isin(["trained", "rejected"]) & df.arch.notna()]
    df = df.sort_values("number").drop_duplicates("arch")
    return with_figures(df, model) if len(df) else df.assign(sram_bytes=[], flash_bytes=[])


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
            elif c in ("sram_bytes", "flash_bytes", "macs", "params", "number") and v is not None:
                v = int(v)
            row[c] = v
        out.append(row)
    return out


def _over_by(df: pd.DataFrame, limits: Limits) -> pd.Series:
    def one(r):
        parts = []
        for dim, col in COLUMN.items():
            limit = limits.limit(dim)
            if limit is not None and r[col] > limit:
                parts.append(f"{dim} +{int(r[col] - limit):,} ({r[col] / limit - 1:+.0%})" if limit else
                             f"{dim} +{int(r[col]):,}")
        return "; ".join(parts)

    return df.apply(one, axis=1) if len(df) else pd.Series(dtype=str)


def study_answer(study: StudyTrials, limits: Limits, top: int) -> dict:
    """Everything ``mcunas query`` says about one study under ``limits``."""
    limits = limits.within(study.search_budget)
    cands = candidates(study, limits.model)
    keys = ranking(study)
    ok = fits(cands, limits)
    inside = rank(cands[ok], keys)
    answer = {
        "study": study.name, "storage": study.storage_url, "space": study.space,
        "objectives": study.objectives, "ranked_by": describe_ranking(study),
        "search_budget": study.search_budget,
        "budget": {**asdict(limits), "description": limits.describe()},
        "trials": int(len(study.frame)),
        "status_counts": {k: int(v) for k, v in study.frame.status.value_counts().items()},
        "candidates": int(len(cands)), "fitting": int(ok.sum()),
        "best": rows(inside.head(top), study.name),
        "pareto": rows(pareto(inside, study), study.name),
    }
    if study.needs_training:
        rejected = study.frame[study.frame.status == "rejected"].drop_duplicates("arch")
        answer["untrained_fitting"] = int(fits(with_figures(rejected, limits.model), limits).sum()) if len(rejected) else 0
    if not ok.any() and len(cands):
        near = cands.assign(_over=overshoot(cands, limits))
        near = rank(near, keys).sort_values("_over", kind="stable").head(min(top, 5))
        answer["nearest"] = rows(near.assign(over_by=_over_by(near, limits)), study.name)
    return answer


def ladder_start(dim: str, limits: Limits, studies: list[StudyTrials], frames: list[pd.DataFrame]) -> int | None:
    """Where a dimension's tightening starts: the query limit, the loosest campaign budget, or the largest value."""
    own = [limits.within(s.search_budget).limit(dim) for s in studies]
    if all(v is not None for v in own):
        return int(max(own))
    seen = [f[COLUMN[dim]].max() for f in frames if len(f)]
    return int(max(seen)) if seen else None


def tightening(studies: list[StudyTrials], limits: Limits) -> list[dict]:
    """Best score per study at each rung of each dimension's ladder (see module doc)."""
    frames = [candidates(s, limits.model) for s in studies]
    out = []
    for dim in ("sram", "flash", "macs"):
        start = ladder_start(dim, limits, studies, frames)
        if start is None:
            continue
        steps = [start] + [v for v in LADDERS[dim] if v < start]
        base = {}
        for step in steps:
            row = {"dimension": dim, "limit": int(step), "studies": {}}
            any_fit = False
            for study, df in zip(studies, frames):
                lim = limits.replace(dim, step).within(study.search_budget)
                inside = rank(df[fits(df, lim)], ranking(study))
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


def answer(studies: list[StudyTrials], limits: Limits, top: int = 10) -> dict:
    """The whole what-if answer for one or several studies."""
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    return {"budget": {**asdict(limits), "description": limits.describe(unset="as each study's campaign")},
            "studies": [study_answer(s, limits, top) for s in studies],
            "tightening": tightening(studies, limits)}
