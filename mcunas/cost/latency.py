"""Latency per inference on a board, by core, runtime and op mix.

A network's op graph is reduced to the work of each op kind (MACs of 1x1
convs, of k x k convs, of depthwise convs, of fully connected layers;
elements pooled or added; the number of ops), and cycles are a fitted cost
per unit of each kind times a per-core factor (:mod:`mcunas.cost.latency_fit`
says how, from which published measurements).  Because the kinds cost
different cycles per MAC, a depthwise-heavy network runs at a different
MACs/cycle than a 1x1-heavy one of the same MAC count.

Runtimes:

* ``tflm-cmsis-nn``: TensorFlow Lite Micro with Arm's CMSIS-NN kernels (the
  default on Cortex-M boards);
* ``tflm-ref``: TFLM with its portable reference kernels;
* ``vendor``: a vendor's optimising engine.  The data stand for X-CUBE-AI
  7.1/10.0 (STMicroelectronics), the Plumerai inference engine and Bosch
  HALE, as submitted to MLPerf Tiny or published in the STM32 model zoo.

Every figure comes with a band from leave-one-model-out cross-validation:
``latency_low_ms`` and ``latency_high_ms`` are the estimate times the
smallest and largest measured/predicted ratio seen when each published
model was predicted by a fit that never saw it.  Budgets should be checked
against ``latency_high_ms``: no held-out published model ran slower than it.
"""

from __future__ import annotations

import statistics
from math import prod

import networkx as nx

from mcunas.cost.boards import CORES, Board
from mcunas.cost.latency_fit import OP_KINDS, fitted, leave_one_model_out, workloads
from mcunas.errors import UserError

RUNTIMES = {
    "tflm-cmsis-nn": "TensorFlow Lite Micro with CMSIS-NN kernels",
    "tflm-ref": "TensorFlow Lite Micro with its reference kernels",
    "vendor": "vendor engines (X-CUBE-AI, Plumerai, Bosch HALE)",
}
DEFAULT_RUNTIME = "tflm-cmsis-nn"

# No public on-device measurement of a Cortex-M55 was found.  It shares the
# Helium (MVE) vector unit and CMSIS-NN's Helium kernels with the measured
# Cortex-M85 but has a single-issue scalar pipeline, so it is taken as 1.5x
# the M85's cycles: an assumption, not a measurement (see README).
DERIVED_CORES = {"cortex-m55": ("cortex-m85", 1.5)}

_POOLS = ("MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D")
_MAC_KINDS = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise", "FULLY_CONNECTED": "fc"}


def graph_work(graph: nx.DiGraph) -> dict[str, float]:
    """Units of work per op kind in an op graph from :func:`mcunas.cost.graph.build_graph`."""
    work = dict.fromkeys(OP_KINDS, 0.0)
    tensors = graph.graph["tensors"]
    for _, node in graph.nodes(data=True):
        work["op"] += 1
        op = node["op"]
        if op in _MAC_KINDS:
            kind = _MAC_KINDS[op]
            work["conv1x1" if kind == "conv" and node["kernel"] == 1 else kind] += node["macs"]
            if kind != "depthwise":
                work["elements"] += prod(tensors[node["output"]])
        elif op in _POOLS:
            work["elements"] += prod(tensors[node["inputs"][0]])
        elif op == "ADD":
            work["elements"] += prod(tensors[node["output"]])
    return work



def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise UserError(f"unknown runtime '{runtime}': choose one of {', '.join(RUNTIMES)}")
    return runtime


def _core_factor(core: str) -> float:
    model = fitted()
    if core in model.core_factor:
        return model.core_factor[core]
    if core in DERIVED_CORES:
        base, ratio = DERIVED_CORES[core]
        return model.core_factor[base] * ratio
    raise UserError(f"no latency data for core '{core}': choose one of {', '.join(CORES)}")


def cycles(work: dict[str, float], core: str, runtime: str) -> float:
    """Estimated cycles per inference of ``work`` (see :func:`graph_work`)."""
    return fitted().m7_cycles(work, check_runtime(runtime)) * _core_factor(core)


def is_cnn(work: dict[str, float]) -> bool:
    """Most MACs in convolutions: the networks mcunas searches."""
    return work["fc"] < 0.5 * sum(work[k] for k in ("conv1x1", "conv", "depthwise", "fc"))


def error_band(runtime: str) -> tuple[float, float, float]:
    """(lowest, highest measured/predicted ratio, median |error|) of held-out CNNs.

    Only convolutional networks count: the fully connected autoencoder is
    the one network that pins the fully connected cost, so leaving it out
    says nothing about the CNNs mcunas searches (``mcunas bench latency``
    shows its error too).
    """
    base = "tflm-cmsis-nn" if runtime == "tflm-ref" else runtime
    ratios = [h.ratio for h in leave_one_model_out() if h.row.runtime == base and is_cnn(workloads()[h.row.workload])]
    low, high = min(ratios), max(ratios)
    if runtime == "tflm-ref":
        lo, hi = fitted().ref_ratio_range
        low, high = low * lo / fitted().ref_ratio, high * hi / fitted().ref_ratio
    return low, high, statistics.median(abs(r - 1) for r in ratios)


def latency_figures(graph: nx.DiGraph, board: Board, runtime: str = DEFAULT_RUNTIME) -> dict:
    """``runtime``, ``latency_ms`` and its band for ``graph`` on ``board``.

    ``latency_high_ms`` is the figure to budget with (see module doc).
    """
    ms = cycles(graph_work(graph), board.core, runtime) / (board.clock_mhz * 1e3)
    low, high, typical = error_band(runtime)
    return {
        "runtime": runtime,
        "latency_ms": round(ms, 2),
        "latency_low_ms": round(ms * low, 2),
        "latency_high_ms": round(ms * high, 2),
        "latency_error_pct": round(100 * typical, 1),
    }
