"""``mcunas bench cost``: architectures/s of sample -> graph -> all costs, per space.

Four figures per space, all on one core in one process:

* ``paper_figures``: Arch -> graph -> MACs, params, weight bytes, the paper's
  SRAM rule (the foundation's figures, no TFLM or flatbuffer model);
* ``cost_only``: Arch -> graph -> every cost figure (the cost model alone);
* ``sample_and_cost``: the same plus drawing the candidate from the space
  with :class:`~mcunas.spaces.RandomTrial` (what ``frontier`` does);
* ``optuna_ask_tell``: drawing through a real in-memory Optuna study with the
  random sampler, then costing and telling (what a search pays per
  rejected candidate, minus storage I/O).
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

    from mcunas.bench import median_rate, require_at_least_one
    from mcunas.cost import estimate
    from mcunas.spaces import RandomTrial, available_spaces, load_space, sample_arch

    require_at_least_one(args, "--n", "--repeats")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = {}
    for name in args.space or available_spaces():
        space = load_space(name)
        trial = RandomTrial(seed=0)
        archs = [sample_arch(space, trial) for _ in range(args.n)]

        def paper_figures() -> int:
            for arch in archs:
                estimate(arch, deployable=False)
            return len(archs)

        def cost_only() -> int:
            for arch in archs:
                estimate(arch)
            return len(archs)

        def sample_and_cost() -> int:
            rng = RandomTrial(seed=1)
            for _ in range(args.n):
                estimate(sample_arch(space, rng))
            return args.n

        def optuna_ask_tell() -> int:
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
            for _ in range(args.n):
                t = study.ask()
                study.tell(t, estimate(sample_arch(space, t))["macs"])
            return args.n

        results[space.name] = {
            label: round(median_rate(fn, args.repeats)[0])
            for label, fn in (("paper_figures", paper_figures), ("cost_only", cost_only), ("sample_and_cost", sample_and_cost),
                              ("optuna_ask_tell", optuna_ask_tell))
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"architectures/s, median of {args.repeats} runs of {args.n} (one core)")
    print(f"{'space':<14} {'paper_figures':>14} {'cost_only':>10} {'sample_and_cost':>16} {'optuna_ask_tell':>16}")
    for name, r in results.items():
        print(f"{name:<14} {r['paper_figures']:>14,} {r['cost_only']:>10,} {r['sample_and_cost']:>16,} "
              f"{r['optuna_ask_tell']:>16,}")
    return 0
