"""Flags several subcommands share: the budget flags and the board lookup, declared once.

``search``, ``frontier``, ``query`` and ``export --best`` take the same
``--sram/--flash/--macs/--board/--boards-file/--budget-model/--memory-plan``; each caller
says what an unset limit means (:func:`budget_from_args`'s ``defaults``).
Choices come from the domain registries, so a new budget model appears here
without retyping it.
"""

from __future__ import annotations

from mcunas.budget import BUDGET_MODELS


def add_budget_flags(p, unset: str, memory_plan: str | None = "stock") -> None:
    """The budget flags; ``unset`` says in the help what a limit left out means for this command, and
    ``memory_plan`` what an unset --memory-plan means (None: the caller declares --memory-plan itself)."""
    p.add_argument("--sram", help=f"SRAM limit, e.g. 128KB ({unset})")
    p.add_argument("--flash", help=f"flash limit, e.g. 512KB ({unset})")
    p.add_argument("--macs", help=f"MAC limit, e.g. 20M ({unset})")
    p.add_argument("--latency", help="latency limit on --board, e.g. 100ms or 1.5s: judged on the upper end of "
                   "the latency model's error band (latency_high_ms), before any training")
    add_board_flags(p, "take SRAM and flash limits from a catalog board (see `mcunas boards`), and cost "
                    "latency for it")
    p.add_argument("--budget-model", choices=BUDGET_MODELS,
                   help="check the deployable figures (TFLM arena and .tflite size: measured for trained "
                   "trials, else predicted; the default) or the paper's rule and int8 weight count")
    if memory_plan is not None:
        add_memory_plan_flag(p, "judge the deployable figures of the file with TFLM's own memory plan (stock) or "
                             "with the offline plan `mcunas export --memory-plan offline` embeds: "
                             "sram_tflm_offline_bytes and tflite_offline_bytes, predicted (default: "
                             f"{memory_plan})")


def add_board_flags(p, board_help: str) -> None:
    """``--board``, ``--boards-file`` and the ``--runtime`` its latency is estimated for."""
    from mcunas.cost.latency import DEFAULT_RUNTIME, RUNTIMES

    p.add_argument("--board", help=board_help)
    p.add_argument("--boards-file", help="YAML file with extra boards (see `mcunas boards --help`)")
    p.add_argument("--runtime", metavar="R",
                   help=f"with --board: the inference runtime latency is estimated for, one of "
                   f"{', '.join(RUNTIMES)} (default {DEFAULT_RUNTIME})")


def board_from_args(args):
    """The board named by ``--board`` (catalog plus ``--boards-file``), or None."""
    from mcunas.cost.boards import get_board

    return get_board(args.board, args.boards_file) if args.board else None


def runtime_from_args(args) -> str:
    """The ``--runtime`` (checked), which needs a board to mean anything."""
    from mcunas.cost.latency import DEFAULT_RUNTIME, check_runtime
    from mcunas.errors import UserError

    if args.runtime is not None and not args.board:
        raise UserError("--runtime needs --board: latency is estimated for a board (see `mcunas boards`)")
    return check_runtime(args.runtime or DEFAULT_RUNTIME)


def budget_from_args(args, defaults=None):
    """The budget the flags describe; limits left out come from the board, then ``defaults``."""
    from mcunas.budget import parse_budget

    board = board_from_args(args)
    return parse_budget(args.sram, args.flash, args.macs, board, args.budget_model or "deployable", defaults,
                        latency=args.latency, runtime=runtime_from_args(args) if board else None,
                        memory_plan=args.memory_plan)


def add_memory_plan_flag(p, help_text: str) -> None:
    """``--memory-plan {stock,offline}``: which TFLM arena plan a figure or an export is for."""
    from mcunas.cost.tflm_arena import MEMORY_PLANS

    p.add_argument("--memory-plan", choices=MEMORY_PLANS, help=help_text)
