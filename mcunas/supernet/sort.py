"""Channel importance sorting (Once-for-All's ``re_organize_middle_weights``): a narrower member's leading
channels become the supernet's most important ones, the largest member's function unchanged.

A member takes the **leading** channels of every elastic dimension
(:mod:`mcunas.supernet.members`).  Left alone, which channels lead is an
accident of initialisation; sorted, the channels a narrow member keeps are
the ones the wide network relies on most.  As in Once-for-All, a channel's
importance is the L1 norm of the weights that **read** it (its row of the
next layer's kernel), and the permutation is applied to every weight that
touches the channel, so the largest member, which uses every channel,
computes exactly what it did (tests/test_supernet.py checks its logits).

Only channels internal to one block are sorted (:func:`channel_groups`):

* an inverted-residual block's expanded channels: ``_expand`` outputs and
  its BatchNorm -> the ``_dw`` kernel's channels and its BatchNorm -> the
  ``_project`` kernel's input rows (importance: those rows);
* a ShuffleNet unit's branch channels: ``_pw1`` outputs -> ``_dw`` ->
  ``_pw2`` input rows (not ``_pw2``'s outputs: behind the concatenation
  :func:`mcunas.supernet.net.channel_ids` names channels by their place);
* the head conv's outputs -> global pooling -> ``fc_head``'s rows: nothing
  else reads them.

Of each, only the leading channels the space's largest member uses are
permuted (:func:`channel_groups` says why there can be more).

Stage widths and the stem are left alone.  A stage's channels are written
by every block's projection (added through the residuals) and read by the
next stage's first block, whose rows are the same for whichever earlier
stage a member continues from when a stage may vanish (in mobilenet_v2 the
head reads stage 6 or stage 7 through the same rows): one permutation would
have to serve every stage sharing those rows, and the largest member would
keep its function only where none can vanish in between.  With the block-
internal sort measured no better (below), that was not built.  Depthwise-
separable (``ds``) blocks and blocks without an expansion conv have no
internal channels.

``train_supernet(sort=True)`` sorts after every epoch but the last
(:mod:`mcunas.supernet.train`): the sandwich rule trains every member from
the first step, so there is no "elastic width starts here" moment at which
Once-for-All sorts, and a sort after the last epoch would hand narrower
members channels they never trained with.  It is off by default:
tests/bench/supernet_sorting.py measured it 5-7 points worse than no
sorting after 3 epochs and 1 point worse after 6 (two seeds each; each sort
moved 61-100 % of the sorted channels).

Adam's two moment slots of each permuted weight are permuted with it: Adam's
update is elementwise, so each weight goes on with its own gradient history,
where unpermuted moments would push every moved channel with another's.
"""

from __future__ import annotations

import numpy as np

from mcunas.spaces import Space
from mcunas.supernet.members import extreme_arch, member_slots


def channel_groups(space: Space) -> list[tuple[str, int, int, list[tuple[str, int]]]]:
    """Each sortable channel dimension as ``(reader kernel, its channel axis, channels, [(weight, axis), ...])``:
    the list holds every weight that carries the dimension, the reader included; only the leading
    ``channels`` are sorted, the ones the space's largest member uses.

    A stage's first block is sized for the widest earlier stage (or stem),
    but reads the stage before it: in mobilenet_v2 ``s2b0`` has 6 × 24 = 144
    expanded channels and the largest member uses 6 × 16 = 96 of them.
    Sorting all 144 would move trained channels out of the largest member
    and untrained ones in.
    """
    from mcunas.arch import layers
    from mcunas.supernet.net import weight_key

    largest = extreme_arch(space, True)
    slots = member_slots(space, largest)
    groups = []
    for layer in layers(largest):
        writer = weight_key(layer, slots) if layer.kind == "conv" else ""
        if writer.endswith(("_expand", "_pw1")):
            base = writer.rsplit("_", 1)[0]
            depthwise, reader = f"{base}_dw", f"{base}_project" if writer.endswith("_expand") else f"{base}_pw2"
        elif writer == "head":
            depthwise, reader = None, "fc_head"
        else:
            continue
        axis = 0 if reader == "fc_head" else 2
        touched = [(f"{writer}/kernel", 3), (f"{writer}/gamma", 0), (f"{writer}/beta", 0)]
        if depthwise:
            touched += [(f"{depthwise}/kernel", 2), (f"{depthwise}/gamma", 0), (f"{depthwise}/beta", 0)]
        groups.append((f"{reader}/kernel", axis, layer.channels_out, touched + [(f"{reader}/kernel", axis)]))
    return groups


def importance(kernel: np.ndarray, axis: int) -> np.ndarray:
    """L1 norm of ``kernel`` per index of ``axis``: how strongly the next layer reads each channel."""
    return np.abs(kernel).sum(axis=tuple(a for a in range(kernel.ndim) if a != axis))


def sort_channels(variables: dict, space: Space, optimizer=None) -> dict[str, np.ndarray]:
    """Permute every group of :func:`channel_groups` in ``variables`` (name -> ``tf.Variable``), most important
    first, and ``optimizer``'s Adam moments of those weights with them; returns reader kernel -> permutation
    of its leading channels (groups already in order left out).

    The sort is stable, so channels of equal importance (e.g. untrained zero rows) keep their order.
    """
    import tensorflow as tf

    orders = {}
    for reader, axis, channels, touched in channel_groups(space):
        scores = importance(variables[reader].numpy(), axis)[:channels]
        order = np.argsort(-scores, kind="stable")
        if np.array_equal(order, np.arange(channels)):
            continue
        orders[reader] = order
        for name, dim in touched:
            for variable in [variables[name], *adam_moments(optimizer, variables[name])]:
                whole = np.arange(variable.shape[dim])
                whole[:channels] = order
                variable.assign(tf.gather(variable, whole, axis=dim))
    return orders


def adam_moments(optimizer, weight) -> list:
    """Adam's first and second moment slots of ``weight``; none without an optimizer or before its first step.

    Keras 3 keeps them in ``_momentums`` / ``_velocities``, indexed like the
    weights it was built on (``_get_variable_index``, which Adam's own update
    uses); no public accessor says which slot belongs to which weight.
    """
    if optimizer is None or not optimizer.built:
        return []
    index = optimizer._get_variable_index(weight)
    return [optimizer._momentums[index], optimizer._velocities[index]]
