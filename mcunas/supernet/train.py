"""Training the supernet with the sandwich rule and in-place distillation (BigNAS / Once-for-All).

Every step trains four members on the same batch: the largest (on the true
labels), then the smallest and two random members of the space (sampled by
the space's own sampler, so each is exactly a space member), each on the
largest member's softened predictions.  The gradients of the four are summed
and applied once (Adam, 2e-3, cosine decay: the ``fast`` recipe's
optimiser).  Each member is computed with its own tape, so only one
member's activations are held at a time.

Resolution is elastic where the space searches it, as in Once-for-All:
each step draws one of the space's resolutions and all four members run on
the batch resized (antialiased) to it, from the largest size it was loaded
at.  Scoring recalibrates BatchNorm at each member's own resolution.
``resolution`` trains at that one size instead: cheaper, and what to use
when the search will only look at sizes near it.

Channels are not sorted by importance (Once-for-All): ``sort`` sorts the
channels inside each block after every epoch but the last
(:mod:`mcunas.supernet.sort`), and tests/bench/supernet_sorting.py measured
it no better than leaving them in place (5-7 points worse after 3 epochs,
1 point worse after 6): here every member trains from the first step, and each sort
hands the narrower members channels they were not trained with.

The two ends of the sandwich are traced once as graphs (any resolution):
measured on the largest MobileNetV2 member at 96 px, batch 32, a traced
forward and backward pass took 2.0 s against 4.5-6 s eagerly.  The random
members differ every step, so they run eagerly (a trace costs more than it
saves).
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from pathlib import Path

import numpy as np

from mcunas.spaces import RandomTrial, Space, sample_arch
from mcunas.supernet.members import extreme_arch, largest_shape, member_slots
from mcunas.supernet.sort import sort_channels

LEARNING_RATE = 2e-3
RANDOM_MEMBERS = 2


def train_supernet(space: Space, data: str, epochs: int, resolution: int | None, batch: int = 32, seed: int = 0,
                   log=None, sort: bool = False) -> tuple[dict, dict]:
    """Train a supernet for ``space`` on ``data`` (:func:`training_rows`); returns ``(weights, meta)``.

    ``sort``: sort channels by importance after every epoch but the last (for
    tests/bench/supernet_sorting.py, which measures it; the CLI does not).
    """
    import keras
    import tensorflow as tf

    from mcunas.data import RowView, make_train_dataset
    from mcunas.data.formats import read_dataset
    from mcunas.search.campaign import space_fingerprint
    from mcunas.supernet.net import forward, initial_weights
    from mcunas.output import format_duration

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    shape = largest_shape(space)
    sizes = (resolution,) if resolution else shape.resolutions
    top = max(sizes)
    keras.utils.set_random_seed(seed)
    images, labels, splits = read_dataset(Path(data), top, 3)
    rows = training_rows(labels, splits, seed)
    x_train, y_train = RowView(images, rows), labels[rows]
    steps = max(1, len(y_train) // batch)
    dataset = make_train_dataset(x_train, y_train, batch, seed=seed).take(steps)
    variables = {name: tf.Variable(value, name=name.replace("/", "_"))
                 for name, value in initial_weights(shape, seed).items()}
    names = sorted(variables)
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps * epochs))
    ends = [extreme_arch(space, True), extreme_arch(space, False)]
    sampler, draw = RandomTrial(seed), np.random.default_rng(seed)
    compiled = {}

    def step_of(arch, distil: bool):
        """The member's gradient function: traced once (any resolution) for the two ends, eager for the rest."""
        fn = _member_gradients(variables, names, arch, member_slots(space, arch), distil, forward)
        key = (dataclasses.replace(arch, resolution=0), distil)
        if key[0] in (dataclasses.replace(end, resolution=0) for end in ends):
            if key not in compiled:
                compiled[key] = tf.function(fn, reduce_retracing=True, input_signature=(
                    tf.TensorSpec((None, None, None, arch.in_channels)), tf.TensorSpec((None,), tf.int32),
                    tf.TensorSpec((None, None))))
            return compiled[key]
        return fn

    start, sort_s = time.perf_counter(), 0.0
    for epoch in range(1, epochs + 1):
        epoch_start, losses = time.perf_counter(), []
        for x, y in dataset:
            size = sizes[int(draw.integers(len(sizes)))]
            if size != top:
                x = tf.image.resize(x, (size, size), antialias=True)
            members = [dataclasses.replace(arch, resolution=size) for arch in
                       ends + [sample_arch(space, sampler) for _ in range(RANDOM_MEMBERS)]]
            losses.append(_sandwich_step(step_of, members, x, y, optimizer, variables, names))
        if sort and epoch < epochs:  # a sort changes narrower members: they get an epoch to train on the new order
            sort_start = time.perf_counter()
            sort_channels(variables, space, optimizer)
            sort_s += time.perf_counter() - sort_start
        elapsed = time.perf_counter() - start
        left = elapsed / epoch * (epochs - epoch)
        log(f"mcunas: supernet epoch {epoch}/{epochs}: largest member's loss {sum(losses) / len(losses):.3f}, "
            f"{time.perf_counter() - epoch_start:.0f} s, ETA {format_duration(left)}")
    weights = {name: variables[name].numpy() for name in names}
    meta = {"space": space.name, "space_file": str(space.path.resolve()), "space_sha256": space_fingerprint(space),
            "data": str(data), "split_seed": seed, "epochs": epochs, "batch": batch,
            "resolutions": list(sizes), "train_images": len(y_train),
            "train_s": round(time.perf_counter() - start, 1), **({"sort_s": round(sort_s, 2)} if sort else {}),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "parameters": int(sum(w.size for w in weights.values()))}
    return weights, meta


