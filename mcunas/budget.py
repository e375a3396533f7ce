"""Budgets: one type and one judge, for one candidate or a whole table of trials.

A :class:`Budget` holds a limit per dimension — SRAM, flash, MACs and
latency — each optional (``None``: not limited), and the *budget model* that
says which figure each limit reads:

* ``deployable`` (default): the TFLM arena and the int8 ``.tflite`` size,
  because the VWW paper's rule under-counts both (MobileNetV1 α0.25@96:
  55,296 B by the rule, 103,672 B in TFLM; 210,850 int8 weights, 333,288 B
  as a file).  A trained trial is judged on what was *measured* for its own
  exported file, since that is the truth the prediction approximates; every
  other candidate on the cost model's prediction.
* ``paper``: the paper's peak rule and int8 weight count, to reproduce it.

The *memory plan* says which deployable file is judged: ``stock`` (the converted
``.tflite``, TFLM's own planner) or ``offline`` (the file ``mcunas export
--memory-plan offline`` writes: a smaller arena, ``sram_tflm_offline_bytes``, in a
file 4 B per tensor larger, ``tflite_offline_bytes``).  A trained trial's measured
figures are for its stock file, so under ``offline`` every candidate is judged on
the prediction (within +0.03 % of TFLM, never below, on the 102 models measured, results/memory_plan*.csv).

A latency limit needs a board (and a runtime): candidates are then costed
for that board, and the limit reads ``latency_high_ms``, the top of the
latency model's leave-one-model-out band (:mod:`mcunas.cost.latency`), so a
network that fits is not slower than that on the board as far as the
published measurements go.  The board and runtime travel with the budget,
since every figure it judges must be costed for them.

The judge compares *judged figures* — a mapping from :data:`COLUMN` names
(``sram_bytes``, ``flash_bytes``, ``macs``) to numbers, or a DataFrame with
those columns — with the limits, so one candidate (:meth:`Budget.judged`
of its costs) and a whole trials table (:func:`judged_frame`) go through the
same arithmetic.  Which defaults apply when a limit is not given is the
caller's choice (:data:`PAPER_BUDGET` for a search, the campaign's own
budget for a what-if query), never this module's.

:func:`cost_members` and :func:`sample_members` give the share of a space
that fits: the search's pre-check, ``mcunas frontier`` and the seeding of a
study with its space's reference networks all use them.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from functools import partial

import numpy as np
import pandas as pd

from mcunas.errors import UserError
from mcunas.cost.boards import Board
from mcunas.units import parse_bytes, parse_count, parse_latency_ms

DIMENSIONS = ("sram", "flash", "macs", "latency")
# dimension -> the Budget field holding its limit
FIELD = {"sram": "sram_bytes", "flash": "flash_bytes", "macs": "macs", "latency": "latency_ms"}
# dimension -> the judged-figure column it reads
COLUMN = {"sram": "sram_bytes", "flash": "flash_bytes", "macs": "macs", "latency": "latency_high_ms"}
# budget model -> dimension -> the cost model's predicted figure
FIGURES = {
    "deployable": {"sram": "sram_tflm_bytes", "flash": "tflite_bytes", "macs": "macs",
                   "latency": "latency_high_ms"},
    "paper": {"sram": "sram_paper_bytes", "flash": "weight_bytes", "macs": "macs", "latency": "latency_high_ms"},
}
# budget model -> dimension -> figure measured on a trained trial's own file (preferred when present)
MEASURED = {"deployable": {"sram": "tflm_arena_bytes_measured", "flash": "tflite_bytes_measured"}, "paper": {}}
# dimension -> the deployable figure with the offline memory plan embedded (see the module docstring)
OFFLINE_FIGURES = {"sram": "sram_tflm_offline_bytes", "flash": "tflite_offline_bytes"}
BUDGET_MODELS = tuple(FIGURES)
_NAMES = {"sram": "SRAM", "flash": "flash", "macs": "MACs", "latency": "latency"}
_UNITS = {"sram": " B", "flash": " B", "macs": "", "latency": " ms"}


@dataclass(frozen=True)
class Budget:
    """Limits per dimension (``None``: unlimited) and the budget model they are read in."""

    sram_bytes: int | None = None
    flash_bytes: int | None = None
    macs: int | None = None
    model: str = "deployable"
    latency_ms: float | None = None
    board: Board | None = None  # what latency figures are costed for (None: no latency figures)
    runtime: str | None = None
    memory_plan: str | None = None  # "stock" or "offline"; None: not chosen (stock, or a campaign's own)

    def __post_init__(self):
        from mcunas.cost.tflm_arena import MEMORY_PLANS

        if self.model not in FIGURES:
            raise UserError(f"unknown budget model '{self.model}': use {' or '.join(BUDGET_MODELS)}")
        if self.memory_plan not in (None, *MEMORY_PLANS):
            raise UserError(f"unknown memory plan '{self.memory_plan}': use {' or '.join(MEMORY_PLANS)}")
        if self.offline and self.model != "deployable":
            raise UserError("--memory-plan offline judges the TFLM arena and .tflite file: it needs "
                            "--budget-model deployable, not paper")
        if self.latency_ms is not None and self.board is None:
            raise UserError("a latency limit needs a board: add --board NAME (see `mcunas boards`)")

    @property
    def offline(self) -> bool:
        """True when the deployable figures are those of the file with the offline memory plan."""
        return self.memory_plan == "offline"

    def limit(self, dim: str) -> float | None:
        return getattr(self, FIELD[dim])

    def limits(self) -> dict[str, float]:
        """The dimensions that are limited, with their limits."""
        return {dim: self.limit(dim) for dim in DIMENSIONS if self.limit(dim) is not None}

    def dimensions(self) -> tuple[str, ...]:
        """The dimensions this budget can judge: latency only when costed for a board."""
        return DIMENSIONS if self.board is not None else DIMENSIONS[:-1]

    def estimate(self, arch) -> dict:
        """Every cost figure of ``arch`` this budget may judge (latency for its board and runtime)."""
        from mcunas.cost import estimate
        from mcunas.cost.latency import DEFAULT_RUNTIME

        return estimate(arch, board=self.board, runtime=self.runtime or DEFAULT_RUNTIME)

    def key(self, dim: str) -> str:
        """The cost model's figure this budget model reads for ``dim`` (e.g. ``sram_tflm_bytes``)."""
        return OFFLINE_FIGURES[dim] if self.offline and dim in OFFLINE_FIGURES else FIGURES[self.model][dim]

    def measured_key(self, dim: str) -> str | None:
        """The figure measured on a trained trial's own (stock) file that this budget prefers, if any."""
        return None if self.offline else MEASURED[self.model].get(dim)

    def with_limit(self, dim: str, value: float | None) -> "Budget":
        return replace(self, **{FIELD[dim]: value})

    def filled_from(self, other: "Budget | dict | None") -> "Budget":
        """These limits (and memory plan), with unset ones taken from ``other`` when it uses the same budget model."""
        other = Budget.from_dict(other) if isinstance(other, dict) else other
        if other is None or other.model != self.model:
            return self
        filled = {FIELD[d]: other.limit(d) for d in DIMENSIONS if self.limit(d) is None}
        if self.memory_plan is None:
            filled["memory_plan"] = other.memory_plan
        if filled.get("latency_ms") is not None and (self.board, self.runtime) != (other.board, other.runtime):
            del filled["latency_ms"]  # a latency limit belongs to its board and runtime
        return replace(self, **filled)

    def judged(self, costs):
        """Judged figures from cost-model figures: of one candidate (a dict), or per row of a costs table."""
        figures = {COLUMN[dim]: costs[self.key(dim)] for dim in self.dimensions()}
        return pd.DataFrame(figures, index=costs.index) if isinstance(costs, pd.DataFrame) else figures

    def excess(self, judged) -> dict:
        """Per limited dimension, figure minus limit (> 0: over); numbers or columns, as ``judged`` holds."""
        return {dim: judged[COLUMN[dim]] - limit for dim, limit in self.limits().items()}

    def fits(self, judged):
        """True (per row, for a table) when every limited figure is within its limit; a missing figure never fits."""
        ok = True
        for over in self.excess(judged).values():
            ok = ok & (np.asarray(over, dtype=float) <= 0)
        return ok if not isinstance(judged, pd.DataFrame) else np.broadcast_to(ok, (len(judged),)).copy()

    def violations(self, costs: dict) -> list[str]:
        """Why one candidate does not fit, one phrase per limit it breaks (empty when it fits)."""
        judged = self.judged(costs)
        return [f"{self.key(dim)} {judged[COLUMN[dim]]:,} > {self.limit(dim):,}"
                for dim, over in self.excess(judged).items() if over > 0]

    def over_by(self, judged: dict) -> str:
        """How far a judged row is over each limit, e.g. ``sram +12,000 (+9%)``."""
        parts = []
        for dim, over in self.excess(judged).items():
            if over > 0:
                limit = self.limit(dim)
                parts.append(f"{dim} +{int(over):,} ({over / limit:+.0%})" if limit else f"{dim} +{int(over):,}")
        return "; ".join(parts)

    def overshoot(self, frame: pd.DataFrame) -> pd.Series:
        """Per row, the sum over limits of the relative excess (0 when it fits): nearest misses first."""
        total = pd.Series(0.0, index=frame.index)
        for dim, over in self.excess(frame).items():
            total += (over / max(self.limit(dim), 1)).clip(lower=0)
        return total

    def constraints(self, costs: dict) -> dict[str, float]:
        """Optuna constraint values of one candidate: > 0 means over budget by that many bytes/MACs."""
        return {dim: float(over) for dim, over in self.excess(self.judged(costs)).items()}

    def describe(self, unset: str = "unlimited") -> str:
        parts = [f"{_NAMES[d]} ≤ {self.limit(d):,}{_UNITS[d]}" if self.limit(d) is not None else f"{_NAMES[d]} {unset}"
                 for d in self.dimensions()]
        where = (f"; latency: upper band, {self.runtime or _default_runtime()} on {self.board.name}"
                 if self.board is not None else "")
        plan = ", offline memory plan" if self.offline else ""
        return ", ".join(parts) + f" ({self.model} figures{plan}{where})"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Budget":
        """A budget stored with :meth:`as_dict` (unknown keys from newer versions are ignored; one
        stored before memory plans existed was judged with the stock plan)."""
        names = {f.name for f in fields(cls)}
        values = {"memory_plan": "stock", **{k: v for k, v in d.items() if k in names}}
        if isinstance(values.get("board"), dict):
            values["board"] = Board(**values["board"])
        return cls(**values)


