"""``mcunas train``: train, int8-export, evaluate and measure one architecture.

The same code path a campaign runs for every candidate that fits
(:func:`mcunas.train.train_candidate`), for a baseline such as the MLPerf
reference layout trained with the same recipe as a campaign's winner.
"""

from __future__ import annotations


def register(sub) -> None:
    from mcunas.train.recipes import RECIPES

    p = sub.add_parser(
        "train",
        help="train one architecture and report float and int8 accuracy",
        description="Train an architecture string or preset with a campaign's recipe, export it to "
        "full-int8, and print its float and int8 validation accuracy, its int8 test accuracy and TFLM arena "
        "(train / validation / test split as in `mcunas search`, see README). Files go to --out.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("arch", nargs="?", help="architecture string")
    src.add_argument("--preset", help="a named preset, e.g. mlperf-vww")
    p.add_argument("--data", required=True, help="training data (any format `mcunas search --data` takes)")
    p.add_argument("--eval-data", help="test data (default: the eval split of --data); validation is then drawn from all of --data")
    p.add_argument("--out", required=True, help="folder for model.keras and model_int8.tflite")
    p.add_argument("--epochs", type=int, default=3, help="epochs (default 3)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--recipe", choices=RECIPES, default="fast", help="training recipe (default fast)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--qat-epochs", type=int, default=0,
                   help="then this many epochs of quantisation-aware fine-tuning (the paper's: learning rate "
                   "1e-5, x0.9 per epoch); int8 accuracy before it is reported too (default 0: none)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from pathlib import Path

    from mcunas.arch import parse_arch
    from mcunas.data.check import check_search_data
    from mcunas.errors import UserError
    from mcunas.output import print_figures, stage
    from mcunas.presets import preset_arch
    from mcunas.train import train_candidate
    from mcunas.train.worker import TrainJob

    arch = preset_arch(args.preset) if args.preset else parse_arch(args.arch)
    if min(args.epochs, args.batch) < 1:
        raise UserError("--epochs and --batch must be at least 1")
    if args.qat_epochs < 0:
        raise UserError(f"--qat-epochs must be 0 (no quantisation-aware fine-tuning) or more, got {args.qat_epochs}")
    check_search_data(args.data, args.eval_data, args.seed)  # one line on a bad or one-class set, before TF
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a file: give a folder for model.keras and model_int8.tflite")
    job = TrainJob(arch=str(arch), data=args.data, eval_data=args.eval_data, epochs=args.epochs,
                   batch=args.batch, recipe=args.recipe, seed=args.seed, out_dir=args.out,
                   qat_epochs=args.qat_epochs, split_seed=args.seed)

    def on_epoch(epoch: int, accuracy: float) -> None:
        stage(f"epoch {epoch}: float val accuracy {accuracy:.3f}")

    result = train_candidate(job, on_epoch, on_stage=stage)
    print_figures({"arch": str(arch), **result}, args.json)
    return 0
