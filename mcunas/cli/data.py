"""``mcunas data build`` (COCO -> a cached VWW set) and ``mcunas data synth`` (a generated demo set).

Both are thin: the work is in :mod:`mcunas.data.build` and
:mod:`mcunas.data.synth`; this module parses, checks the pairing of
``--images`` with ``--annotations`` and prints the summary a user needs to
trust a build (how many images, how many person, what was skipped and where
that is listed, how fast).
"""

from __future__ import annotations

import argparse

from mcunas.output import print_figures

BUILD_EPILOG = """Labels (the reference VWW builder's rule, pycocotools): an image is 1 (person) when an
annotation of a --class covers more than --threshold of the image area; crowd annotations
count. --area segmentation (default) uses the annotation's 'area' field, as the reference
builder does; --area bbox uses box width x height, the VWW paper's wording.

Split: --eval-ids FILE (one COCO image id per line, e.g. mscoco_minival_ids.txt from the
tensorflow/models repository) puts those images in 'eval' and the rest in 'train'. Without
it an image is 'eval' when the first 32 bits of SHA-256 of its id are divisible by 5 (~20%).

Output: OUT/manifest.csv, OUT/skipped.csv (missing or undecodable images), OUT/build.json and
OUT/cache/r<R>_c<C>.npy (uint8, memory-mapped by training; whole frame squashed to R x R).
Re-running with the same inputs reuses the caches.

example:
  mcunas data build --images coco/train2014 --annotations coco/annotations/instances_train2014.json \\
      --images coco/val2014 --annotations coco/annotations/instances_val2014.json \\
      --eval-ids mscoco_minival_ids.txt --out vww96
"""


def register(sub) -> None:
    p = sub.add_parser("data", help="build a Visual Wake Words set from COCO, or generate a demo set",
                       description="Make datasets that --data accepts.")
    inner = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    b = inner.add_parser("build", help="COCO images + instance annotations -> person/not-person set",
                         description="Label COCO images person / not person with pycocotools, split "
                         "them and cache them as uint8 arrays at each --resolution.",
                         epilog=BUILD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--images", action="append", required=True, metavar="DIR",
                   help="a COCO image folder (e.g. train2014); repeat, paired in order with --annotations")
    b.add_argument("--annotations", action="append", required=True, metavar="FILE",
                   help="its instances_*.json; repeat once per --images")
    b.add_argument("--out", required=True, metavar="DIR", help="the built set's folder (created)")
    b.add_argument("--class", dest="classes", action="append", metavar="NAME",
                   help="COCO category of interest (default person); repeat for 'any of these'")
    b.add_argument("--threshold", type=float, default=0.005,
                   help="an object must cover more than this fraction of the image area (default 0.005)")
    b.add_argument("--area", choices=("segmentation", "bbox"), default="segmentation",
                   help="object area: the annotation's mask area (default, reference builder) or its box")
    b.add_argument("--resolution", type=int, action="append", metavar="R",
                   help="cache side in pixels (default 96); repeat for several")
    b.add_argument("--eval-ids", metavar="FILE", help="COCO image ids of the eval split, one per line")
    b.add_argument("--grayscale", action="store_true", help="cache 1-channel luma instead of RGB")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.set_defaults(handler=run_build)

    s = inner.add_parser("synth", help="generate a small person / non_person demo set (no download)",
                         description="Draw stick-figure people over random backgrounds and clutter "
                         "(person/) and the same scenes without people (non_person/): a smoke-test set "
                         "in the MLPerf folder format. Not photographs; its accuracies say nothing about COCO.")
    s.add_argument("--out", required=True, metavar="DIR", help="folder to write (new, empty or an earlier synth set)")
    s.add_argument("--n", type=int, default=2000, help="number of images, half person (default 2000)")
    s.add_argument("--resolution", type=int, default=96, help="image side in pixels (default 96)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(handler=run_synth)


def run_build(args) -> int:
    import time
    from pathlib import Path

    from mcunas.data.build import build
    from mcunas.errors import UserError

    if len(args.images) != len(args.annotations):
        raise UserError(f"give one --annotations per --images (got {len(args.images)} --images and "
                        f"{len(args.annotations)} --annotations), paired in order")
    start = time.perf_counter()
    figures = build(list(zip(args.images, args.annotations)), args.out, args.classes or ["person"],
                    args.threshold, args.area, args.resolution or [96], args.eval_ids, args.grayscale)
    seconds = time.perf_counter() - start
    summary = {key: figures.pop(key) for key in ("images", "person", "train", "eval", "skipped")}
    summary["skipped_list"] = str(Path(args.out) / "skipped.csv")
    summary.update(figures)
    summary["seconds"] = round(seconds, 2)
    summary["images_per_s"] = round((summary["images"] + summary["skipped"]) / seconds, 1)
    print_figures(summary, args.json)
    return 0


def run_synth(args) -> int:
    import time

    from mcunas.data.synth import synthesize

    start = time.perf_counter()
    figures = synthesize(args.out, args.n, args.resolution, args.seed)
    figures["images_per_s"] = round(figures["images"] / (time.perf_counter() - start), 1)
    print_figures(figures, args.json)
    return 0
