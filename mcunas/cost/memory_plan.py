"""An offline memory plan: an offset for every activation, with a smaller head than TFLM's own.

TFLM's GreedyMemoryPlanner (:mod:`mcunas.cost.tflm_planner`) places buffers largest first,
each at the lowest offset where it fits.  On a MobileNet chain that leaves holes: for the
MLPerf VWW network its head is 73,728 B, while no op ever has more than 55,296 B alive.
TFLM also takes a plan made offline, stored in the model (``OfflineMemoryAllocation``
metadata, :mod:`mcunas.export.memory_plan`), and fits only its kernels' scratch buffers
around it.  This module makes that plan.

**Why searching orders is enough.**  Place buffers one at a time, each at the lowest offset
where it fits between the already placed buffers it overlaps in time ("first fit").  Every
plan can be reproduced at no greater height this way: take its buffers in order of offset
and first-fit them; each lands at or below its offset in the plan, because every placed
buffer that overlaps it in time lay wholly below that offset in the plan, and has only moved
down.  So the best head over all orders is the optimum, and a search over orders searches
all plans.

**The search**, cheapest first, stopping as soon as the head reaches the lower bound:

1. the lower bound: the largest live set at any scope (sizes rounded up to 16 B, scratch
   buffers included) — no plan can go below it;
2. first fit in a few orders (size, lifetime × size, conflict weight, first use, ...);
3. local search on the best order: move one buffer earlier, keep the move when the head
   does not grow, within :data:`LOCAL_SEARCH_EVALUATIONS` first-fit runs;
4. with at most :data:`EXHAUSTIVE_BUFFERS` tensors, a branch and bound over all orders,
   which proves the optimum where the bound is not reached.

**Scratch buffers** (e.g. MEAN's) are not in the plan: TFLM's online planner places them
after every offline buffer, largest first (later first among equals), first fit.  The search
places them in exactly that way, last, so the head it reports is the head TFLM computes
(:func:`mcunas.cost.tflm_planner.peak_bytes` with the offsets as fixed ones checks it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mcunas.cost.flatbuffer import Subgraph, TfliteModel
from mcunas.cost.tflm_planner import Buffer, peak_bytes
from mcunas.errors import UserError

ONLINE = -1  # the metadata's "let TFLM's planner place this tensor"
LOCAL_SEARCH_EVALUATIONS = 400
EXHAUSTIVE_BUFFERS = 8


@dataclass(frozen=True)
class OfflinePlan:
    """``offsets``: one per tensor of the subgraph (ONLINE for those TFLM does not plan);
    ``head_bytes``: TFLM's head with this plan and its scratch buffers; ``bound_bytes``: the
    largest live set; ``optimal``: the head is proven minimal; ``order``: the execution order
    (op indices of the model as given) the plan is for, None for the model's own
    (:mod:`mcunas.cost.execution_order`)."""

    offsets: list[int]
    head_bytes: int
    bound_bytes: int
    optimal: bool
    order: list[int] | None = None


def live_bound_bytes(buffers: list[Buffer]) -> int:
    """Largest sum of buffer sizes alive at one scope: no plan's head is below it."""
    scopes = max((b.last for b in buffers), default=-1) + 1
    delta = [0] * (scopes + 1)
    for b in buffers:
        delta[b.first] += b.bytes
        delta[b.last + 1] -= b.bytes
    live, best = 0, 0
    for d in delta:
        live += d
        best = max(best, live)
    return best


class _Placer:
    """First fit of buffers in a given order; buffers ``fixed_tail`` (the scratch buffers)
    always go last, in TFLM's online order."""

    def __init__(self, buffers: list[Buffer], planned: int):
        self.buffers = buffers
        self.planned = planned
        self.overlaps = [[j for j, o in enumerate(buffers) if j != i and not (o.first > b.last or b.first > o.last)]
                         for i, b in enumerate(buffers)]
        self.tail = sorted(range(planned, len(buffers)), key=lambda i: (-buffers[i].bytes, -i))

    def lowest_offset(self, i: int, offsets: list[int]) -> int:
        """Lowest offset where buffer ``i`` fits between the placed (offset >= 0) buffers it overlaps."""
        size = self.buffers[i].bytes
        candidate = 0
        for start, end in sorted((offsets[j], offsets[j] + self.buffers[j].bytes)
                                 for j in self.overlaps[i] if offsets[j] >= 0):
            if start - candidate >= size:
                break
            candidate = max(candidate, end)
        return candidate

    def place(self, order: list[int], limit: int | None = None) -> tuple[int, list[int]]:
        """(head, offsets); stops early, returning a head above ``limit``, once it passes it."""
        offsets = [-1] * len(self.buffers)
        head = 0
        for i in (*order, *self.tail):
            offsets[i] = self.lowest_offset(i, offsets)
            head = max(head, offsets[i] + self.buffers[i].bytes)
            if limit is not None and head > limit:
                return head, offsets
        return head, offsets


