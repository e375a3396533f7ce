"""Does another execution order lower the live-set bound of mcunas's networks?

The offline plan reaches the lower bound (the largest live set at one op, scratch included) on
every member measured, so only a different *order* of the ops could shrink the arena further.
For each sampled member this finds the exact minimum over all topological orders of that bound
(a dynamic programme over the sets of ops already run: the tensors alive at an op depend only on
which ops ran before it) and compares it with the bound in the converter's order.  Pure Python,
cost model only; run from the repository root::

    python tests/bench/execution_order.py [--n 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json

from mcunas.arch import parse_arch
from mcunas.cost.memory_plan import live_bound_bytes
from mcunas.cost.tflite_graph import arch_tflite_model
from mcunas.cost.tflm_arena import plan_buffers, planned_tensors
from mcunas.cost.tflm_kernels import get_target, kernel_cost
from mcunas.cost.tflm_planner import align_up
from mcunas.spaces import available_spaces, load_space, sample_strings


def min_bound_over_orders(sg, scratch_per_op: list[int]) -> tuple[int, int]:
    """(smallest bound over all topological orders, number of op sets the programme visited)."""
    n = len(sg.operators)
    planned = planned_tensors(sg)
    producer = {t: o for o, op in enumerate(sg.operators) for t in op.outputs}
    consumers = {t: 0 for t in planned}
    for o, op in enumerate(sg.operators):
        for t in op.inputs:
            if t in consumers:
                consumers[t] |= 1 << o
    needs = [sum(1 << producer[t] for t in op.inputs if t in producer) for op in sg.operators]
    outputs = set(sg.outputs)
    tensors = [(align_up(sg.tensors[t].nbytes), producer.get(t, -1), consumers[t], t in outputs) for t in planned]

    def live(done: int, o: int) -> int:
        here, total = done | (1 << o), scratch_per_op[o]
        for size, prod, cons, is_out in tensors:
            if prod >= 0 and not here >> prod & 1:
                continue
            if prod == o or is_out or cons & ~done:
                total += size
        return total

    best = {0: 0}
    for _ in range(n):
        nxt: dict[int, int] = {}
        for done, peak in best.items():
            for o in range(n):
                if not done >> o & 1 and needs[o] & ~done == 0:
                    state, value = done | 1 << o, max(peak, live(done, o))
                    if value < nxt.get(state, 1 << 62):
                        nxt[state] = value
        best = nxt
    return next(iter(best.values())), len(best)


def member(text: str) -> dict:
    sg = arch_tflite_model(parse_arch(text)).subgraphs[0]
    target = get_target("x86_64")
    scratch = [[n for n in kernel_cost(sg, op, target).scratch_bytes] for op in sg.operators]
    as_converted = live_bound_bytes(plan_buffers(sg, [(n, o) for o, ns in enumerate(scratch) for n in ns]))
    best, _ = min_bound_over_orders(sg, [sum(align_up(n) for n in ns) for ns in scratch])
    return {"as_converted": as_converted, "best": best}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    for name in available_spaces():
        rows = [member(t) for t in sample_strings(load_space(name), args.n, args.seed)]
        lower = [r for r in rows if r["best"] < r["as_converted"]]
        print(json.dumps({"space": name, "n": len(rows), "lowered": len(lower),
                          "largest_cut_pct": round(max((100 * (r["as_converted"] - r["best"]) / r["as_converted"]
                                                        for r in lower), default=0.0), 2),
                          "best_above_converted": sum(r["best"] > r["as_converted"] for r in rows)}), flush=True)


if __name__ == "__main__":
    main()