def training_rows(labels, splits, seed: int):
    """Rows of the data set the supernet may train on: its train split, less both validation shares a search
    with this seed can draw (from the train split without ``--eval-data``, from all images with it), so the
    search scores on images the supernet never saw either way."""
    from mcunas.data.split import validation_mask

    pool = np.flatnonzero(splits == "train")
    keep = np.zeros(len(labels), bool)
    keep[pool[~validation_mask(labels[pool], seed)]] = True
    keep &= ~validation_mask(labels, seed)
    return np.flatnonzero(keep)


def _member_gradients(variables, names, arch, slots, distil: bool, forward):
    """``f(images, labels, targets) -> (loss, logits, gradients)`` of one member: cross-entropy on the labels,
    or with ``distil`` on the soft ``targets``; a weight the member does not use gets a zero gradient."""
    import tensorflow as tf

    def gradients(images, labels, targets):
        with tf.GradientTape() as tape:
            logits = forward(variables, arch, slots, images)
            if distil:
                loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(targets, logits))
            else:
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        grads = tape.gradient(loss, [variables[n] for n in names])
        return loss, logits, [tf.zeros_like(variables[n]) if g is None else tf.convert_to_tensor(g)
                              for n, g in zip(names, grads)]

    return gradients


def _sandwich_step(step_of, members, x, y, optimizer, variables, names) -> float:
    """One optimiser step over ``members`` (largest first) on batch ``x, y``; the largest member's loss."""
    import tensorflow as tf

    total, targets, first_loss = None, tf.zeros((tf.shape(x)[0], 1)), None
    for number, arch in enumerate(members):
        images = tf.image.rgb_to_grayscale(x) if arch.in_channels == 1 else x
        loss, logits, grads = step_of(arch, number > 0)(images, y, targets)
        total = grads if total is None else [a + b for a, b in zip(total, grads)]
        if first_loss is None:
            targets, first_loss = tf.nn.softmax(logits), float(loss)
    optimizer.apply_gradients(zip(total, [variables[n] for n in names]))
    return first_loss
