"""The VWW paper's first-order peak-SRAM rule (Chowdhery et al., 2019, §5).

For every op, count its inputs and its output; add every tensor that another
branch still needs later (the residual input of a MobileNetV2 block while the
block's own ops run).  A tensor counts once however many ops read it, so an
input shared by both branches is counted once.  The peak is the largest such
sum.  Activations are int8 (one byte); weights stay in flash.
"""

from __future__ import annotations

import networkx as nx

from mcunas.cost.graph import tensor_bytes


def paper_peak_bytes(graph: nx.DiGraph) -> int:
    """Peak of (inputs + output + tensors alive for later ops) over all ops."""
    size = {t: tensor_bytes(shape) for t, shape in graph.graph["tensors"].items()}
    last_use: dict[str, int] = {}
    for node, data in graph.nodes(data=True):
        for t in data["inputs"]:
            last_use[t] = node
    alive: set[str] = {graph.graph["input"]}
    peak = 0
    for node, data in graph.nodes(data=True):
        live = alive | set(data["inputs"]) | {data["output"]}
        peak = max(peak, sum(size[t] for t in live))
        alive.add(data["output"])
        alive = {t for t in alive if last_use.get(t, -1) > node}
    return peak
