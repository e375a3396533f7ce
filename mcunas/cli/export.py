"""``mcunas export``: an architecture (trained or not) -> everything deployment needs."""

from __future__ import annotations

import argparse

from mcunas.cli.output import print_figures


def register(sub) -> None:
    from mcunas.cli import BUDGET_HELP

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
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--weights", help="trained Keras model (.keras) of the same architecture")
    p.add_argument("--data", help="calibration images: a dataset folder (vww01, person/non_person "
                   "or built set) or a .npy uint8 N×H×W×C array; default: seeded noise images")
    p.add_argument("--target", choices=["x86_64", "cortex-m"], default="x86_64",
                   help="what kTensorArenaSize in model_data.h is for: x86_64 = measured with the tflite-micro "
                   "pip package (default); cortex-m = predicted for a 32-bit Cortex-M build (not measured)")
    p.add_argument("--json", action="store_true", help="print JSON")
    # Export a trained trial of a study instead of an ARCH (mcunas.query.winner).
    from mcunas.cli.query import add_budget_flags

    study = p.add_argument_group("trained winner of a study (instead of ARCH)")
    study.add_argument("--study", help="study name: export one of its trained trials, with report.md")
    study.add_argument("--storage", help="Optuna storage URL (default: results/<study>/study.journal)")
    study.add_argument("--trial", type=int, help="the trial number to export")
    study.add_argument("--best", action="store_true",
                       help="the best trained trial (int8 accuracy, ties smaller SRAM) meeting the budget flags")
    add_budget_flags(study, "for --best (unset: the campaign's own)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from mcunas.arch import parse_arch
    from mcunas.errors import UserError
    from mcunas.export.bundle import export_arch

    if args.study:
        from mcunas.query.winner import export_from_args

        return export_from_args(args)
    if not args.arch or args.trial is not None or args.best:
        raise UserError("give an ARCH string, or --study NAME with --trial N or --best")
    arch = parse_arch(args.arch)
    result = export_arch(arch, args.out, weights=args.weights, data=args.data, target=args.target)
    result["files"] = ", ".join(result["files"])
    print_figures(result, args.json)
    return 0
