"""``mcunas query``: what-if budgets answered from stored campaigns, without retraining."""

from __future__ import annotations

import json
import sys

from mcunas.output import plural


def register(sub) -> None:
    from mcunas.cli import BUDGET_HELP
    from mcunas.cli.flags import add_budget_flags

    p = sub.add_parser(
        "query",
        help="best stored trials under a new budget, Pareto set, cost of tightening",
        description="Answer 'what is the best model if my board has X?' from finished or running "
        "campaigns, without retraining: the best trained trials that meet the budget (ranked by int8 "
        "accuracy, ties to smaller SRAM; cost-only studies by their own objectives), the accuracy-vs-SRAM "
        "Pareto set under it, and how much best accuracy each tightening of SRAM, flash and MACs costs "
        "(ladders: SRAM 1MB 512KB 320KB 250KB 192KB 128KB 96KB 64KB 48KB 32KB 16KB; flash 2MB 1MB 512KB "
        "384KB 250KB 192KB 128KB 96KB 64KB 32KB; MACs 600M 300M 200M 100M 60M 40M 20M 10M 5M 2M 1M, "
        "starting from your limit). A limit you leave out is not applied. Exits 2 when no trial fits, "
        "after listing the nearest ones.",
        epilog=BUDGET_HELP,
    )
    p.add_argument("--storage", help="Optuna storage URL (default: each study's results/<study>/study.journal)")
    p.add_argument("--study", action="append", required=True,
                   help="study name; repeat to compare several studies in one table")
    add_budget_flags(p, "unset: the campaign's own", memory_plan="the campaign's own")
    p.add_argument("--top", type=int, default=10, help="how many ranked trials to list per study (default 10)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    out.add_argument("--csv", action="store_true",
                     help="print the ranked trials that fit (top N per study) as CSV, with an on_pareto column")
    p.set_defaults(handler=run)


def run(args) -> int:
    from mcunas.cli.flags import budget_from_args
    from mcunas.errors import UserError
    from mcunas.query.studies import load_studies
    from mcunas.query.whatif import answer

    result = answer(load_studies(args.study, args.storage), budget_from_args(args), args.top)
    none_fit = not any(s["fitting"] for s in result["studies"])
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.csv:
        _print_csv(result)
    elif none_fit:
        _print_nearest(result)
    else:
        _print_text(result, args.top)
    if none_fit and not any(s["candidates"] for s in result["studies"]):
        counts = "; ".join(f"{s['study']}: " + ", ".join(f"{v} {k}" for k, v in s["status_counts"].items())
                           for s in result["studies"])
        raise UserError(f"no trial has been trained yet, so no budget can be answered ({counts or 'no trials'})")
    if none_fit:
        names = ", ".join(s["study"] for s in result["studies"])
        near = [f"#{r['number']} ({r['over_by']})" for s in result["studies"] for r in s.get("nearest", [])[:3]]
        raise UserError(f"no trial of {names} meets {'; '.join(s['budget']['description'] for s in result['studies'])}"
                        + (f"; nearest: {', '.join(near)}" if near else ""))
    return 0


def _print_csv(result: dict) -> None:
    import pandas as pd

    frames = []
    for s in result["studies"]:
        on_front = {r["number"] for r in s["pareto"]}
        df = pd.DataFrame(s["best"])
        if len(df):
            df.insert(1, "rank", range(1, len(df) + 1))
            df["on_pareto"] = df.number.isin(on_front)
            frames.append(df)
    if frames:
        pd.concat(frames).to_csv(sys.stdout, index=False)


def _kb(v) -> str:
    return "-" if v is None else f"{v / 1000:,.1f}KB"


def _score(v, name: str) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if name == "int8_accuracy" else f"{v / 1e6:,.2f}M"


def _table(rows: list[dict], marks: set[int] = frozenset()) -> list[str]:
    latency = any(r.get("latency_high_ms") is not None for r in rows)
    offline = any(r.get("sram_tflm_offline_bytes") is not None for r in rows)
    lines = [f"  {'#':>6} {'val int8':>8} {'test int8':>9} {'SRAM':>10} {'flash':>10}"
             + (f" {'stock':>9} {'offline':>9}" if offline else "") + f" {'MACs':>8}"
             + (f" {'latency':>10}" if latency else "") + "  arch"]
    for r in rows:
        acc = "-" if r["int8_accuracy"] is None else f"{r['int8_accuracy']:.4f}"
        test = "-" if r.get("test_accuracy") is None else f"{r['test_accuracy']:.4f}"
        star = "*" if r["number"] in marks else " "
        sram = _kb(r["sram_bytes"]) + ("m" if r["sram_figure"] == "measured" else " ")
        flash = _kb(r["flash_bytes"]) + ("m" if r["flash_figure"] == "measured" else " ")
        ms = f" {r['latency_high_ms']:>8.1f}ms" if latency else ""
        arenas = f" {_kb(r.get('sram_tflm_bytes')):>9} {_kb(r.get('sram_tflm_offline_bytes')):>9}" if offline else ""
        lines.append(f" {star}{r['number']:>6} {acc:>8} {test:>9} {sram:>10} {flash:>10}{arenas} {r['macs'] / 1e6:>7.2f}M{ms}  {r['arch']}"
                     + (f"   over: {r['over_by']}" if r.get("over_by") else ""))
    return lines


