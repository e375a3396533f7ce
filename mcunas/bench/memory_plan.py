"""``mcunas bench memory-plan``: TFLM's own planner vs the offline plan mcunas embeds.

Two parts, both on seeded samples of every space:

* **cost model** (``--fit-n`` members per space, pure Python): the predicted arena with the
  stock planner and with the offline plan, the offline head's gap to the lower bound (largest
  live set), the share of members the plan shrinks, and the share that fits each SRAM budget
  (``--sram``, default 128KB and 250KB) with either arena;
* **measured** (``--n`` members per space plus the ``mlperf-vww`` preset): each is converted
  (untrained, as ``bench fidelity`` does), measured in TFLM as converted, then with the plan
  embedded; the row records both arenas, the offline prediction's error against the measured
  one, and whether both files give the same int8 outputs in TFLM on a few seeded inputs.

One CSV row per measured model (``--out``, default ``results/memory_plan.csv``); the summary
(medians and worst cases per space) is printed, or written as JSON with ``--json``.
"""

from __future__ import annotations

import csv
import json
import statistics
import tempfile
from pathlib import Path

FIELDS = ["space", "arch", "macs", "measured_stock_bytes", "measured_offline_bytes", "reduction_pct",
          "predicted_offline_bytes", "offline_error_bytes", "offline_error_pct", "head_offline_bytes",
          "head_bound_bytes", "stock_tflite_bytes", "offline_tflite_bytes", "same_outputs"]
OUTPUT_CHECK_INPUTS = 4


def register(sub) -> None:
    p = sub.add_parser("memory-plan", help="arena with TFLM's planner vs the embedded offline plan",
                       description="Predicted (cost model, many members) and measured (TFLM, exported "
                       "members) arena with TFLM's own planner and with the offline memory plan.")
    p.add_argument("--n", type=int, default=20, help="measured members per space (default 20; 0: none)")
    p.add_argument("--fit-n", type=int, default=1000, help="cost-model members per space (default 1000)")
    p.add_argument("--space", action="append", help="space(s) (default: all)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--sram", action="append", help="SRAM budgets for the fit shares (default 128KB, 250KB)")
    p.add_argument("--max-macs", type=float, default=150e6, help="measured part: skip larger members (default 150M)")
    p.add_argument("--shrunk-only", action="store_true",
                   help="measured part: only members the cost model says the plan shrinks (a selected, not random, set)")
    p.add_argument("--out", default="results/memory_plan.csv", help="CSV of the measured part")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=run)


def _pct(a: int, b: int) -> float:
    return round(100.0 * (a - b) / b, 4)


def cost_model_part(space_name: str, n: int, seed: int, budgets: dict[str, int]) -> dict:
    """Predicted arenas of ``n`` sampled members: fit shares, reductions, gap to the bound."""
    from mcunas.arch import parse_arch
    from mcunas.cost.tflite_graph import arch_tflite_model
    from mcunas.cost.tflm_arena import predict_arenas
    from mcunas.spaces import load_space, sample_strings

    rows = []
    for text in sample_strings(load_space(space_name), n, seed):
        arenas = predict_arenas(arch_tflite_model(parse_arch(text)))
        rows.append((arenas["stock"], arenas["offline"]))
    reductions = [100.0 * (s["sram_tflm_bytes"] - o["sram_tflm_bytes"]) / s["sram_tflm_bytes"] for s, o in rows]
    gaps = [o["tflm_head_bytes"] - o["tflm_head_bound_bytes"] for _, o in rows]
    shrunk = [r for r in reductions if r > 0]
    fits = {}
    for label, budget in budgets.items():
        stock = sum(s["sram_tflm_bytes"] <= budget for s, _ in rows) / len(rows)
        offline = sum(o["sram_tflm_bytes"] <= budget for _, o in rows) / len(rows)
        fits[label] = {"stock_share": round(stock, 4), "offline_share": round(offline, 4),
                       "gain_points": round(100 * (offline - stock), 2)}
    return {"n": len(rows), "shrunk_share": round(len(shrunk) / len(rows), 4),
            "median_reduction_pct": round(statistics.median(reductions), 2),
            "median_reduction_pct_where_shrunk": round(statistics.median(shrunk), 2) if shrunk else 0.0,
            "largest_reduction_pct": round(max(reductions), 2),
            "offline_head_at_bound_share": round(sum(g == 0 for g in gaps) / len(gaps), 4),
            "max_gap_to_bound_bytes": max(gaps), "fits": fits}


