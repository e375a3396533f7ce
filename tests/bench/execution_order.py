"""Does another execution order lower the live-set bound of mcunas's networks?

The offline plan reaches the lower bound (the largest live set at one op, scratch included) on
every member measured, so only a different *order* of the ops could shrink the arena further.
For each sampled member, :func:`mcunas.cost.execution_order.best_order` finds the order with the
smallest bound over all topological orders (exact) and this recomputes the bound of the
reordered model with the arena code's own lifetimes, against the converter's order.  Pure Python,
cost model only; run from the repository root::

    python tests/bench/execution_order.py [--n 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json

from mcunas.arch import parse_arch
from mcunas.cost.execution_order import best_order, reordered
from mcunas.cost.memory_plan import live_bound_bytes
from mcunas.cost.tflite_graph import arch_tflite_model
from mcunas.cost.tflm_arena import plan_buffers
from mcunas.cost.tflm_kernels import get_target, kernel_cost
from mcunas.cost.tflm_planner import align_up
from mcunas.spaces import available_spaces, load_space, sample_strings


def member(text: str) -> dict:
    sg = arch_tflite_model(parse_arch(text)).subgraphs[0]
    target = get_target("x86_64")
    scratch = [[n for n in kernel_cost(sg, op, target).scratch_bytes] for op in sg.operators]
    as_converted = live_bound_bytes(plan_buffers(sg, [(n, o) for o, ns in enumerate(scratch) for n in ns]))
    order = best_order(sg, [sum(align_up(n) for n in ns) for ns in scratch])
    if order is None:
        return {"as_converted": as_converted, "best": as_converted}
    sg = reordered(arch_tflite_model(parse_arch(text)), order).subgraphs[0]
    moved = [(n, order.index(o)) for o, ns in enumerate(scratch) for n in ns]
    return {"as_converted": as_converted, "best": live_bound_bytes(plan_buffers(sg, moved))}


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
