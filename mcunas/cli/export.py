"""``mcunas export``: an architecture (trained or not) -> everything deployment needs."""

from __future__ import annotations

import argparse

from mcunas.output import print_figures, stage


def register(sub) -> None:
    from mcunas.cli import BUDGET_HELP
    from mcunas.cli.flags import add_memory_plan_flag

    p = sub.add_parser(
        "export",
        help="Keras model, int8 .tflite, C array with arena size, arch string",
        description="Export an architecture: model.keras, model_int8.tflite (full int8, input = "
        "pixel - 128), model_data.h/.cc (alignas(16) array, its length, kTensorArenaSize = the "
        "arena measured in TFLM, rounded up to 16) and arch.txt.  Without --weights the model is "
        "untrained (random kernels, seeded BatchNorm values) but has the exact size and arena of "
        "the trained one.",
        epilog=BUDGET_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("arch", nargs="?", help="architecture string (see `mcunas estimate --help`)")
    p.add_argument("--preset", help="a named preset instead of ARCH, e.g. mlperf-vww (see `mcunas presets`)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--weights", help="trained Keras model (.keras) of the same architecture")
    p.add_argument("--data", help="calibration images: a dataset folder (vww01, person/non_person "
                   "or built set) or a .npy uint8 N×H×W×C array; default: seeded noise images")
    p.add_argument("--target", choices=["x86_64", "cortex-m"], default="x86_64",
                   help="what kTensorArenaSize in model_data.h is for: x86_64 = measured with the tflite-micro "
                   "pip package (default); cortex-m = predicted for a 32-bit Cortex-M build (not measured)")
    add_memory_plan_flag(p, "offline: embed an offline memory plan in the .tflite (OfflineMemoryAllocation "
                         "metadata; TFLM then needs a smaller arena, see README); the figures give both arenas "
                         "(default stock; with --study: the campaign's own)")
    p.add_argument("--json", action="store_true", help="print JSON")
    # Export a trained trial of a study instead of an ARCH (picked by mcunas.query.pick).
    from mcunas.cli.flags import add_budget_flags

    study = p.add_argument_group("trained winner of a study (instead of ARCH)")
    study.add_argument("--study", help="study name: export one of its trained trials, with report.md")
    study.add_argument("--storage", help="Optuna storage URL (default: results/<study>/study.journal)")
    study.add_argument("--trial", type=int, help="the trial number to export")
    study.add_argument("--best", action="store_true",
                       help="the best trained trial (int8 accuracy, ties smaller SRAM) meeting the budget flags")
    add_budget_flags(study, "for --best; unset: the campaign's own", memory_plan=None)
    p.set_defaults(handler=run)


def run(args) -> int:
    from mcunas.arch import parse_arch
    from mcunas.errors import UserError
    from mcunas.export.bundle import export_arch

    if args.study is not None:
        return _export_study_trial(args)
    if bool(args.arch) == bool(args.preset) or args.trial is not None or args.best:
        raise UserError("give an ARCH string, or --study NAME with --trial N or --best (--preset NAME in place of ARCH)")
    if args.preset:
        from mcunas.presets import preset_arch

        arch = preset_arch(args.preset)
    else:
        arch = parse_arch(args.arch)
    result = export_arch(arch, args.out, weights=args.weights, data=args.data, target=args.target,
                         memory_plan=args.memory_plan or "stock", say=stage)
    result["files"] = ", ".join(result["files"])
    print_figures(result, args.json)
    return 0


def _export_study_trial(args) -> int:
    """``mcunas export --study NAME (--trial N | --best [budget flags]) --out DIR``."""
    from mcunas.cli.flags import board_from_args, budget_from_args
    from mcunas.cost.boards import load_boards
    from mcunas.errors import UserError
    from mcunas.query.pick import pick_best, pick_trial
    from mcunas.query.studies import load_study

    if (args.trial is None) == (not args.best):
        raise UserError("give exactly one of --trial N or --best with --study")
    if args.arch or args.preset:
        raise UserError("give either an ARCH string / --preset or --study, not both")
    boards, board = load_boards(args.boards_file), board_from_args(args)
    study = load_study(args.study, args.storage)
    plan = study_memory_plan(study, args.memory_plan)
    budget = budget_from_args(args)
    row = pick_trial(study, args.trial) if args.trial is not None else pick_best(study, budget)
    figures = export_study_trial(study, row, args.out, boards, board, data=args.data, target=args.target,
                                 memory_plan=plan, say=stage)
    flat = {k: v for k, v in figures.items() if k not in ("predicted", "boards", "files", "ops")}
    flat["ops"] = ", ".join(figures["ops"])
    flat.update({f"predicted_{k}": v for k, v in figures["predicted"].items()})
    flat["fits_boards"] = ", ".join(b["board"] for b in figures["boards"] if b["fits"]) or "none"
    flat["files"] = ", ".join(figures["files"])
    print_figures(figures if args.json else flat, args.json)
    return 0


def study_memory_plan(study, flag: str | None) -> str:
    """The memory plan a study's exports use: the one its campaign was judged with; a ``--memory-plan``
    naming another is refused (its trials were selected under the campaign's figures)."""
    from mcunas.budget import Budget
    from mcunas.errors import UserError

    own = Budget.from_dict(study.search_budget).memory_plan if study.search_budget else "stock"
    if flag is not None and flag != own:
        raise UserError(f"study '{study.name}' was searched with --memory-plan {own}, not {flag}: leave "
                        f"--memory-plan out (or give {own}); to export an architecture with another plan, "
                        "export its ARCH with --weights")
    return own


def export_study_trial(study, row, out_dir, boards: dict, board=None, data: str | None = None,
                       target: str = "x86_64", results_folder=None, memory_plan: str = "stock",
                       say=lambda text: None) -> dict:
    """Export one picked trial of a loaded study (its own files, found where the study lives).

    ``results_folder``: the campaign's own results folder, when the caller knows it.
    """
    from mcunas.export.trial import export_trial
    from mcunas.query.pick import model_files

    keras_src, tflite_src = model_files(study, row, results_folder)
    return export_trial(row, keras_src, tflite_src, out_dir, boards, board, data=data, study_name=study.name,
                        target=target, memory_plan=memory_plan, say=say)
