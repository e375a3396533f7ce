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

``--tflite DIR`` instead checks ``mcunas estimate --tflite`` on every ``.tflite`` file in
DIR (the user's own models): per file the ops, the predicted arena (x86_64, the pip
package, and cortex-m), the measured arena and the error; files the estimator refuses are
listed with the reason.  The source of each file is taken from ``--sources`` (a CSV with
``file,source`` columns, e.g. tests/bench/fidelity_sources.csv) when given.

``--repredict CSV`` recomputes only the predicted and error columns of an earlier run's
CSV with today's cost model, keeping its measurements: after a cost-model change it shows
at once, without re-exporting, whether any measured architecture is now predicted below
its truth.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from mcunas.output import progress_bar

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
    p.add_argument("--out", help="CSV path (default results/cost_model_fidelity.csv, or "
                   "results/tflite_fidelity.csv with --tflite)")
    p.add_argument("--tflite", metavar="DIR", help="check the arena prediction on every .tflite in DIR instead")
    p.add_argument("--sources", help="with --tflite: CSV naming each file's source (columns file,source)")
    p.add_argument("--repredict", metavar="CSV", help="recompute the predictions of an earlier run's CSV with "
                   "the current cost model (measurements kept), rewrite it and report rows under")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=run)


def _error_pct(predicted: int, measured: int) -> float:
    return round(100.0 * (predicted - measured) / measured, 4)


def predicted(row: dict) -> dict:
    """``row`` (its space, arch and measured columns) with the current cost model's predictions and errors."""
    from mcunas.arch import parse_arch
    from mcunas.cost import estimate

    start = time.perf_counter()
    cost = estimate(parse_arch(row["arch"]))
    cost_ms = (time.perf_counter() - start) * 1000
    arena, size = int(row["measured_arena_bytes"]), int(row["measured_tflite_bytes"])
    return {**row, "macs": cost["macs"],
            "predicted_arena_bytes": cost["sram_tflm_bytes"], "measured_arena_bytes": arena,
            "arena_error_pct": _error_pct(cost["sram_tflm_bytes"], arena),
            "predicted_tflite_bytes": cost["tflite_bytes"], "measured_tflite_bytes": size,
            "tflite_error_pct": _error_pct(cost["tflite_bytes"], size), "cost_model_ms": round(cost_ms, 3)}


def measure_one(space: str, arch_string: str, workdir: Path) -> dict:
    """One row: ground truth (export measured in TFLM) and cost-model prediction for one architecture."""
    from mcunas.arch import parse_arch
    from mcunas.export.bundle import build_model
    from mcunas.export.tflite import convert_int8
    from mcunas.tflm import measure_arena

    start = time.perf_counter()
    data = convert_int8(build_model(parse_arch(arch_string)))
    path = workdir / "model.tflite"
    path.write_bytes(data)
    measured = measure_arena(path)
    truth_ms = (time.perf_counter() - start) * 1000
    return predicted({"space": space, "arch": arch_string, "measured_arena_bytes": measured["tflm_arena_bytes"],
                      "measured_tflite_bytes": measured["tflite_bytes"], "ground_truth_ms": round(truth_ms, 1)})


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
        entry["under"] = {key: sum(r[f"predicted_{key}_bytes"] < r[f"measured_{key}_bytes"] for r in mine)
                          for key in ("arena", "tflite")}
        out[space] = entry
    ratios = [r["ground_truth_ms"] / max(r["cost_model_ms"], 1e-6) for r in rows]
    out["time"] = {"median_cost_model_ms": round(statistics.median(r["cost_model_ms"] for r in rows), 3),
                   "median_ground_truth_ms": round(statistics.median(r["ground_truth_ms"] for r in rows), 1),
                   "median_ratio": round(statistics.median(ratios))}
    return out


def run_repredict(args) -> int:
    from mcunas.atomic import write_atomic
    from mcunas.errors import UserError

    path = Path(args.repredict)
    try:
        with path.open(newline="") as fh:
            old = list(csv.DictReader(fh))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    if not old or not set(FIELDS) <= set(old[0]):
        raise UserError(f"{path} is not a `mcunas bench fidelity` CSV (columns {', '.join(FIELDS)})")
    # the timings stay those of the run that measured (this machine may be busy now)
    rows = [{**predicted(r), "cost_model_ms": float(r["cost_model_ms"]), "ground_truth_ms": float(r["ground_truth_ms"])}
            for r in old]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({f: r[f] for f in FIELDS} for r in rows)
    write_atomic(path, text.getvalue().encode())
    _report(summarise(rows), args, f"re-predicted {path} ({len(rows)} architectures, measurements kept)")
    return 0


TFLITE_FIELDS = ["file", "source", "ops", "predicted_arena_bytes", "measured_arena_bytes", "arena_error_bytes",
                 "arena_error_pct", "predicted_cortex_m_arena_bytes", "status"]


