"""``mcunas frontier``: how much of a space fits a budget, before any campaign."""

from __future__ import annotations

import json


def register(sub) -> None:
    from mcunas.cli import BUDGET_HELP
    from mcunas.cli.flags import add_budget_flags

    p = sub.add_parser(
        "frontier",
        help="share of a space that fits a budget, by dimension, and the cost-Pareto (no data needed)",
        description="Sample N random members of a space (seeded, no study), cost each with the pure-Python "
        "model and report: the share that fits the budget, overall and per budget dimension; for every value "
        "of every searched dimension, the share of candidates with that value that fit; and the cost-Pareto "
        "of the feasible ones (largest MACs for each SRAM/flash level, MACs standing in for capacity) with a "
        "PNG plot. Unset limits default to the VWW paper's 250KB SRAM, 250KB flash, 60M MACs (a board "
        "supplies SRAM and flash).",
        epilog=BUDGET_HELP,
    )
    p.add_argument("--space", required=True, help="space name in search_spaces/ or a YAML path")
    add_budget_flags(p, "default: the VWW paper's 250KB SRAM, 250KB flash, 60M MACs, or the board's")
    p.add_argument("--n", type=int, default=5000, help="candidates to sample (default 5000)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--plot", help="PNG path (default RESULTS_DIR/frontier/<space>.png)")
    p.add_argument("--results-dir", default="results", help="where the default plot goes, as for `mcunas search` "
                   "(default results; results/*/ is in .gitignore, so runs leave `git status` clean)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--pareto-rows", type=int, default=15, help="Pareto rows in the text output (default 15; JSON has all)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from pathlib import Path

    from mcunas.budget import PAPER_BUDGET
    from mcunas.cli.flags import budget_from_args
    from mcunas.errors import UserError
    from mcunas.query.frontier import explore
    from mcunas.spaces import load_space

    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    space = load_space(args.space)
    budget = budget_from_args(args, defaults=PAPER_BUDGET)
    plot_path = None if args.no_plot else Path(
        args.plot or Path(args.results_dir) / "frontier" / f"{Path(space.name).stem}.png")
    if plot_path is not None and plot_path.suffix.lower() != ".png":
        raise UserError(f"--plot {plot_path} must end in .png")
    result = explore(space, budget, args.n, args.seed, plot_path)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_text(result, args.pareto_rows)
    return 0


def _print_text(r: dict, pareto_rows: int) -> None:
    out = [
        f"space {r['space']}: {r['fits']:,} of {r['n']:,} sampled candidates fit ({r['share']:.1%}); "
        f"{r['unique_fitting_archs']:,} distinct fitting architectures of {r['unique_archs']:,} distinct sampled",
        f"budget: {r['budget']['description']}",
        "within each limit alone: " + ", ".join(f"{k} {v:.1%}" for k, v in r["share_by_budget"].items()),
        f"speed: {r['candidates_per_s']:,.0f} candidates/s ({r['elapsed_s']:.2f} s sampling and costing)",
        "",
        "share that fits, by searched dimension value (candidates with that value):",
    ]
    for dim, values in r["share_by_value"].items():
        cells = "  ".join(f"{v}:{s['share']:.0%}({s['n']})" for v, s in values.items())
        out.append(f"  {dim:<12} {cells}")
    front = r["pareto"]
    out += ["", f"cost-Pareto of the fitting candidates ({len(front)}; most MACs for least SRAM and flash):",
            f"  {'SRAM':>10} {'flash':>10} {'MACs':>8}  arch"]
    step = max(1, -(-len(front) // pareto_rows)) if pareto_rows > 0 else len(front) + 1
    for p in front[::step]:
        out.append(f"  {p['sram_bytes'] / 1000:>8,.1f}KB {p['flash_bytes'] / 1000:>8,.1f}KB "
                   f"{p['macs'] / 1e6:>7.2f}M  {p['arch']}")
    if len(front) > pareto_rows > 0:
        out.append(f"  (every {step}th of {len(front)} shown; --json lists all)")
    if r["plot"]:
        out += ["", f"plot: {r['plot']}"]
    print("\n".join(out))
