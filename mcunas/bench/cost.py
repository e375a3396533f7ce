"""``mcunas bench cost``: architectures/s of sample -> graph -> all costs, per space.

Sampling goes through a real in-memory Optuna study with the random sampler
(what a search does per candidate, minus storage I/O), so the figure is the
throughput of the pre-training rejection path on one core.
"""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("cost", help="cost-model throughput per search space",
                       description="Architectures/s of sample -> graph -> all costs, per space "
                       "(median of --repeats runs of --n architectures, one process, one core).")
    p.add_argument("--space", action="append", help="space(s) to time (default: all)")
    p.add_argument("--n", type=int, default=500, help="architectures per run (default 500)")
    p.add_argument("--repeats", type=int, default=5, help="runs per space (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    import optuna

    from mcunas.bench import median_rate
    from mcunas.cost import estimate
    from mcunas.spaces import available_spaces, load_space, sample_arch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = {}
    for name in args.space or available_spaces():
        space = load_space(name)

        def work() -> int:
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
            for _ in range(args.n):
                trial = study.ask()
                costs = estimate(sample_arch(space, trial))
                study.tell(trial, costs["macs"])
            return args.n

        median, rates = median_rate(work, args.repeats)
        results[space.name] = {"archs_per_s": round(median), "runs": [round(r) for r in rates]}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, r in results.items():
            print(f"{name:<14} {r['archs_per_s']:>7,} archs/s (median of {args.repeats}; runs {r['runs']})")
    return 0
