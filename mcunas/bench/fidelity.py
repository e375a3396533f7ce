"""``mcunas bench fidelity``: cost-model predictions against real exports measured in TFLM.

For N sampled architectures per space: predict ``sram_tflm_bytes`` and
``tflite_bytes`` with the pure-Python cost model, then run the ground-truth
path — build the Keras model, prepare it as an untrained export, convert to
int8, measure in TFLM (child process) — and compare.  Writes one CSV row per
architecture and prints, per space, the median and worst relative error and
the share within ±1 %, plus the time ratio of the two paths, both measured
in this run.

Architectures above ``--max-macs`` (default 150M) are skipped and counted:
they are outside every budget this tool is for and take minutes to convert.
"""

from __future__ import annotations

import csv
import json
import statistics
import tempfile
import time
from pathlib import Path

FIELDS = ["space", "arch", "macs", "predicted_arena_bytes", "measured_arena_bytes", "arena_error_pct",
          "predicted_tflite_bytes", "measured_tflite_bytes", "tflite_error_pct", "cost_model_ms",
          "ground_truth_ms"]


def register(sub) -> None:
    p = sub.add_parser("fidelity", help="cost model vs TFLM measurements of real exports",
                       description="Sample N architectures per space, export each (untrained), measure "
                       "it in TFLM and compare with the cost model's arena and file-size predictions.")
    p.add_argument("--n", type=int, default=30, help="architectures per space (default 30)")
    p.add_argument("--space", action="append", help="space(s) (default: all)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--max-macs", type=float, default=150e6, help="skip larger architectures (default 150M)")
    p.add_argument("--out", default="results/cost_model_fidelity.csv", help="CSV path")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=run)


def _error_pct(predicted: int, measured: int) -> float:
    return round(100.0 * (predicted - measured) / measured, 4)


def measure_one(space: str, arch_string: str, workdir: Path) -> dict:
    """One row: cost-model prediction and ground truth for one architecture."""
    from mcunas.arch import parse_arch
    from mcunas.cost import estimate
    from mcunas.export.bundle import build_model
    from mcunas.export.tflite import convert_int8
    from mcunas.tflm import measure_arena

    arch = parse_arch(arch_string)
    start = time.perf_counter()
    cost = estimate(arch)
    cost_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    data = convert_int8(build_model(arch))
    path = workdir / "model.tflite"
    path.write_bytes(data)
    measured = measure_arena(path)
    truth_ms = (time.perf_counter() - start) * 1000
    return {
        "space": space, "arch": arch_string, "macs": cost["macs"],
        "predicted_arena_bytes": cost["sram_tflm_bytes"], "measured_arena_bytes": measured["tflm_arena_bytes"],
        "arena_error_pct": _error_pct(cost["sram_tflm_bytes"], measured["tflm_arena_bytes"]),
        "predicted_tflite_bytes": cost["tflite_bytes"], "measured_tflite_bytes": measured["tflite_bytes"],
        "tflite_error_pct": _error_pct(cost["tflite_bytes"], measured["tflite_bytes"]),
        "cost_model_ms": round(cost_ms, 3), "ground_truth_ms": round(truth_ms, 1),
    }


def summarise(rows: list[dict]) -> dict:
    """Per space: median / worst absolute error and share within ±1 % for arena and file size."""
    out = {}
    for space in sorted({r["space"] for r in rows}):
        mine = [r for r in rows if r["space"] == space]
        entry = {"n": len(mine)}
        for key in ("arena", "tflite"):
            errors = [abs(r[f"{key}_error_pct"]) for r in mine]
            worst = max(mine, key=lambda r: abs(r[f"{key}_error_pct"]))
            entry[key] = {"median_abs_error_pct": round(statistics.median(errors), 4),
                          "worst_error_pct": worst[f"{key}_error_pct"], "worst_arch": worst["arch"],
                          "within_1pct_share": round(sum(e <= 1.0 for e in errors) / len(errors), 3)}
        out[space] = entry
    ratios = [r["ground_truth_ms"] / max(r["cost_model_ms"], 1e-6) for r in rows]
    out["time"] = {"median_cost_model_ms": round(statistics.median(r["cost_model_ms"] for r in rows), 3),
                   "median_ground_truth_ms": round(statistics.median(r["ground_truth_ms"] for r in rows), 1),
                   "median_ratio": round(statistics.median(ratios))}
    return out


def run(args) -> int:
    from mcunas.arch import parse_arch
    from mcunas.cost import estimate
    from mcunas.spaces import available_spaces, load_space, sample_strings

    rows, skipped = [], {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        for name in args.space or available_spaces():
            space = load_space(name)
            kept = []
            for s in sample_strings(space, 10 * args.n, args.seed):
                if len(kept) == args.n:
                    break
                if s in kept:
                    continue
                if estimate(parse_arch(s))["macs"] > args.max_macs:
                    skipped[space.name] = skipped.get(space.name, 0) + 1
                    continue
                kept.append(s)
            for s in kept:
                row = measure_one(space.name, s, Path(tmp))
                writer.writerow(row)
                fh.flush()
                rows.append(row)
    summary = summarise(rows)
    summary["skipped_over_max_macs"] = skipped
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"wrote {out} ({len(rows)} architectures)")
    for space, e in summary.items():
        if space in ("time", "skipped_over_max_macs"):
            continue
        a, t = e["arena"], e["tflite"]
        print(f"{space:<14} n={e['n']:<3} arena: median |err| {a['median_abs_error_pct']:.3f} %, worst "
              f"{a['worst_error_pct']:+.3f} %, within 1 %: {a['within_1pct_share']:.0%} | tflite: median |err| "
              f"{t['median_abs_error_pct']:.3f} %, worst {t['worst_error_pct']:+.3f} %, within 1 %: "
              f"{t['within_1pct_share']:.0%}")
    tm = summary["time"]
    print(f"time per architecture: cost model {tm['median_cost_model_ms']} ms, build+convert+TFLM "
          f"{tm['median_ground_truth_ms']:,} ms (median ratio {tm['median_ratio']:,}x); skipped over "
          f"--max-macs: {skipped or 'none'}")
    return 0
