"""The pure-Python cost model: what a candidate costs before any training.

Nothing in this package imports TensorFlow; a candidate is costed in well
a few milliseconds from its :class:`~mcunas.arch.Arch` alone.
"""

from __future__ import annotations

from mcunas.arch import Arch
from mcunas.cost.boards import Board
from mcunas.cost.graph import build_graph
from mcunas.cost.latency import DEFAULT_RUNTIME, latency_figures
from mcunas.cost.paper import paper_peak_bytes
from mcunas.cost.tflite_graph import arch_tflite_model
from mcunas.cost.tflite_size import offline_plan_bytes, tflite_bytes
from mcunas.cost.tflm_arena import predict_arenas


def estimate(arch: Arch, board: Board | None = None, mbv2_slices: int = 1, deployable: bool = True,
             runtime: str = DEFAULT_RUNTIME) -> dict:
    """All cost figures of ``arch``, in bytes, counts or milliseconds.

    * ``macs``: multiply-accumulates of convs, depthwise convs and the classifier.
    * ``params``: weights plus biases after BatchNorm folding (what the
      deployed model stores).
    * ``keras_params``: the count Keras' ``model.summary()`` shows (conv
      kernels without bias plus four BatchNorm numbers per channel).
    * ``weight_bytes``: ``params`` at one byte each — the paper's flash figure.
    * ``sram_paper_bytes``: the paper's peak rule; with ``mbv2_slices`` > 1
      MobileNetV2 blocks are computed in that many channel slices (§5.3).
    * ``tflite_bytes``: predicted size of the exported int8 ``.tflite``
      (:mod:`mcunas.cost.tflite_size`).
    * ``tflite_offline_bytes``: the same file with the offline memory plan
      embedded (``export --memory-plan offline``): 4 B per tensor and 76 B more.
    * ``sram_tflm_bytes``: predicted TFLM arena, the greedy-planned head plus
      the persistent tail (:mod:`mcunas.cost.tflm_arena`).
    * ``sram_tflm_offline_bytes``: the same with the offline memory plan
      ``mcunas export --memory-plan offline`` embeds (:mod:`mcunas.cost.memory_plan`).
    * ``runtime``, ``latency_ms``, ``latency_low_ms``, ``latency_high_ms``,
      ``latency_error_pct``: only with a board, for ``runtime`` on it (see
      :mod:`mcunas.cost.latency`; budget with ``latency_high_ms``).

    ``deployable=False`` leaves out the two deployable figures (the paper's
    figures alone cost about half the time).
    """
    graph = build_graph(arch)
    nodes = graph.nodes.values()
    macs = sum(n["macs"] for n in nodes)
    params = sum(n["weights"] + n["biases"] for n in nodes)
    batchnorm_channels = sum(n["biases"] for n in nodes if n["op"] != "FULLY_CONNECTED")
    sliced = graph if mbv2_slices == 1 else build_graph(arch, slices=mbv2_slices)
    out = {
        "arch": str(arch),
        "macs": macs,
        "params": params,
        "keras_params": params + 3 * batchnorm_channels,
        "weight_bytes": params,
        "sram_paper_bytes": paper_peak_bytes(sliced),
    }
    if deployable:
        exported = arch_tflite_model(arch, graph)
        out["tflite_bytes"] = tflite_bytes(exported)
        out["tflite_offline_bytes"] = out["tflite_bytes"] + offline_plan_bytes(len(exported.tensors))
        arenas = predict_arenas(exported)
        out["sram_tflm_bytes"] = arenas["stock"]["sram_tflm_bytes"]
        out["sram_tflm_offline_bytes"] = arenas["offline"]["sram_tflm_bytes"]
    if board is not None:
        out["board"] = board.name
        out.update(latency_figures(graph, board, runtime))
    return out