def _default_runtime() -> str:
    from mcunas.cost.latency import DEFAULT_RUNTIME

    return DEFAULT_RUNTIME


PAPER_BUDGET = Budget(sram_bytes=250_000, flash_bytes=250_000, macs=60_000_000)
"""The VWW paper's design budget: 250 KB SRAM, 250 KB flash, 60M MACs."""


def parse_budget(sram: str | None = None, flash: str | None = None, macs: str | None = None, board=None,
                 model: str = "deployable", defaults: Budget | None = None, latency: str | None = None,
                 runtime: str | None = None, memory_plan: str | None = None) -> Budget:
    """A budget from strings with units.

    Precedence, highest first: the limits given; the board's SRAM and flash
    (external flash: no flash limit); ``defaults`` (None: unlimited).  With a
    board, candidates are costed for it (and ``runtime``) so latency can be judged.
    """
    limits = {d: defaults.limit(d) for d in DIMENSIONS[:-1]} if defaults else {}
    if board is not None:
        limits.update(sram=board.sram_bytes, flash=board.flash_bytes)
    given = {"sram": sram and parse_bytes(sram), "flash": flash and parse_bytes(flash),
             "macs": macs and parse_count(macs), "latency": latency and parse_latency_ms(latency)}
    limits.update({d: v for d, v in given.items() if v is not None})
    return Budget(**{FIELD[d]: limits.get(d) for d in DIMENSIONS}, model=model, board=board,
                  runtime=runtime if board is not None else None, memory_plan=memory_plan)


