"""Scoring a member with inherited weights: BatchNorm recalibrated on training images, then validation accuracy.

Shared weights leave a member's BatchNorm statistics undefined (the
supernet trained on batch statistics of many members), so, as in
Once-for-All, each member's statistics are recomputed on
:data:`CALIBRATION_IMAGES` training images at its own resolution before it
is scored on the campaign's validation set (the same images ordinary
candidates are selected on).  The supernet file is read once per worker
process (:func:`loaded`), and so is the campaign's split at each resolution
(:func:`scoring_sets`), so a warm worker scores candidate after candidate.

A score is two forward passes of the member's ~300 ops: one over the 256
calibration images (BatchNorm on the batch's statistics, which it records)
and one over the validation images with those statistics, each in as few
passes as memory allows: :func:`batch_for` images per pass, all 256 up to
96 px (the campaign's default), fewer above, with the statistics pooled.
The forward pass keeps only the tensors still to be read and runs
BatchNorm as one fused op (:func:`mcunas.supernet.net.forward`): at 96 px
that made a score 2.2 times faster than six-op BatchNorm with every
layer's output held (tests/bench/supernet_score_time.py, both versions
alternated on one machine).

Both passes run on the member's weights sliced once
(:func:`mcunas.supernet.net.member_params`): slicing them again in every
pass cost about 1 ms a layer in eager dispatch, and taking it out made a
score at the defaults 12-20 % faster (README, "Speed").
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np

CALIBRATION_IMAGES = 256
PASS_PIXELS = 256 * 96 * 96  # images x pixels per forward pass: the largest member's live tensors stay < 1 GB


def batch_for(resolution: int) -> int:
    """Images per forward pass at ``resolution``: all 256 calibration images up to 96 px, at least 16."""
    return max(16, min(CALIBRATION_IMAGES, PASS_PIXELS // (resolution * resolution)))


@lru_cache(maxsize=2)
def _loaded(path: str, mtime_ns: int):
    import tensorflow as tf

    from mcunas.spaces import load_space
    from mcunas.supernet.file import load_supernet

    meta, weights = load_supernet(Path(path))
    space_file = meta.get("space_file")  # gone when the file was made in another checkout or on another machine
    space = load_space(space_file if space_file and Path(space_file).is_file() else meta["space"])
    return meta, space, {name: tf.constant(value) for name, value in weights.items()}


def loaded(path: str):
    """``(meta, space, weights as tensors)`` of a supernet file, read again only when the file changes."""
    return _loaded(str(path), Path(path).stat().st_mtime_ns)


def recalibrated_stats(params: dict, arch, images) -> dict:
    """Layer name -> (mean, variance) of its outputs over all of ``images`` for the member whose
    :func:`~mcunas.supernet.net.member_params` are ``params``: exact in one pass (up to 96 px); above, each
    pass's statistics pooled by its share of the images (exact for the first layer; deeper layers see inputs
    normalised with their pass's statistics, as in Once-for-All, which averages them instead).

    The pooling is NumPy on each layer's few numbers, once per member, not
    TensorFlow ops per layer and pass: those cost dispatch time a score pays
    on every one of its ~50 layers."""
    import tensorflow as tf

    from mcunas.data.pipeline import to_float
    from mcunas.supernet.net import run

    record: dict = {}
    step, shares = batch_for(arch.resolution), []
    for start in range(0, len(images), step):
        batch = np.asarray(images[start:start + step])
        run(params, to_float(batch), record=record)
        shares.append(len(batch) / len(images))
    stats = {}
    for name, passes in record.items():
        means = [m.numpy() for m, _, _ in passes]
        variances = [v.numpy() * (n - 1) / n for _, v, n in passes]  # the kernel's Bessel-corrected -> biased
        mean = sum(w * m for w, m in zip(shares, means))
        variance = sum(w * (v + (m - mean) ** 2) for w, m, v in zip(shares, means, variances))
        stats[name] = (tf.constant(mean, tf.float32), tf.constant(variance, tf.float32))
    return stats


def calibration_images(x_train, seed: int):
    """The seeded :data:`CALIBRATION_IMAGES` training images BatchNorm is recalibrated on."""
    rng = np.random.default_rng(seed)
    return x_train[np.sort(rng.choice(len(x_train), size=min(CALIBRATION_IMAGES, len(x_train)), replace=False))]


def member_accuracy(params: dict, arch, stats, images, labels) -> float:
    """Share of ``images`` the member (its :func:`~mcunas.supernet.net.member_params`) classifies as ``labels``,
    BatchNorm on its recalibrated ``stats``."""
    from mcunas.data.pipeline import to_float
    from mcunas.supernet.net import run

    right, step = 0, batch_for(arch.resolution)
    for start in range(0, len(labels), step):
        logits = run(params, to_float(np.asarray(images[start:start + step])), stats=stats).numpy()
        right += int((logits.argmax(1) == labels[start:start + step]).sum())
    return right / max(1, len(labels))


@lru_cache(maxsize=8)
def _scoring_sets(data: str, eval_data: str | None, resolution: int, channels: int, split_seed: int, seed: int,
                  stamp: tuple):
    """``(calibration images, validation images, validation labels)``, read once per worker and resolution
    (listing and hashing a folder's file names costs more than scoring a small member); ``stamp`` (the
    folders' modification times) makes a changed folder read again."""
    from mcunas.data import train_val_test

    sets = train_val_test(data, eval_data, resolution, channels, split_seed)
    return calibration_images(sets["train"][0], seed), *sets["val"]


def scoring_sets(data: str, eval_data: str | None, resolution: int, channels: int, split_seed: int, seed: int):
    """``(calibration images, validation images, validation labels)`` a member at ``resolution`` and
    ``channels`` is scored on: read once per process, again only when a folder changes."""
    stamp = tuple(Path(f).stat().st_mtime_ns for f in (data, eval_data) if f)
    return _scoring_sets(data, eval_data, resolution, channels, split_seed, seed, stamp)


def prepared_member(job):
    """``(arch, params, stats, (validation images, labels))`` of the job's architecture: its sliced weights
    (:func:`~mcunas.supernet.net.member_params`) and its BatchNorm recalibrated on its training images."""
    from mcunas.arch import parse_arch
    from mcunas.supernet.members import member_slots
    from mcunas.supernet.net import member_params

    _, space, weights = loaded(job.supernet)
    arch = parse_arch(job.arch)
    params = member_params(weights, arch, member_slots(space, arch))
    calibration, *val = scoring_sets(job.data, job.eval_data, arch.resolution, arch.in_channels, job.split_seed,
                                     job.seed)
    return arch, params, recalibrated_stats(params, arch, calibration), val


def search_scores(weights, space, members, data: str, seed: int = 0) -> list[float]:
    """Each member's supernet accuracy exactly as ``mcunas search --supernet --data DATA --seed SEED`` scores it
    (BatchNorm recalibrated on its training images, validation share of that seed), with ``weights`` in
    memory: what the bench scripts comparing two ways of training a supernet score the same members with."""
    from mcunas.supernet.members import member_slots
    from mcunas.supernet.net import member_params

    scores = []
    for arch in members:
        calibration, *val = scoring_sets(data, None, arch.resolution, arch.in_channels, seed, seed)
        params = member_params(weights, arch, member_slots(space, arch))
        scores.append(member_accuracy(params, arch, recalibrated_stats(params, arch, calibration), *val))
    return scores


def score_candidate(job) -> dict:
    """A :class:`~mcunas.train.worker.TrainJob` of kind ``score``: the member's float validation accuracy."""
    start = time.perf_counter()
    arch, params, stats, val = prepared_member(job)
    accuracy = member_accuracy(params, arch, stats, *val)
    return {"supernet_accuracy": accuracy, "score_s": round(time.perf_counter() - start, 3),
            "val_images": len(val[1])}


def copy_into_keras(model, params: dict, stats) -> None:
    """Give a Keras model of the member (:func:`mcunas.keras_model.build_keras_model`) the member's weights.

    Layer by layer from its :func:`~mcunas.supernet.net.member_params` (the
    plan is :func:`mcunas.arch.layers`), by the names the builder gives them,
    so the model computes what the sliced member does.
    """
    for layer in params["plan"]:
        sliced = [np.asarray(w) for w in params["weights"].get(layer.name, ())]
        if layer.kind in ("conv", "depthwise"):
            model.get_layer(layer.name).set_weights(sliced[:1])
            model.get_layer(f"{layer.name}_bn").set_weights([*sliced[1:], *map(np.asarray, stats[layer.name])])
        elif layer.kind == "fc":
            model.get_layer(layer.name).set_weights(sliced)