def _print_nearest(result: dict) -> None:
    """Only the nearest trials: the budget is the user's to change, the rest would be empty."""
    out = []
    for s in result["studies"]:
        if s.get("nearest"):
            out.append(f"study {s['study']}: nearest trials to {s['budget']['description']} (by how far over):")
            out += _table(s["nearest"])
    if out:
        print("\n".join(out))


def _print_text(result: dict, top: int) -> None:
    out = [f"budget: {result['budget']['description']}", ""]
    studies = result["studies"]
    if len(studies) > 1:
        out.append("studies compared (best trial that fits):")
        out.append(f"  {'study':<16} {'trials':>6} {'fit':>5} {'best':>10} {'SRAM':>10} {'flash':>10} {'MACs':>8}  #")
        for s in studies:
            b = s["best"][0] if s["best"] else None
            score = "-" if b is None else (f"{b['int8_accuracy']:.4f}" if b["int8_accuracy"] is not None
                                           else f"{b['macs'] / 1e6:.2f}M MACs")
            out.append(f"  {s['study']:<16} {s['trials']:>6} {s['fitting']:>5} {score:>10} "
                       f"{_kb(b and b['sram_bytes']):>10} {_kb(b and b['flash_bytes']):>10} "
                       f"{(b['macs'] / 1e6 if b else 0):>7.2f}M  {b['number'] if b else '-'}")
        out.append("")
    for s in studies:
        counts = ", ".join(f"{v} {k}" for k, v in s["status_counts"].items())
        out.append(f"study {s['study']} ({s['storage']}): {plural(s['trials'], 'trial')} ({counts}); {s['ranked_by']}")
        out.append(f"  budget applied: {s['budget']['description']}")
        if s.get("majority_test_accuracy") is not None:
            out.append(f"  baseline: always answering the test set's majority class scores "
                       f"{s['majority_test_accuracy']:.4f} (val int8 = selected on; test int8 = reported only)")
        out.append(f"  {s['fitting']} of {s['candidates']} rankable trials fit"
                   + (f"; {plural(s['untrained_fitting'], 'candidate')} the campaign rejected would fit but "
                      f"{'was' if s['untrained_fitting'] == 1 else 'were'} never trained"
                      if s.get("untrained_fitting") else ""))
        if s["best"]:
            out.append(f"  best {len(s['best'])} (* = on the Pareto front; m = measured in TFLM, else predicted; "
                       "stock/offline: predicted arena with TFLM's planner / the offline plan):")
            out += _table(s["best"], {r["number"] for r in s["pareto"]})
            front = s["pareto"]
            step = -(-len(front) // top)
            out.append(f"  Pareto set under the budget ({len(front)}"
                       + (f"; every {step}th and the last shown, --json lists all" if step > 1 else "") + "):")
            out += _table(front[::step] + ([front[-1]] if (len(front) - 1) % step else []))
        elif s.get("nearest"):
            out.append("  nearest trials (by how far over budget):")
            out += _table(s["nearest"])
        out.append("")
    if result["tightening"]:
        names = [s["study"] for s in studies]
        out.append("tightening (one limit at a time; best score and its change from the first row):")
        out.append(f"  {'limit':<16}" + "".join(f" {n[:24]:>34}" for n in names))
        for row in result["tightening"]:
            lim = row["limit"]
            shown = {"macs": f"{lim / 1e6:g}M MACs", "latency": f"latency {lim:g}ms"}.get(
                row["dimension"], f"{row['dimension']} {lim / 1000:g}KB")
            cells = []
            for n in names:
                c = row["studies"][n]
                if c["score"] is None:
                    cells.append("none fits")
                elif c["score_name"] == "int8_accuracy":
                    cells.append(f"{c['score']:.4f} ({c['change'] * 100:+.1f} pt, #{c['number']})")
                else:
                    cells.append(f"{c['score'] / 1e6:.2f}M ({c['change'] / 1e6:+.2f}M, #{c['number']})")
            out.append(f"  {shown:<16}" + "".join(f" {c:>34}" for c in cells))
    print("\n".join(out))
