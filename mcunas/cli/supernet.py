"""``mcunas supernet train``: one weight-sharing supernet for a space, for ``mcunas search --supernet``."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "supernet",
        help="train a weight-sharing supernet that scores a space's members in seconds",
        description="A supernet holds the weights of a space's largest member; every member (fewer blocks per "
        "stage, fewer channels, smaller kernels, another resolution) runs on a slice of them. `mcunas search "
        "--supernet FILE` scores candidates with these inherited weights instead of training each, then trains "
        "only the best (--finalists).",
    )
    inner = p.add_subparsers(dest="supernet_command", metavar="COMMAND", required=True)
    t = inner.add_parser(
        "train", help="train a supernet with the sandwich rule",
        description="Train a supernet for --space on the training split of --data (the validation share "
        "`mcunas search --seed` selects on is left out, with or without --eval-data): every step trains the largest, the smallest and two random "
        "members, the smaller ones distilled from the largest. Kernels are centre-cropped, channels and blocks "
        "are the leading ones (behind a ShuffleNet unit each channel reads the rows of the supernet channel it "
        "stands for). Spaces of ds, ir and sf blocks (mobilenet_v1, mobilenet_v2, mnasnet, shufflenet_v2).")
    t.add_argument("--space", required=True, help="space name in search_spaces/ or a YAML path")
    t.add_argument("--data", required=True, help="training data (any format `mcunas search --data` takes)")
    t.add_argument("--out", required=True, help="the supernet file to write, e.g. supernet.npz")
    t.add_argument("--epochs", type=int, default=5, help="epochs (default 5)")
    t.add_argument("--resolution", type=int, help="train at this one resolution (default: each step draws one of "
                   "the space's resolutions)")
    t.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    t.add_argument("--seed", type=int, default=0, help="seed; also draws the validation share, so give "
                   "`mcunas search` the same --seed (default 0)")
    t.add_argument("--json", action="store_true", help="print the figures as JSON")
    t.set_defaults(handler=run_train)


def run_train(args) -> int:
    from pathlib import Path

    from mcunas.data.check import check_search_data
    from mcunas.errors import UserError
    from mcunas.output import print_figures
    from mcunas.spaces import load_space
    from mcunas.supernet.file import save_supernet
    from mcunas.supernet.members import largest_shape
    from mcunas.supernet.train import train_supernet

    space = load_space(args.space)
    largest_shape(space)  # refuses a space it cannot slice
    if min(args.epochs, args.batch) < 1:
        raise UserError("--epochs and --batch must be at least 1")
    if args.resolution is not None and not 8 <= args.resolution <= 1024:
        raise UserError(f"--resolution must be between 8 and 1024 pixels, got {args.resolution}")
    out = Path(args.out)
    if out.is_dir() or not out.parent.is_dir():
        raise UserError(f"--out {out}: give a file in an existing folder, e.g. supernet.npz")
    if not Path(args.data).exists():
        raise UserError(f"--data {args.data} does not exist: give a built VWW set, a person/non_person folder or a "
                        "vww01 folder")
    check_search_data(args.data, None, args.seed)
    weights, meta = train_supernet(space, str(Path(args.data).resolve()), args.epochs, args.resolution, args.batch,
                                   args.seed)
    save_supernet(out, weights, meta)
    print_figures({"supernet": str(out), "file_bytes": out.stat().st_size,
                   **{k: v for k, v in meta.items() if k != "space_sha256"}}, args.json)
    return 0
