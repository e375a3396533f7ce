"""``tf.data`` pipelines over the uint8 arrays :func:`mcunas.data.load_split` returns.

The arrays are usually memory maps of the on-disk cache, so the pipeline
shuffles *indices*, gathers one batch at a time from the map (sorted indices:
sequential reads) as uint8 (a quarter of the bytes of float32 through the
``numpy_function`` boundary), and only then converts and augments inside the
graph.  A 115k-image set never has to fit in memory, and the page cache keeps
a small one as fast as an in-memory array.

Augmentation, in the spirit of the MLPerf Tiny VWW recipe: horizontal flip,
small shifts (±10 % per axis) and zoom (±10 %, aspect kept), borders filled by
reflection, and brightness (±0.1 of the [0, 1] range, then clipped).  On 2
cores training and the pipeline share the CPU, so every fraction of a
millisecond the pipeline spends per image is taken from training.  Measured
here (CPU time per augmented 96×96 image, batch 32): four Keras
preprocessing layers (flip, translation and zoom each resampling the batch,
then brightness) 1.30 ms; one ``ImageProjectiveTransformV3`` for the composed affine map
0.57 ms; what is used now, 0.27 ms: flip, shift and zoom have no rotation, so
each image's map is an axis-aligned box, and one ``crop_and_resize``
(bilinear) over the batch, mirror-padded just enough for the largest shift
plus zoom-out, samples every box (a box with x1 > x2 is the flip).  Random
numbers are stateless, drawn from a per-batch seed of
``tf.data.Dataset.random(seed)``: the same ``seed`` gives the same
augmentation sequence, and each epoch draws new ones.

Pixels go into the model through :func:`preprocess`'s convention (the one of
:mod:`mcunas.input_convention`: ``uint8 / 255``); the eval pipeline reproduces it
exactly.
"""

from __future__ import annotations

import numpy as np

from mcunas.input_convention import preprocess  # noqa: F401  (re-exported: the input convention)

SHIFT = 0.1  # fraction of the side, each axis
ZOOM = 0.1  # scale in [1 - ZOOM, 1 + ZOOM]
BRIGHTNESS = 0.1  # added to [0, 1] pixels


def _batches(images: np.ndarray, labels: np.ndarray, batch: int, shuffle_seed: int | None):
    """A dataset of (uint8 batch, int32 labels) gathered from (memory-mapped) arrays."""
    import tensorflow as tf

    n = len(images)
    labels = np.asarray(labels, dtype=np.int32)
    index = tf.data.Dataset.range(n)
    if shuffle_seed is not None:
        index = index.shuffle(max(n, 1), seed=shuffle_seed, reshuffle_each_iteration=True)
    index = index.batch(batch)

    def gather(idx: np.ndarray):
        idx = np.sort(idx)
        return np.ascontiguousarray(images[idx]), labels[idx]

    shape = (None, *images.shape[1:])

    def load(idx):
        x, y = tf.numpy_function(gather, [idx], [tf.uint8, tf.int32], stateful=False)
        x.set_shape(shape)
        y.set_shape((None,))
        return x, y

    return index, load


def to_float(x):
    """uint8 -> float32 in [0, 1], bit-identical to :func:`preprocess`."""
    import tensorflow as tf

    return tf.cast(x, tf.float32) / 255.0


def augment_batch(x, seed):
    """Flip, shift, zoom (one bilinear resample) and brightness of a uint8 batch -> float32 in [0, 1].

    ``seed`` is a shape-[2] integer tensor; the same seed gives the same result.
    """
    import tensorflow as tf

    return transform(x, tf.random.stateless_uniform([tf.shape(x)[0], 5], seed=seed, minval=-1.0, maxval=1.0))


def transform(x, u):
    """The augmentation for per-image draws ``u`` (N×5 in [-1, 1]: flip if < 0, zoom, x shift, y shift, brightness).

    The affine map has no rotation, so it is an axis-aligned box: the batch is
    mirror-padded just enough for the largest shift plus zoom-out, and
    ``crop_and_resize`` samples each image's box (x1 > x2 flips it).  All
    draws 0 except a flip gives the exact mirror image; all 0 the identity.
    """
    import tensorflow as tf

    n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    zoom = 1.0 + ZOOM * u[:, 1]
    padded, ph, pw = _mirror_pad(x, h, w)
    edges = []
    for side, pad, shift in ((h, ph, u[:, 3]), (w, pw, u[:, 2])):
        # output pixels 0 and side-1 sample c -/+ zoom*c + shift (c = (side-1)/2), in padded coordinates
        c = (side - 1) / 2
        edges.append([(c + sign * zoom * c + SHIFT * side * shift + pad) / (side + 2 * pad - 1) for sign in (-1, 1)])
    (y1, y2), (x1, x2) = edges
    flip = u[:, 0] < 0
    boxes = tf.stack([y1, tf.where(flip, x2, x1), y2, tf.where(flip, x1, x2)], axis=1)
    out = tf.image.crop_and_resize(padded, boxes, tf.range(n), (h, w))
    out = out / 255.0 + BRIGHTNESS * u[:, 4][:, None, None, None]
    return tf.clip_by_value(out, 0.0, 1.0)


def _mirror_pad(x, h: int, w: int):
    """``x`` padded by mirroring (edge pixel repeated) enough for any box :func:`augment_batch` draws."""
    import math

    import tensorflow as tf

    ph = min(h, math.ceil(h * (ZOOM / 2 + SHIFT)) + 1)
    pw = min(w, math.ceil(w * (ZOOM / 2 + SHIFT)) + 1)
    x = tf.concat([tf.reverse(x[:, :ph], [1]), x, tf.reverse(x[:, h - ph:], [1])], axis=1)
    x = tf.concat([tf.reverse(x[:, :, :pw], [2]), x, tf.reverse(x[:, :, w - pw:], [2])], axis=2)
    return x, ph, pw


def make_train_dataset(images: np.ndarray, labels: np.ndarray, batch: int, seed: int = 0, augment: bool = True):
    """Shuffled, augmented, batched and prefetched (float32 in [0, 1], int32 labels)."""
    import tensorflow as tf

    index, load = _batches(images, labels, batch, shuffle_seed=seed)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(index, seeds)

        def step(idx, pair):
            x, y = load(idx)
            return augment_batch(x, pair), y
    else:
        ds = index

        def step(idx):
            x, y = load(idx)
            return to_float(x), y
    return ds.map(step, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def make_eval_dataset(images: np.ndarray, labels: np.ndarray, batch: int):
    """In order, no augmentation, batched and prefetched."""
    import tensorflow as tf

    index, load = _batches(images, labels, batch, shuffle_seed=None)
    return index.map(lambda idx: (lambda x, y: (to_float(x), y))(*load(idx)),
                     num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
