"""Scoring a member with inherited weights: BatchNorm recalibrated on training images, then validation accuracy.

Shared weights leave a member's BatchNorm statistics undefined (the
supernet trained on batch statistics of many members), so, as in
Once-for-All, each member's statistics are recomputed on
:data:`CALIBRATION_IMAGES` training images at its own resolution before it
is scored on the campaign's validation set (the same images ordinary
candidates are selected on).  The supernet file is read once per worker
process (:func:`loaded`), so a warm worker scores candidate after candidate.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np

CALIBRATION_IMAGES = 256
BATCH = 64


@lru_cache(maxsize=2)
def _loaded(path: str, mtime_ns: int):
    import tensorflow as tf

    from mcunas.spaces import load_space
    from mcunas.supernet.file import load_supernet

    meta, weights = load_supernet(Path(path))
    return meta, load_space(meta.get("space_file", meta["space"])), {name: tf.constant(value) for name, value in weights.items()}


def loaded(path: str):
    """``(meta, space, weights as tensors)`` of a supernet file, read again only when the file changes."""
    return _loaded(str(path), Path(path).stat().st_mtime_ns)


def recalibrated_stats(weights, arch, slots, images) -> dict:
    """Layer name -> (mean, variance) over ``images`` (the mean of per-batch statistics, as Once-for-All)."""
    import tensorflow as tf

    from mcunas.data.pipeline import to_float
    from mcunas.supernet.net import forward

    record: dict = {}
    for start in range(0, len(images), BATCH):
        forward(weights, arch, slots, to_float(np.asarray(images[start:start + BATCH])), record=record)
    return {name: (tf.reduce_mean(tf.stack([m for m, _ in pairs]), 0), tf.reduce_mean(tf.stack([v for _, v in pairs]), 0))
            for name, pairs in record.items()}


def calibration_images(x_train, seed: int):
    """The seeded :data:`CALIBRATION_IMAGES` training images BatchNorm is recalibrated on."""
    rng = np.random.default_rng(seed)
    return x_train[np.sort(rng.choice(len(x_train), size=min(CALIBRATION_IMAGES, len(x_train)), replace=False))]


def member_accuracy(weights, arch, slots, stats, images, labels) -> float:
    import tensorflow as tf

    from mcunas.data.pipeline import to_float
    from mcunas.supernet.net import forward

    right = 0
    for start in range(0, len(labels), BATCH):
        logits = forward(weights, arch, slots, to_float(np.asarray(images[start:start + BATCH])), stats=stats)
        right += int(tf.reduce_sum(tf.cast(tf.argmax(logits, 1, output_type=tf.int32) == labels[start:start + BATCH],
                                           tf.int32)))
    return right / max(1, len(labels))


def prepared_member(job):
    """``(weights, arch, slots, stats, sets)`` of the job's architecture, recalibrated on its training images."""
    from mcunas.arch import parse_arch
    from mcunas.data import train_val_test
    from mcunas.supernet.members import member_slots

    _, space, weights = loaded(job.supernet)
    arch = parse_arch(job.arch)
    slots = member_slots(space, arch)
    sets = train_val_test(job.data, job.eval_data, arch.resolution, arch.in_channels, job.split_seed)
    stats = recalibrated_stats(weights, arch, slots, calibration_images(sets["train"][0], job.seed))
    return weights, arch, slots, stats, sets


def score_candidate(job) -> dict:
    """A :class:`~mcunas.train.worker.TrainJob` of kind ``score``: the member's float validation accuracy."""
    start = time.perf_counter()
    weights, arch, slots, stats, sets = prepared_member(job)
    accuracy = member_accuracy(weights, arch, slots, stats, *sets["val"])
    return {"supernet_accuracy": accuracy, "score_s": round(time.perf_counter() - start, 3),
            "val_images": len(sets["val"][1])}


def copy_into_keras(model, weights, arch, slots, stats) -> None:
    """Give a Keras model of ``arch`` (:func:`mcunas.keras_model.build_keras_model`) the member's weights.

    Layer by layer from :func:`mcunas.arch.layers`, by the names the
    builder gives them, so the model computes what the sliced member does.
    """
    from mcunas.arch import layers
    from mcunas.supernet.net import sliced_kernel, weight_key

    for layer in layers(arch):
        if layer.kind in ("conv", "depthwise"):
            key = weight_key(layer, slots)
            model.get_layer(layer.name).set_weights([np.asarray(sliced_kernel(weights[f"{key}/kernel"], layer))])
            c = layer.channels_out
            mean, variance = stats[layer.name]
            model.get_layer(f"{layer.name}_bn").set_weights(
                [np.asarray(weights[f"{key}/gamma"][:c]), np.asarray(weights[f"{key}/beta"][:c]),
                 np.asarray(mean), np.asarray(variance)])
        elif layer.kind == "fc":
            key = weight_key(layer, slots)
            model.get_layer(layer.name).set_weights(
                [np.asarray(weights[f"{key}/kernel"][:layer.channels_in, :layer.channels_out]),
                 np.asarray(weights[f"{key}/bias"][:layer.channels_out])])