def measure_one(space: str, text: str, workdir: Path) -> dict:
    """Convert ``text`` (untrained), measure it as converted and with the plan embedded."""
    import numpy as np

    from mcunas.arch import parse_arch
    from mcunas.cost.flatbuffer import read_tflite
    from mcunas.cost.tflm_arena import predict_arena
    from mcunas.export.bundle import build_model
    from mcunas.export.memory_plan import embed_offline_plan
    from mcunas.export.tflite import convert_int8
    from mcunas.tflm import measure_arena, tflm_outputs

    arch = parse_arch(text)
    stock_data = convert_int8(build_model(arch))
    offline_data, plan = embed_offline_plan(stock_data)
    stock_path, offline_path = workdir / "stock.tflite", workdir / "offline.tflite"
    stock_path.write_bytes(stock_data)
    offline_path.write_bytes(offline_data)
    stock = measure_arena(stock_path)["tflm_arena_bytes"]
    offline = measure_arena(offline_path)["tflm_arena_bytes"]
    predicted = predict_arena(read_tflite(offline_data))["sram_tflm_bytes"]
    inputs = np.random.default_rng(0).integers(-128, 128, (OUTPUT_CHECK_INPUTS, 1, arch.resolution, arch.resolution,
                                                          arch.in_channels), dtype=np.int8)[:, 0]
    same = bool((tflm_outputs(stock_path, inputs) == tflm_outputs(offline_path, inputs)).all())
    return {"space": space, "arch": text, "macs": None, "measured_stock_bytes": stock,
            "measured_offline_bytes": offline, "reduction_pct": round(100.0 * (stock - offline) / stock, 4),
            "predicted_offline_bytes": predicted, "offline_error_bytes": predicted - offline,
            "offline_error_pct": _pct(predicted, offline), "head_offline_bytes": plan.head_bytes,
            "head_bound_bytes": plan.bound_bytes, "stock_tflite_bytes": len(stock_data),
            "offline_tflite_bytes": len(offline_data), "same_outputs": same}


def _shrinks(text: str) -> bool:
    from mcunas.arch import parse_arch
    from mcunas.cost.tflite_graph import arch_tflite_model
    from mcunas.cost.tflm_arena import predict_arenas

    arenas = predict_arenas(arch_tflite_model(parse_arch(text)))
    return arenas["offline"]["sram_tflm_bytes"] < arenas["stock"]["sram_tflm_bytes"]


def summarise_measured(rows: list[dict]) -> dict:
    out = {}
    for space in sorted({r["space"] for r in rows}):
        mine = [r for r in rows if r["space"] == space]
        reductions = [r["reduction_pct"] for r in mine]
        errors = [r["offline_error_pct"] for r in mine]
        out[space] = {
            "n": len(mine), "median_reduction_pct": round(statistics.median(reductions), 2),
            "largest_reduction_pct": max(reductions), "smallest_reduction_pct": min(reductions),
            "median_offline_error_pct": round(statistics.median(errors), 4), "worst_offline_error_pct": max(errors),
            "below_measured": sum(r["offline_error_bytes"] < 0 for r in mine),
            "within_1pct_share": round(sum(0 <= e <= 1.0 for e in errors) / len(errors), 3),
            "max_head_gap_to_bound_bytes": max(r["head_offline_bytes"] - r["head_bound_bytes"] for r in mine),
            "median_file_growth_bytes": statistics.median(r["offline_tflite_bytes"] - r["stock_tflite_bytes"]
                                                          for r in mine),
            "all_outputs_identical": all(r["same_outputs"] for r in mine),
        }
    return out


def run(args) -> int:
    from mcunas.arch import parse_arch
    from mcunas.cost.graph import build_graph
    from mcunas.presets import preset_arch
    from mcunas.spaces import available_spaces, load_space, sample_strings
    from mcunas.units import parse_bytes

    spaces = args.space or available_spaces()
    budgets = {text: parse_bytes(text) for text in (args.sram or ["128KB", "250KB"])}
    summary = {"cost_model": {}, "measured": {}}
    if args.fit_n:
        for name in spaces:
            summary["cost_model"][name] = cost_model_part(name, args.fit_n, args.seed, budgets)
            if not args.json:
                print(name, json.dumps(summary["cost_model"][name]), flush=True)
    if args.n:
        kept = {}
        for name in spaces:
            members = [s for s in sample_strings(load_space(name), (100 if args.shrunk_only else 10) * args.n, args.seed)
                       if sum(n["macs"] for n in build_graph(parse_arch(s)).nodes.values()) <= args.max_macs
                       and (not args.shrunk_only or _shrinks(s))]
            kept[name] = members[:args.n]
        # Round robin over the spaces, so a run stopped early still covers each (the CSV is flushed per row).
        todo = [("preset", str(preset_arch("mlperf-vww")))]
        todo += [(name, kept[name][i]) for i in range(args.n) for name in spaces if i < len(kept[name])]
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        with tempfile.TemporaryDirectory() as tmp, out.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            for space, text in todo:
                row = measure_one(space, text, Path(tmp))
                row["macs"] = sum(n["macs"] for n in build_graph(parse_arch(text)).nodes.values())
                writer.writerow(row)
                fh.flush()
                rows.append(row)
                if not args.json:
                    print(f"{space:<14} {row['measured_stock_bytes']:>9,} -> {row['measured_offline_bytes']:>9,} "
                          f"({row['reduction_pct']:5.1f} %) predicted {row['offline_error_pct']:+.3f} % "
                          f"same outputs {row['same_outputs']}", flush=True)
        summary["measured"] = summarise_measured(rows)
        summary["csv"] = str(out)
    print(json.dumps(summary, indent=2))
    return 0
