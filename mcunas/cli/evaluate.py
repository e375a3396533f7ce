"""``mcunas evaluate``: accuracy of a ``.tflite`` model on a dataset folder (LiteRT, no TensorFlow)."""

from __future__ import annotations

SPLIT_HELP = ("which images: 'eval' (a built set's eval split, or the 20%% hash split of an MLPerf folder: the test set "
              "a search reports), "
              "'train', or 'all'. Default: 'eval' for a built set, 'all' for the two MLPerf folder formats, "
              "which have no split of their own")


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy of a .tflite model on a dataset",
        description="Run a .tflite classifier (LiteRT interpreter) over a dataset and print accuracy, "
        "correct, total and per-class counts. The input quantisation is read from the model; images are "
        "resized to the model's input size and channels if needed.",
    )
    p.add_argument("model", metavar="MODEL.tflite", help="the model (e.g. an int8 export)")
    p.add_argument("--data", required=True, metavar="DIR",
                   help="a built set (mcunas data build), an MLPerf person/ + non_person/ folder, "
                   "or an MLPerf vww01 folder (*.bin + y_labels.csv)")
    p.add_argument("--split", choices=("eval", "train", "all"), help=SPLIT_HELP)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from pathlib import Path

    from mcunas.output import print_figures
    from mcunas.data import load_split
    from mcunas.data.evaluate import evaluate_tflite, input_shape, load_interpreter
    from mcunas.data.check import check_both_classes
    from mcunas.data.formats import dataset_items, detect_format

    data = Path(args.data)
    check_both_classes("--data", data, dataset_items(data)[1])
    split = args.split or ("eval" if detect_format(data) == "built" else "all")
    height, _, channels = input_shape(load_interpreter(args.model))
    images, labels = load_split(data, split, height, channels)
    figures = evaluate_tflite(args.model, images, labels)
    figures.update(split=split, data=str(data), model=args.model)
    print_figures(figures, args.json)
    return 0