def _orders(buffers: list[Buffer], planned: int, overlaps: list[list[int]]) -> list[list[int]]:
    """Starting orders for first fit: each a different notion of "hardest to place first"."""
    n = range(planned)
    span = [buffers[i].last - buffers[i].first + 1 for i in n]
    weight = [sum(buffers[j].bytes for j in overlaps[i]) for i in n]
    keys = [
        lambda i: (-buffers[i].bytes, -i),  # TFLM's own order
        lambda i: (-buffers[i].bytes, buffers[i].first),
        lambda i: (-buffers[i].bytes * span[i], buffers[i].first),
        lambda i: (-span[i], -buffers[i].bytes),
        lambda i: (-(weight[i] + buffers[i].bytes), -buffers[i].bytes),
        lambda i: (buffers[i].first, -buffers[i].bytes),
        lambda i: (-buffers[i].last, -buffers[i].bytes),
    ]
    return [sorted(n, key=key) for key in keys]


def optimise_offsets(buffers: list[Buffer], planned: int) -> tuple[list[int], int, int, bool]:
    """Offsets for ``buffers`` (the first ``planned`` are planned, the rest scratch placed as TFLM
    does): (offsets, head, bound, proven optimal)."""
    bound = live_bound_bytes(buffers)
    placer = _Placer(buffers, planned)
    best_head, best_offsets, best_order = None, None, None
    for order in _orders(buffers, planned, placer.overlaps):
        head, offsets = placer.place(order, best_head)
        if best_head is None or head < best_head:
            best_head, best_offsets, best_order = head, offsets, order
        if best_head <= bound:
            return best_offsets, best_head, bound, True
    best_head, best_offsets, best_order = _local_search(placer, best_order, best_head, best_offsets, bound)
    if best_head > bound and planned <= EXHAUSTIVE_BUFFERS:
        best_head, best_offsets = _branch_and_bound(placer, best_head, best_offsets)
        return best_offsets, best_head, bound, True
    return best_offsets, best_head, bound, best_head <= bound


def _local_search(placer: _Placer, order: list[int], head: int, offsets: list[int], bound: int):
    """Move one buffer to an earlier position; keep moves that do not raise the head."""
    rng = random.Random(0)  # seeded: the same model always gets the same plan
    n = len(order)
    if n < 2:
        return head, offsets, order
    for _ in range(LOCAL_SEARCH_EVALUATIONS):
        i = rng.randrange(1, n)
        j = rng.randrange(0, i)
        trial = order[:j] + [order[i]] + order[j:i] + order[i + 1:]
        trial_head, trial_offsets = placer.place(trial, head)
        if trial_head <= head:
            order, offsets = trial, trial_offsets
            if trial_head < head:
                head = trial_head
                if head <= bound:
                    break
    return head, offsets, order


def _branch_and_bound(placer: _Placer, head: int, offsets: list[int]) -> tuple[int, list[int]]:
    """Every order of the (few) planned buffers, depth first, cut where the head reaches the best."""
    best = [head, offsets]
    current = [-1] * len(placer.buffers)

    def extend(remaining: list[int], height: int) -> None:
        if not remaining:
            h, o = placer.place([i for i in sorted(range(placer.planned), key=current.__getitem__)])
            if h < best[0]:
                best[:] = [h, o]
            return
        for k, i in enumerate(remaining):
            offset = placer.lowest_offset(i, current)
            if max(height, offset + placer.buffers[i].bytes) >= best[0]:
                continue
            current[i] = offset
            extend(remaining[:k] + remaining[k + 1:], max(height, offset + placer.buffers[i].bytes))
            current[i] = -1

    extend(list(range(placer.planned)), 0)
    return best[0], best[1]


def plan_subgraph(sg: Subgraph, scratch: list[tuple[int, int]] = ()) -> OfflinePlan:
    """The offline plan of subgraph ``sg`` whose kernels request ``scratch`` (bytes, op index)."""
    from mcunas.cost.tflm_arena import plan_buffers, planned_tensors

    tensors = list(planned_tensors(sg))
    buffers = plan_buffers(sg, scratch)
    offsets, head, bound, optimal = optimise_offsets(buffers, len(tensors))
    per_tensor = [ONLINE] * len(sg.tensors)
    for k, t in enumerate(tensors):
        per_tensor[t] = offsets[k]
    fixed = offsets[:len(tensors)] + [ONLINE] * (len(buffers) - len(tensors))
    assert peak_bytes(buffers, fixed) == head, "the search and TFLM's planner disagree on the head"
    return OfflinePlan(per_tensor, head, bound, optimal)


def offline_plan(model: TfliteModel) -> OfflinePlan:
    """The offline plan of a single-subgraph model, around its kernels' scratch requests, in
    the execution order with the smallest live set (``order``, when not the model's own)."""
    from dataclasses import replace

    from mcunas.cost.execution_order import order_for_plan, reordered

    if len(model.subgraphs) > 1:
        raise UserError("offline memory plans are made for single-subgraph models only")
    order = order_for_plan(model)
    if order is not None:
        return replace(offline_plan(reordered(model, order)), order=order)
    return plan_subgraph(model.subgraphs[0], scratch_requests(model.subgraphs[0]))


def scratch_requests(sg: Subgraph) -> list[tuple[int, int]]:
    """The scratch buffers ``(bytes, op index)`` its kernels request, in request order."""
    from mcunas.cost.tflm_kernels import get_target, kernel_cost

    target = get_target("x86_64")  # scratch sizes do not depend on the ABI
    return [(n, index) for index, op in enumerate(sg.operators) for n in kernel_cost(sg, op, target).scratch_bytes]
