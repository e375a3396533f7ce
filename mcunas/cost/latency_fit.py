"""Fitting the latency model to published on-device measurements.

The data ship inside the package: ``data/latency_measurements.csv`` (one row
per published latency: board, core, clock, runtime, engine, workload, source
file) and ``data/latency_workloads.csv`` (what each workload computes: an
mcunas architecture string, or per-op MACs for published networks mcunas
cannot express).  Everything here is derived from those two files when first
needed, so every coefficient can be traced to the rows it was fitted on.

The model, for a network doing ``x_j`` units of work of op kind ``j``::

    cycles = core_factor[core] * sum_j coeff[runtime][j] * x_j

``coeff`` is cycles per MAC (convs, depthwise, fully connected), per element
(pooling, add) or per op (fixed overhead), on a Cortex-M7.  ``core_factor``
says how many more cycles another core needs for the same work (1 for the
M7); it is shared by all runtimes, which is what lets a runtime measured on
one core predict another.  Both are fitted together by alternating
non-negative least squares on *relative* error (each row weighted by
1/measured), so a 2 ms and a 2 s measurement count alike.

``tflm-ref`` has no measurement with a known op composition; it is
``tflm-cmsis-nn`` times the median ref/CMSIS-NN ratio of the same models on
the same board (the TinyEngine README's STM32H743 table).
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

# Units of work: MACs of 1x1 convs, k x k convs, depthwise convs and fully
# connected layers; elements (outputs of convs and fully connected layers,
# which are requantised and stored -- the cost that makes layers with few
# input channels slow per MAC -- plus elements pooled and elements added, one
# cost for all three since no published network separates them); ops (fixed
# per-op overhead).  A depthwise conv's outputs are a fixed share of its MACs
# (1/9 for 3x3), so its per-output cost is inside its per-MAC cost.
OP_KINDS = ("conv1x1", "conv", "depthwise", "fc", "elements", "op")
REFERENCE_CORE = "cortex-m7"
FITTED_RUNTIMES = ("tflm-cmsis-nn", "vendor")
# Op groups whose CMSIS-NN cost is the vendor cost times one fitted factor.
GROUPS = {"fc": ("fc",), "conv": ("conv1x1", "conv", "depthwise", "elements", "op")}


@dataclass(frozen=True)
class Measurement:
    source: str
    source_path: str
    board: str
    core: str
    clock_mhz: float
    runtime: str
    engine: str
    workload: str
    latency_ms: float
    use: str  # fit | ratio | excluded
    note: str

    @property
    def cycles(self) -> float:
        return self.latency_ms * self.clock_mhz * 1e3


@dataclass(frozen=True)
class LatencyFit:
    """Fitted coefficients; ``ref_ratio`` scales CMSIS-NN to reference kernels."""

    coeff: dict[str, dict[str, float]]
    core_factor: dict[str, float]
    engine_factor: dict[str, float]
    ref_ratio: float
    ref_ratio_range: tuple[float, float]

    def m7_cycles(self, work: dict[str, float], runtime: str) -> float:
        """Cycles of ``work`` under ``runtime`` on a Cortex-M7 (multiply by a core factor for others)."""
        scale = self.ref_ratio if runtime == "tflm-ref" else 1.0
        coeff = self.coeff["tflm-cmsis-nn" if runtime == "tflm-ref" else runtime]
        return scale * sum(coeff[k] * work[k] for k in OP_KINDS)


def _data_file(name: str):
    return resources.files("mcunas.cost").joinpath("data", name)


@cache
def measurements() -> tuple[Measurement, ...]:
    with _data_file("latency_measurements.csv").open() as f:
        return tuple(Measurement(**{**r, "clock_mhz": float(r["clock_mhz"]), "latency_ms": float(r["latency_ms"])})
                     for r in csv.DictReader(f))


@cache
def workloads() -> dict[str, dict[str, float]]:
    """Op work of every workload with a known composition (mcunas graph or per-op table)."""
    from mcunas.arch import parse_arch
    from mcunas.cost.graph import build_graph
    from mcunas.cost.latency import graph_work

    out: dict[str, dict[str, float]] = {}
    with _data_file("latency_workloads.csv").open() as f:
        for r in csv.DictReader(f):
            if r["arch"]:
                out[r["workload"]] = graph_work(build_graph(parse_arch(r["arch"])))
                continue
            work = out.setdefault(r["workload"], dict.fromkeys(OP_KINDS, 0.0))
            work["op"] += 1
            if r["macs"]:
                work[r["op"]] += float(r["macs"])
            work["elements"] += float(r["elements"] or 0) + float(r["outputs"] or 0)
    return out


def nnls(a: np.ndarray, b: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Non-negative least squares, min |a x - b| with x >= 0 (Lawson & Hanson's active set)."""
    n = a.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    for _ in range(iterations):
        gradient = a.T @ (b - a @ x)
        if passive.all() or gradient[~passive].max(initial=-np.inf) <= 1e-12 * max(1.0, np.abs(gradient).max()):
            break
        passive[np.argmax(np.where(passive, -np.inf, gradient))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            shrink = passive & (z <= 0)
            alpha = np.min(x[shrink] / (x[shrink] - z[shrink]))
            x = x + alpha * (z - x)
            passive &= x > 1e-15
    return x


def fit(rows: tuple[Measurement, ...], works: dict[str, dict[str, float]], rounds: int = 200,
        start: LatencyFit | None = None) -> LatencyFit:
    """Alternate NNLS for op costs with least squares for core and engine factors.

    * ``vendor`` op costs: NNLS over every vendor row; each vendor engine
      gets a speed factor (their geometric mean is 1, so the coefficients
      stand for a typical vendor engine, and the spread between engines
      shows up in the cross-validated band, not in the op costs).
    * ``tflm-cmsis-nn`` op costs: the vendor costs times one NNLS factor for
      fully connected layers and one for everything else, because the four
      published networks measured with CMSIS-NN cannot pin six costs on
      their own (finer groups gave zero-cost depthwise convs).
    * core factors: one per core, shared by both runtimes.

    ``start`` (an earlier fit) seeds the core and engine factors, which makes
    the refits of cross-validation converge in a few rounds.
    """
    used = [r for r in rows if r.use == "fit" and r.workload in works and r.runtime in FITTED_RUNTIMES]
    cores = sorted({r.core for r in used})
    engines = sorted({r.engine for r in used if r.runtime == "vendor"})
    # Each row's work divided by its measured cycles: predictions are then ratios to the truth.
    x = np.array([[works[r.workload][k] / r.cycles for k in OP_KINDS] for r in used])
    is_vendor = np.array([r.runtime == "vendor" for r in used])
    core_of = np.array([cores.index(r.core) for r in used])
    engine_of = np.array([engines.index(r.engine) if r.runtime == "vendor" else -1 for r in used])
    groups = np.zeros((len(GROUPS), len(OP_KINDS)))
    for g, kinds in enumerate(GROUPS.values()):
        groups[g, [OP_KINDS.index(k) for k in kinds]] = 1
    core = np.array([start.core_factor.get(c, 1.0) if start else 1.0 for c in cores])
    # The last entry (index -1) stands for "not a vendor row".
    engine = np.array([start.engine_factor.get(e, 1.0) if start else 1.0 for e in engines] + [1.0])
    c_vendor, g_cmsis = np.zeros(len(OP_KINDS)), np.ones(len(GROUPS))
    for _ in range(rounds):
        before = np.concatenate([c_vendor, g_cmsis, core, engine])
        speed = core[core_of] * engine[engine_of]
        c_vendor = nnls(speed[is_vendor, None] * x[is_vendor], np.ones(is_vendor.sum()))
        g_cmsis = nnls(speed[~is_vendor, None] * (x[~is_vendor] * c_vendor) @ groups.T, np.ones((~is_vendor).sum()))
        c_cmsis = c_vendor * (g_cmsis @ groups)
        base = np.where(is_vendor, x @ c_vendor, x @ c_cmsis)
        for i, name in enumerate(cores):
            if name != REFERENCE_CORE:
                core[i] = _scale((base * engine[engine_of])[core_of == i])
        for i in range(len(engines)):
            engine[i] = _scale((base * core[core_of])[engine_of == i])
        mean = np.exp(np.log(engine[:-1]).mean())
        engine[:-1] /= mean
        c_vendor = c_vendor * mean
        if np.allclose(before, np.concatenate([c_vendor, g_cmsis, core, engine]), rtol=1e-6, atol=0):
            break
    coeff = {"vendor": c_vendor, "tflm-cmsis-nn": c_vendor * (g_cmsis @ groups)}
    pairs = _ref_ratios(rows)
    return LatencyFit(
        coeff={rt: dict(zip(OP_KINDS, map(float, coeff[rt]))) for rt in FITTED_RUNTIMES},
        core_factor=dict(zip(cores, map(float, core))),
        engine_factor=dict(zip(engines, map(float, engine[:-1]))),
        ref_ratio=statistics.median(pairs),
        ref_ratio_range=(min(pairs), max(pairs)),
    )


def _scale(p: np.ndarray) -> float:
    """The factor f minimising sum((f * p - 1)^2): p are predicted/measured ratios."""
    return float(p.sum() / (p**2).sum())


def _ref_ratios(rows: tuple[Measurement, ...]) -> list[float]:
    """ref/CMSIS-NN latency of the same workload on the same board, from the same source."""
    by_key = {(r.source, r.board, r.workload, r.runtime): r.latency_ms for r in rows if r.use != "excluded"}
    return [ms / by_key[(s, b, w, "tflm-cmsis-nn")] for (s, b, w, rt), ms in by_key.items()
            if rt == "tflm-ref" and (s, b, w, "tflm-cmsis-nn") in by_key]


@cache
def fitted() -> LatencyFit:
    """The model fitted on every shipped measurement."""
    return fit(measurements(), workloads())


@dataclass(frozen=True)
class HeldOut:
    """One measurement predicted by a fit that never saw its workload."""

    row: Measurement
    predicted_ms: float

    @property
    def ratio(self) -> float:
        """measured / predicted: above 1 means the model was too fast."""
        return self.row.latency_ms / self.predicted_ms


@cache
def leave_one_model_out() -> tuple[HeldOut, ...]:
    """Refit without each workload in turn and predict that workload's rows."""
    rows, works = measurements(), workloads()
    out = []
    for name in sorted({r.workload for r in rows if r.use == "fit" and r.workload in works}):
        model = fit(rows, {w: v for w, v in works.items() if w != name}, start=fitted())
        for r in rows:
            if r.use == "fit" and r.workload == name and r.core in model.core_factor:
                cycles = model.m7_cycles(works[name], r.runtime) * model.core_factor[r.core]
                out.append(HeldOut(r, cycles / (r.clock_mhz * 1e3)))
    return tuple(out)
