"""``mcunas sample``: reproducible random members of a search space."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="print N random architecture strings from a space",
        description="Sample a search space through a seeded Optuna study (the same define-by-run "
        "code the search uses) and print one architecture string per line.",
    )
    p.add_argument("--space", required=True, help="space name in search_spaces/ or a YAML path")
    p.add_argument("--n", type=int, default=10, help="how many (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from mcunas.errors import UserError
    from mcunas.spaces import load_space, sample_strings

    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    for line in sample_strings(load_space(args.space), args.n, args.seed):
        print(line)
    return 0
