"""``mcunas bench search``: do the samplers learn, and how fast is rejection?

1. **Sampler quality** at an equal trial budget on a cost-only objective:
   maximise MACs (a training-free capacity proxy) and minimise SRAM under the
   budget, with rejected candidates recorded as infeasible exactly as in a
   campaign (:func:`mcunas.search.campaign.ask_and_cost`).  Each sampler's
   feasible trials give a 2-D hypervolume (MACs / MAC budget × (1 − SRAM /
   SRAM budget), reference point (0, 0)); the figure is the median over seeds
   and its ratio to random sampling.
2. **Rejection throughput** end to end on the default storage (a journal
   file): candidates asked, sampled, costed, recorded and told per second,
   under a budget so tight that nearly all are rejected.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time

import numpy as np

from mcunas.output import progress_bar


def register(sub) -> None:
    p = sub.add_parser("search", help="sampler hypervolume vs random, and rejected candidates/s",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--space", default="mobilenet_v2", help="space (default mobilenet_v2)")
    p.add_argument("--trials", type=int, default=300, help="trials per sampler and seed (default 300)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per sampler (default 3)")
    p.add_argument("--samplers", default="random,tpe,nsga2", help="comma list (default random,tpe,nsga2)")
    p.add_argument("--reject-n", type=int, default=1000, help="candidates in the rejection run (default 1000)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def hypervolume_2d(macs: np.ndarray, sram: np.ndarray, macs_budget: int, sram_budget: int) -> float:
    """Area dominated by the points (gain = MACs share, saving = unused SRAM share)."""
    pts = sorted(zip(macs / macs_budget, 1 - sram / sram_budget), key=lambda p: -p[0])
    # Sweep from the largest gain down: each strip's height is the best saving seen so far.
    area, best_saving = 0.0, 0.0
    gains = [p[0] for p in pts] + [0.0]
    for i, (_, saving) in enumerate(pts):
        best_saving = max(best_saving, saving)
        area += (gains[i] - gains[i + 1]) * best_saving
    return area


def ask_and_cost(study, space, budget, objectives: list[str]):
    """The campaign's ask / cost / reject path without training: a rejected candidate is told at once."""
    from mcunas.search.campaign import cost_candidate
    from mcunas.search.objectives import objective_values

    trial = study.ask()
    arch, costs, reasons = cost_candidate(trial, space, budget)
    if reasons:
        study.tell(trial, objective_values(objectives, costs, budget, None))
    return trial, arch, costs, reasons


def run(args) -> int:
    import optuna

    from mcunas.bench import require_at_least_one
    from mcunas.budget import PAPER_BUDGET, parse_budget
    from mcunas.search.objectives import make_sampler, objective_values
    from mcunas.search.storage import open_storage
    from mcunas.spaces import load_space

    require_at_least_one(args, "--trials", "--seeds", "--reject-n")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(args.space)
    budget = PAPER_BUDGET
    objectives = ["capacity", "sram"]
    quality = {}
    bar = progress_bar(len(args.samplers.split(",")) * args.seeds * args.trials, "sampling and costing", "trial")
    for name in args.samplers.split(","):
        hvs = []
        for seed in range(args.seeds):
            study = optuna.create_study(directions=["maximize", "minimize"],
                                        sampler=make_sampler(name, seed))
            for _ in range(args.trials):
                bar.update(1)
                trial, _, costs, reasons = ask_and_cost(study, space, budget, objectives)
                if not reasons:
                    study.tell(trial, objective_values(objectives, costs, budget, None))
            ok = [t for t in study.trials if "rejected" not in t.user_attrs]
            macs = np.array([t.user_attrs["costs"]["macs"] for t in ok], dtype=float)
            sram = np.array([t.user_attrs["costs"][budget.key("sram")] for t in ok], dtype=float)
            hvs.append(hypervolume_2d(macs, sram, budget.macs, budget.sram_bytes) if len(ok) else 0.0)
        quality[name] = {"hypervolume_median": float(statistics.median(hvs)), "runs": [round(float(h), 4) for h in hvs]}
    base = quality.get("random", {}).get("hypervolume_median")
    for q in quality.values():
        q["ratio_vs_random"] = round(q["hypervolume_median"] / base, 3) if base else None
        q["hypervolume_median"] = round(q["hypervolume_median"], 4)
    bar.close()

    tight = parse_budget(sram="1KB", defaults=PAPER_BUDGET)  # nothing fits: every candidate is rejected
    throughput = {}
    for name in ("random", "tpe"):
        with tempfile.TemporaryDirectory() as tmp:
            storage = open_storage(f"journal:{tmp}/bench.journal")
            study = optuna.create_study(storage=storage, directions=["maximize", "minimize"],
                                        sampler=make_sampler(name, 0))
            start = time.perf_counter()
            rejected = sum(bool(ask_and_cost(study, space, tight, objectives)[3]) for _ in range(args.reject_n))
            throughput[name] = round(rejected / (time.perf_counter() - start), 1)
    result = {"space": space.name, "trials": args.trials, "seeds": args.seeds, "budget": budget.describe(),
              "sampler_quality": quality, "rejected_per_s_journal": throughput}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"space {space.name}, {args.trials} trials x {args.seeds} seeds, budget {budget.describe()}")
    print(f"{'sampler':<8} {'hypervolume (median)':>21} {'vs random':>10}  runs")
    for name, q in quality.items():
        print(f"{name:<8} {q['hypervolume_median']:>21.4f} {q['ratio_vs_random'] or 0:>9.2f}x  {q['runs']}")
    print(f"rejected candidates/s, journal-file storage, {args.reject_n} candidates: "
          + ", ".join(f"{k} {v:,.1f}/s" for k, v in throughput.items()))
    return 0