def board_budget(board, model: str = "deployable") -> Budget:
    """What one board allows: its SRAM and flash (``None`` for external flash), MACs unlimited."""
    return Budget(sram_bytes=board.sram_bytes, flash_bytes=board.flash_bytes, model=model)


def judged_frame(frame: pd.DataFrame, budget: Budget) -> pd.DataFrame:
    """A trials table with judged-figure columns added (``sram_bytes``, ``flash_bytes``, ``macs``, ...).

    Each memory dimension takes the figure measured on the trial's own
    exported file where there is one, else the prediction, and records which
    in a ``<dim>_figure`` column.  A trial stored before the cost model gave
    some figure is re-costed from its architecture string (pure Python, ms),
    and so is every trial's latency when the budget names a board: a stored
    latency may be for another board or runtime.
    """
    df = frame.copy()
    predicted = {d: budget.key(d) for d in budget.dimensions()}
    measured = {d: budget.measured_key(d) for d in budget.dimensions() if budget.measured_key(d)}
    missing = pd.Series(budget.board is not None, index=df.index)
    for dim, key in predicted.items():
        have = df[key].notna() if key in df else pd.Series(False, index=df.index)
        if dim in measured and measured[dim] in df:
            have |= df[measured[dim]].notna()
        missing |= ~have
    missing &= df.arch.notna()
    for i in df.index[missing]:
        costs = _cost(df.at[i, "arch"], budget)
        for dim, key in predicted.items():
            if dim == "latency" or key not in df or pd.isna(df.at[i, key]):
                df.at[i, key] = costs[key]
    for dim, key in predicted.items():
        values = df[key].astype(float)
        source = pd.Series("predicted" if budget.model == "deployable" else budget.model, index=df.index)
        if dim in measured and measured[dim] in df:
            has = df[measured[dim]].notna()
            values = values.where(~has, df[measured[dim]].astype(float))
            source = source.where(~has, "measured")
        df[COLUMN[dim]] = values
        if dim in measured or dim in ("sram", "flash"):
            df[f"{dim}_figure"] = source
    return df


