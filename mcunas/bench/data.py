"""``mcunas bench data``: is the input pipeline ever what limits training?

Trains MobileNetV1-0.25@96 (the ``mlperf-vww`` preset, compiled as the
``fast`` recipe compiles it) in one process, alternating two feeds:

* **cached**: the memory-mapped uint8 cache from :func:`mcunas.data.load_split`
  through :func:`mcunas.data.make_train_dataset` with augmentation — what a
  search trains on;
* **in_memory**: the same images already converted to a float32 array in RAM,
  fed to ``model.fit`` with no augmentation — the ceiling, where the input
  costs nothing.

After one warm-up epoch of each (tracing, first iterators, page cache), rounds
alternate the feeds in ABBA order, an epoch each by default; the figures are
the median images/s over the epochs of each feed (timed from epoch start to
end, so every epoch's iterator start-up and prefetch fill is counted).
Alternating spreads the drift of a shared machine over both feeds, so their
ratio (the goal is ≥ 0.9) is the figure to trust.

Also times ``mcunas data build`` on ../shared/data/coco_tiny when it is
present (fresh output folder, so the JPEGs are really decoded).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("data", help="training img/s from the cached pipeline vs an in-memory array; build img/s",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--data", metavar="DIR",
                   help="dataset (default ../shared/data/vww01_dev if present, else a generated synth set)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32, the campaign default)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per feed and round (default 1)")
    p.add_argument("--rounds", type=int, default=8, help="alternating rounds (default 8)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def shared_folder() -> Path | None:
    """``../shared`` beside the current folder or beside the repository, if either exists."""
    for base in (Path.cwd().parent, Path(__file__).resolve().parents[2].parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared"
    return None


def default_data() -> Path:
    shared = shared_folder()
    if shared and (shared / "data" / "vww01_dev").is_dir():
        return shared / "data" / "vww01_dev"
    from mcunas.data.formats import cache_root
    from mcunas.data.synth import synthesize

    folder = cache_root() / "bench" / "synth-1000"
    if not (folder / "about.txt").is_file():
        synthesize(folder, n=1000, resolution=96, seed=0)
    return folder


def run(args) -> int:
    from mcunas.bench import require_at_least_one

    require_at_least_one(args, "--epochs", "--rounds", "--batch")
    figures = {"data": str(Path(args.data) if args.data else default_data()), "batch": args.batch}
    figures.update(training_rates(Path(figures["data"]), args.batch, args.epochs, args.rounds))
    figures.update(build_rate())
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        from mcunas.output import print_figures

        print_figures({k: v for k, v in figures.items() if not isinstance(v, list)}, False)
    return 0


def training_rates(data: Path, batch: int, epochs: int, rounds: int) -> dict:
    import keras
    import numpy as np

    from mcunas.data import load_split, make_train_dataset
    from mcunas.input_convention import preprocess
    from mcunas.keras_model import build_keras_model
    from mcunas.presets import preset_arch
    from mcunas.train.recipes import compile_for_recipe

    images, labels = load_split(data, "all", 96, 3)
    in_memory = preprocess(np.asarray(images))
    model = build_keras_model(preset_arch("mlperf-vww"), batch_size=None)
    steps = -(-len(images) // batch)
    compile_for_recipe(model, "fast", steps, epochs=2 * (epochs * rounds + 1))

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.rates.append(len(images) / (time.perf_counter() - self.start))

    def fit(feed: str, seed: int, epochs: int) -> list[float]:
        timer = Timer()
        timer.rates = []
        if feed == "cached":
            model.fit(make_train_dataset(images, labels, batch, seed=seed), epochs=epochs, shuffle=False,
                      verbose=0, callbacks=[timer])
        else:
            model.fit(in_memory, labels, batch_size=batch, epochs=epochs, shuffle=True, verbose=0,
                      callbacks=[timer])
        return timer.rates

    results = {"cached": [], "in_memory": []}
    for feed in results:  # warm-up: tracing, first iterators, page cache
        fit(feed, seed=99, epochs=1)
    for r in range(rounds):  # ABBA order, so drift of a shared machine hits both feeds alike
        for feed in (("cached", "in_memory") if r % 2 == 0 else ("in_memory", "cached")):
            results[feed] += fit(feed, seed=r, epochs=epochs)
    cached, ceiling = statistics.median(results["cached"]), statistics.median(results["in_memory"])
    return {"images": len(images), "cached_augmented_img_per_s": round(cached, 1),
            "in_memory_img_per_s": round(ceiling, 1), "ratio": round(cached / ceiling, 3),
            "cached_epochs": [round(x, 1) for x in results["cached"]],
            "in_memory_epochs": [round(x, 1) for x in results["in_memory"]]}


def build_rate() -> dict:
    """``mcunas data build`` on coco_tiny into a fresh folder: all images decoded and cached."""
    shared = shared_folder()
    coco = shared / "data" / "coco_tiny" if shared else None
    if coco is None or not coco.is_dir():
        return {"build": "skipped: ../shared/data/coco_tiny is absent"}
    from mcunas.data.build import build

    sources = [(str(coco / f"{s}2017"), str(coco / "annotations" / f"instances_{s}2017.json"))
               for s in ("train", "val")]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        figures = build(sources, str(Path(tmp) / "vww"))
        seconds = time.perf_counter() - start
    return {"build_images": figures["images"], "build_person": figures["person"],
            "build_img_per_s": round(figures["images"] / seconds, 1),
            "build_decode_img_per_s": figures.get("decode_images_per_s")}
