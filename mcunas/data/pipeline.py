"""``tf.data`` pipelines over the uint8 arrays :func:`mcunas.data.load_split` returns.

The arrays are usually memory maps of the on-disk cache, so the pipeline
shuffles *indices*, gathers one batch at a time from the map (sorted indices:
sequential reads), and only then converts and augments.  A 115k-image set
never has to fit in memory, and the page cache keeps a small one as fast as
an in-memory array.

Augmentation, in the spirit of the MLPerf Tiny VWW recipe: horizontal flip,
small shifts (±10 %) and zoom (±10 %), brightness (±0.1 of the [0, 1] range).
Pixels go into the model through :func:`preprocess` — the one input
convention of :mod:`mcunas.export.tflite` (``uint8 / 255``).
"""

from __future__ import annotations

import numpy as np

from mcunas.export.tflite import preprocess


def _batches(images: np.ndarray, labels: np.ndarray, batch: int, shuffle_seed: int | None):
    """A dataset of (model-ready float32 batch, int32 labels) gathered from (memory-mapped) arrays."""
    import tensorflow as tf

    n = len(images)
    labels = np.asarray(labels, dtype=np.int32)
    index = tf.data.Dataset.range(n)
    if shuffle_seed is not None:
        index = index.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=True)
    index = index.batch(batch)

    def gather(idx: np.ndarray):
        idx = np.sort(idx)
        return preprocess(images[idx]), labels[idx]

    shape = (None, *images.shape[1:])

    def load(idx):
        x, y = tf.numpy_function(gather, [idx], [tf.float32, tf.int32])
        x.set_shape(shape)
        y.set_shape((None,))
        return x, y

    return index.map(load, num_parallel_calls=tf.data.AUTOTUNE)


def _augmenter(seed: int):
    import keras

    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 1),
        keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed + 2),
        keras.layers.RandomBrightness(0.1, value_range=(0.0, 1.0), seed=seed + 3),
    ], name="augment")


def make_train_dataset(images: np.ndarray, labels: np.ndarray, batch: int, seed: int = 0, augment: bool = True):
    """Shuffled, augmented, batched and prefetched (float32 in [0, 1], int32 labels)."""
    import tensorflow as tf

    ds = _batches(images, labels, batch, shuffle_seed=seed)
    if augment:
        aug = _augmenter(seed)
        ds = ds.map(lambda x, y: (aug(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_eval_dataset(images: np.ndarray, labels: np.ndarray, batch: int):
    """In order, no augmentation, batched and prefetched."""
    import tensorflow as tf

    ds = _batches(images, labels, batch, shuffle_seed=None)
    return ds.prefetch(tf.data.AUTOTUNE)
