"""The execution order with the smallest live set, for graphs with branches.

The offline plan (:mod:`mcunas.cost.memory_plan`) reaches the lower bound, the largest set of
activations alive at one op, on mcunas's networks; only another order of the ops can lower
that bound.  A chain (MobileNetV1; MobileNetV2 and MnasNet blocks, whose residual ADD follows
the projection it adds) has one order.  A ShuffleNetV2 unit has two branches whose ops can
interleave, and which one runs first decides what stays alive.

**Exact search.**  Which tensors are alive while an op runs depends only on *which* ops ran
before it, not in what order, so a dynamic programme over the sets of ops already run finds
the smallest bound over all topological orders.  Those sets are few on a series of small
units (each unit's own, one after the other); where they exceed :data:`MAX_STATES` in one
step the converter's order is kept.  Ties keep the converter's order, so a model is only
reordered when that lowers the bound.  Lifetimes follow TFLM's scopes: a tensor is alive from
the op that writes it (the inputs from the start) to its last reader (the outputs to the end).
"""

from __future__ import annotations

from dataclasses import replace

from mcunas.cost.flatbuffer import Subgraph, TfliteModel
from mcunas.cost.tflm_planner import align_up

MAX_STATES = 20_000


def best_order(sg: Subgraph, scratch_bytes: list[int]) -> list[int] | None:
    """Op indices in the order with the smallest live-set bound (``scratch_bytes``: each op's
    scratch buffers, aligned), or None when the converter's order is as good or the search too big."""
    from mcunas.cost.tflm_arena import planned_tensors

    n = len(sg.operators)
    producer = {t: o for o, op in enumerate(sg.operators) for t in op.outputs}
    needs = [sum(1 << producer[t] for t in op.inputs if t in producer) for op in sg.operators]
    if all(needs[o] >> (o - 1) & 1 for o in range(1, n)):
        return None  # a chain: every op reads the one before it
    outputs = set(sg.outputs)
    tensors = []
    for t in planned_tensors(sg):
        readers = sum(1 << o for o, op in enumerate(sg.operators) if t in op.inputs)
        tensors.append((align_up(sg.tensors[t].nbytes), producer.get(t, -1), readers, t in outputs))

    def live(done: int, o: int) -> int:
        total = scratch_bytes[o]
        for size, prod, readers, is_output in tensors:
            if prod == o or (prod < 0 or done >> prod & 1) and (is_output or readers & ~done):
                total += size
        return total

    layer = {0: (0, ())}
    for _ in range(n):
        nxt: dict[int, tuple[int, tuple]] = {}
        for done, (peak, order) in layer.items():
            for o in range(n):
                if not done >> o & 1 and needs[o] & ~done == 0:
                    state, value = done | 1 << o, max(peak, live(done, o))
                    if state not in nxt or value < nxt[state][0]:
                        nxt[state] = (value, (*order, o))
        if len(nxt) > MAX_STATES:
            return None
        layer = nxt
    (peak, order), = layer.values()
    given = 0
    for o in range(n):
        given = max(given, live((1 << o) - 1, o))
    return list(order) if peak < given else None


def reordered(model: TfliteModel, order: list[int]) -> TfliteModel:
    """``model`` with its (single) subgraph's ops run in ``order``; tensor indices unchanged."""
    return replace(model, operators=[model.operators[o] for o in order])


def order_for_plan(model: TfliteModel) -> list[int] | None:
    """:func:`best_order` of a single-subgraph model around its kernels' scratch requests."""
    from mcunas.cost.memory_plan import scratch_requests

    sg = model.subgraphs[0]
    per_op = [0] * len(sg.operators)
    for n, o in scratch_requests(sg):
        per_op[o] += align_up(n)
    return best_order(sg, per_op)