# ---- the share of a space that fits ------------------------------------------------------------

PARALLEL_MIN_CANDIDATES = 500  # below this many distinct candidates, starting processes costs more than it saves


def _cost(arch_text: str, budget: Budget) -> dict:
    from mcunas.arch import parse_arch

    return budget.estimate(parse_arch(arch_text))


def _cost_all(archs: list[str], budget: Budget) -> dict[str, dict]:
    """Costs of each distinct architecture, over all CPU cores for big batches.

    The cost model is pure Python (a few ms per MobileNetV2), so processes,
    not threads; results do not depend on the split.
    """
    unique = list(dict.fromkeys(archs))
    workers = min(os.cpu_count() or 1, 1 + len(unique) // PARALLEL_MIN_CANDIDATES)
    if workers == 1:
        return {a: _cost(a, budget) for a in unique}
    with ProcessPoolExecutor(workers) as pool:
        costed = pool.map(partial(_cost, budget=budget), unique, chunksize=max(1, len(unique) // (4 * workers)))
        return dict(zip(unique, costed))


def sample_members(space, n: int, seed: int) -> list[dict]:
    """The searched choices of ``n`` uniformly drawn members of ``space`` (seeded, no study)."""
    from mcunas.spaces import RandomTrial, RecordingTrial, sample_arch

    trial = RandomTrial(seed)
    members = []
    for _ in range(n):
        rec = RecordingTrial(trial)
        sample_arch(space, rec)
        members.append(rec.params)
    return members


def cost_members(space, members: list[dict], budget: Budget) -> pd.DataFrame:
    """One row per member: its ``arch``, every cost figure, and its searched ``choices``.

    ``members`` give some or all searched choices (see :class:`~mcunas.spaces.ReferenceTrial`);
    ``choices`` records every one, as ``Study.enqueue_trial`` takes them.  Each
    distinct architecture is costed once (for the budget's board, if any), on
    all cores for big batches.
    """
    from mcunas.spaces import RecordingTrial, ReferenceTrial, sample_arch

    archs, choices = [], []
    for params in members:
        rec = RecordingTrial(ReferenceTrial(params))
        archs.append(str(sample_arch(space, rec)))
        choices.append(rec.params)
    costs = _cost_all(archs, budget)
    return pd.DataFrame([{"arch": a, **costs[a], "choices": c} for a, c in zip(archs, choices)])


def share_that_fits(space, budget: Budget, n: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, float]:
    """``n`` costed random members with a ``fits`` column (and ``fits_<dim>`` per limit), and the seconds it took."""
    start = time.perf_counter()
    df = cost_members(space, sample_members(space, n, seed), budget)
    elapsed_s = time.perf_counter() - start
    judged = budget.judged(df)
    df = df.assign(**judged)
    for dim, over in budget.excess(judged).items():
        df[f"fits_{dim}"] = over <= 0
    df["fits"] = budget.fits(judged)
    return df, elapsed_s
