"""TFLM's GreedyMemoryPlanner, simulated: the arena *head* (planned activations).

Rules (tflite-micro ``micro_allocation_info.cc`` and
``memory_planner/greedy_memory_planner.cc``, re-implemented here):

* Every tensor without constant data and with a non-zero size is a buffer,
  added in tensor-index order; scratch buffers that kernels request follow,
  in request order.  Sizes are rounded up to 16 bytes.
* Lifetimes count in "scopes": the subgraph inputs and outputs are created
  at scope 0; operator ``i`` is scope ``i + 1``; a tensor lives from the op
  that produces it to the last op that reads it; outputs live to the last
  scope.  A scratch buffer lives during its own op only.  Two buffers
  conflict when their closed scope intervals overlap.
* Buffers are sorted by size, largest first.  TFLM fills its sort array
  from the back and bubble-sorts it (stable), so among equal sizes the
  *later* buffer comes first — this tie-break changed the head of 7 of 46
  measured models when got wrong.  Then each is placed at the lowest offset where
  it fits in a gap between the already placed, time-overlapping buffers.
* The head is the highest end offset.
* Buffers with an *offline* offset (the model's ``OfflineMemoryAllocation``
  metadata, :mod:`mcunas.cost.memory_plan`) keep it: they go into the
  offset-ordered list first, in the order added, unsorted; only the others
  (here: the kernels' scratch buffers) are sorted and fitted into the gaps
  around them.
"""

from __future__ import annotations

from bisect import insort_right
from dataclasses import dataclass
from operator import itemgetter

ALIGN_BYTES = 16


def align_up(n: int, alignment: int = ALIGN_BYTES) -> int:
    return -(-n // alignment) * alignment


@dataclass(frozen=True)
class Buffer:
    bytes: int
    first: int
    last: int


_offset = itemgetter(0)


def plan_offsets(buffers: list[Buffer], fixed: list[int] | None = None) -> list[int]:
    """Offsets the greedy planner gives ``buffers`` (same order as given).

    ``fixed``: per buffer an offline offset, or -1 where the planner places it.
    """
    fixed = fixed or [-1] * len(buffers)
    online = sorted((i for i in range(len(buffers)) if fixed[i] < 0), key=lambda i: (-buffers[i].bytes, -i))
    placed: list[tuple[int, int]] = []  # (offset, buffer index), kept sorted by offset
    offsets = [0] * len(buffers)
    for i in range(len(buffers)):
        if fixed[i] >= 0:
            offsets[i] = fixed[i]
            insort_right(placed, (fixed[i], i), key=_offset)
    for i in online:
        want = buffers[i]
        candidate = 0
        for offset, j in placed:
            other = buffers[j]
            if other.first > want.last or want.first > other.last:
                continue
            if offset - candidate >= want.bytes:
                break
            candidate = max(candidate, offset + other.bytes)
        offsets[i] = candidate
        insort_right(placed, (candidate, i), key=_offset)  # after equal offsets, as a stable sort would
    return offsets


def peak_bytes(buffers: list[Buffer], fixed: list[int] | None = None) -> int:
    """The planner's arena head: the highest end offset of any buffer."""
    offsets = plan_offsets(buffers, fixed)
    return max((o + b.bytes for o, b in zip(offsets, buffers)), default=0)