def check_tflite_file(path: Path, source: str = "") -> dict:
    """One row of the --tflite table: prediction (both targets) and TFLM measurement of ``path``."""
    from collections import Counter

    from mcunas.cost.flatbuffer import read_tflite
    from mcunas.cost.tflm_arena import predict_arena
    from mcunas.errors import UserError
    from mcunas.tflm import measure_arena

    row = dict.fromkeys(TFLITE_FIELDS, "")
    row.update(file=path.name, source=source, status="ok")
    try:
        model = read_tflite(path.read_bytes())
        row["ops"] = " ".join(f"{op}x{n}" for op, n in Counter(o.op for sg in model.subgraphs
                                                                 for o in sg.operators).items())
        row["predicted_arena_bytes"] = predict_arena(model)["sram_tflm_bytes"]
        row["predicted_cortex_m_arena_bytes"] = predict_arena(model, "cortex-m")["sram_tflm_bytes"]
    except UserError as exc:
        row["status"] = f"refused: {exc}"
    try:
        row["measured_arena_bytes"] = measure_arena(path)["tflm_arena_bytes"]
    except UserError as exc:
        row["status"] = f"TFLM fails: {exc}" if row["status"] == "ok" else row["status"] + f"; TFLM fails: {exc}"
    if isinstance(row["predicted_arena_bytes"], int) and isinstance(row["measured_arena_bytes"], int):
        row["arena_error_bytes"] = row["predicted_arena_bytes"] - row["measured_arena_bytes"]
        row["arena_error_pct"] = _error_pct(row["predicted_arena_bytes"], row["measured_arena_bytes"])
    return row


def within_tolerance(row: dict) -> bool:
    """Never below, and at most +1 % (or +64 B for arenas under 6.4 KB) above."""
    error = row["arena_error_bytes"]
    return 0 <= error <= max(64, 0.01 * row["measured_arena_bytes"])


def run_tflite(args) -> int:
    from mcunas.errors import UserError

    folder = Path(args.tflite)
    files = sorted(folder.glob("*.tflite")) if folder.is_dir() else []
    if not files:
        raise UserError(f"no .tflite files in {folder}")
    sources = {}
    if args.sources:
        with open(args.sources, newline="") as fh:
            sources = {r["file"]: r["source"] for r in csv.DictReader(fh)}
    out = Path(args.out or "results/tflite_fidelity.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=TFLITE_FIELDS)
        writer.writeheader()
        for path in files:
            row = check_tflite_file(path, sources.get(path.name, ""))
            writer.writerow(row)
            fh.flush()
            rows.append(row)
            if not args.json:
                print(f"{row['file']:<44} {row['predicted_arena_bytes']!s:>9} {row['measured_arena_bytes']!s:>9} "
                      f"{row['arena_error_pct']!s:>8} % {row['status'] if row['status'] != 'ok' else row['ops']}",
                      flush=True)
    compared = [r for r in rows if r["arena_error_bytes"] != ""]
    summary = {"files": len(rows), "compared": len(compared),
               "refused": sum(r["status"].startswith("refused") for r in rows),
               "under": sum(r["arena_error_bytes"] < 0 for r in compared),
               "within_tolerance_share": round(sum(map(within_tolerance, compared)) / max(1, len(compared)), 3),
               "worst_error_pct": max((r["arena_error_pct"] for r in compared), default=None), "csv": str(out)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {out}: {summary['compared']} compared, {summary['under']} under, "
              f"{summary['within_tolerance_share']:.0%} within +1 % / +64 B, worst {summary['worst_error_pct']} %, "
              f"{summary['refused']} refused")
    return 0


def run(args) -> int:
    from mcunas.arch import parse_arch
    from mcunas.bench import require_at_least_one
    from mcunas.cost import estimate
    from mcunas.spaces import available_spaces, load_space, sample_strings

    if args.tflite:
        return run_tflite(args)
    if args.repredict:
        return run_repredict(args)
    require_at_least_one(args, "--n")
    rows, skipped = [], {}
    out = Path(args.out or "results/cost_model_fidelity.csv")
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
            with progress_bar(len(kept), f"building, converting and measuring {space.name}", "arch") as bar:
                for s in kept:
                    row = measure_one(space.name, s, Path(tmp))
                    writer.writerow(row)
                    fh.flush()
                    rows.append(row)
                    bar.update(1)
    summary = summarise(rows)
    summary["skipped_over_max_macs"] = skipped
    _report(summary, args, f"wrote {out} ({len(rows)} architectures)")
    return 0


def _report(summary: dict, args, headline: str) -> None:
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(headline)
    for space, e in summary.items():
        if space in ("time", "skipped_over_max_macs"):
            continue
        a, t = e["arena"], e["tflite"]
        print(f"{space:<14} n={e['n']:<3} arena: median |err| {a['median_abs_error_pct']:.3f} %, worst "
              f"{a['worst_error_pct']:+.3f} %, within 1 %: {a['within_1pct_share']:.0%} | tflite: median |err| "
              f"{t['median_abs_error_pct']:.3f} %, worst {t['worst_error_pct']:+.3f} %, within 1 %: "
              f"{t['within_1pct_share']:.0%} | under measured: arena {e['under']['arena']}, "
              f"tflite {e['under']['tflite']}")
    tm = summary["time"]
    print(f"time per architecture: cost model {tm['median_cost_model_ms']} ms, build+convert+TFLM "
          f"{tm['median_ground_truth_ms']:,} ms (median ratio {tm['median_ratio']:,}x)"
          + (f"; skipped over --max-macs: {summary['skipped_over_max_macs'] or 'none'}"
             if "skipped_over_max_macs" in summary else ""))
