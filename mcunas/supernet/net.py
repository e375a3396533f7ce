"""The supernet's weights and the forward pass of any member sliced out of them.

The forward pass walks :func:`mcunas.arch.layers` of the member, the same
walk the Keras builder and the cost model take, so a sliced member is the
network its string names, layer for layer (tests/test_supernet.py checks
its outputs against the Keras model carrying the copied weights).  Per layer:

* kernels are the **centre** K×K of the supernet's largest kernel (Once-for-
  All's elastic kernel without its learned transform matrices: built and
  measured on branch ``ktrans``, they made no difference to the members'
  scores (README); centre cropping keeps the 3×3 kernels of every member
  the same weights, which the sandwich rule trains most often);
* output channels are the **leading** ones (width, expansion, stem and
  head choices), blocks the **leading** blocks of each stage; input
  channels are the leading ones too, except behind a ShuffleNet unit,
  where each of the member's channels reads the kernel row of the supernet
  channel it stands for (:func:`channel_ids`);
* a grayscale member's stem sums the kernel over R, G, B: a gray image
  through it equals the same gray repeated in three channels through the
  RGB kernel;
* BatchNorm takes the sliced gamma and beta; statistics are the batch's
  (training, recalibration) or the member's own recalibrated ones (scoring).

TensorFlow is imported inside the functions; eager execution throughout:
every step runs different members, and tracing a graph per member costs
more than the op dispatch it saves.
"""

from __future__ import annotations

import numpy as np

from mcunas.arch import Arch, layers
from mcunas.keras_model import BN_EPSILON
from mcunas.supernet.members import Shape


def weight_shapes(shape: Shape) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every supernet weight (``<slot><suffix>/kernel``, ``/gamma``, ``/beta``, ``/bias``).

    A stage's first block takes its input rows from the widest earlier stage
    (the stage before it may be left out by a member).
    """
    out: dict[str, tuple[int, ...]] = {}

    def conv(key: str, k: int, cin: int, cout: int) -> None:
        out[f"{key}/kernel"] = (k, k, cin, cout)
        out[f"{key}/gamma"] = out[f"{key}/beta"] = (cout,)

    def depthwise(key: str, k: int, channels: int) -> None:
        out[f"{key}/kernel"] = (k, k, channels, 1)
        out[f"{key}/gamma"] = out[f"{key}/beta"] = (channels,)

    conv("stem", shape.stem_kernel, shape.in_channels, shape.stem_channels)
    widest = shape.stem_channels
    for i, stage in enumerate(shape.stages, start=1):
        for j in range(stage.repeats):
            slot, cin = f"s{i}b{j}", widest if j == 0 else stage.channels
            if stage.kind == "sf":  # the down-sampling unit's extra branch; both read the whole input
                half = stage.channels // 2
                if j == 0 and stage.stride == 2:
                    depthwise(f"{slot}_down_dw", stage.kernel, cin)
                    conv(f"{slot}_down_pw", 1, cin, half)
                else:
                    cin = half  # a basic unit's branch reads half of its input
                conv(f"{slot}_pw1", 1, cin, half)
                depthwise(f"{slot}_dw", stage.kernel, half)
                conv(f"{slot}_pw2", 1, half, half)
                continue
            if stage.kind == "ds":
                depthwise(f"{slot}_dw", stage.kernel, cin)
                conv(f"{slot}_pw", 1, cin, stage.channels)
                continue
            mid = cin * stage.expand
            if stage.expand > 1:
                conv(f"{slot}_expand", 1, cin, mid)
            depthwise(f"{slot}_dw", stage.kernel, mid)
            conv(f"{slot}_project", 1, mid, stage.channels)
        widest = max(widest, stage.channels)
    if shape.head_channels:
        conv("head", 1, widest, shape.head_channels)
        out["fc_head/kernel"], out["fc_head/bias"] = (shape.head_channels, shape.classes), (shape.classes,)
    if shape.head_optional or not shape.head_channels:
        out["fc_body/kernel"], out["fc_body/bias"] = (widest, shape.classes), (shape.classes,)
    return out


def initial_weights(shape: Shape, seed: int) -> dict[str, np.ndarray]:
    """He-initialised kernels (fan-in K×K for depthwise, as the Keras builder), BatchNorm gamma 1 / beta 0,
    Glorot-uniform classifiers with zero bias; except, as in BigNAS, gamma 0 on the projection of every
    residual block, so each starts as the identity.

    Why the exception: a member takes the leading blocks of each stage, and a
    residual block that starts as the identity changes little when it is left
    out, so shallow and deep members can share the blocks they have in common.
    Measured (mobilenet_v2, 4 epochs at 48 px on the 2000-image generated
    set, 12 members spread by MACs and the largest, scored as a search scores
    them): every one of the 13 scored higher, by 4-11 points, mean 0.728
    against 0.655 (README, "Weight-sharing supernet").  Blocks after the first
    of an ``ir`` stage are the residual ones (stride 1, same channels); a stage
    whose members may drop the skip (mnasnet's ``skip: [true, false]``) gets it
    too, its gamma learns away from 0 like any weight.
    """
    rng = np.random.default_rng(seed)
    residual = {f"s{i}b{j}_project/gamma" for i, stage in enumerate(shape.stages, start=1)
                if stage.kind == "ir" and stage.skip for j in range(1, stage.repeats)}
    weights = {}
    for name, dims in weight_shapes(shape).items():
        if name in residual:
            weights[name] = np.zeros(dims, np.float32)
        elif name.endswith("/gamma"):
            weights[name] = np.ones(dims, np.float32)
        elif name.endswith(("/beta", "/bias")):
            weights[name] = np.zeros(dims, np.float32)
        elif name.startswith("fc_"):
            limit = np.sqrt(6.0 / sum(dims))
            weights[name] = rng.uniform(-limit, limit, dims).astype(np.float32)
        else:
            fan_in = dims[0] * dims[1] * (1 if dims[3] == 1 else dims[2])
            std = np.sqrt(2.0 / fan_in) / 0.87962566  # truncated at 2 std, as Keras' he_normal
            weights[name] = np.clip(rng.normal(0, std, dims), -2 * std, 2 * std).astype(np.float32)
    return weights


def weight_key(layer, slots: dict[int, str]) -> str:
    """The supernet weight a member's layer uses: ``b7_expand`` of a member -> ``s3b1_expand``."""
    if layer.kind == "fc":
        return "fc_head" if "head" in slots.values() else "fc_body"
    prefix = f"b{layer.block}"
    return slots[layer.block] + layer.name[len(prefix):]


def channel_ids(arch: Arch, slots: dict[int, str], weights) -> dict[str, tuple[int, ...]]:
    """Layer name -> the supernet channel each of its output channels is, for outputs that are not simply the
    supernet's leading channels (ShuffleNet units); a layer reading one of them takes those kernel rows.

    A member's unit of C = 2h channels concatenates [passed half | branch half]; the supernet's unit
    [H passed | H branch].  Member channel i < h is the supernet's channel i, member channel h + i is the
    supernet's H + i (the branch's leading outputs).  The next unit's even / odd slices carry those
    identities through: its member channel m is supernet channel ids[2m + offset], which the supernet's own
    slice puts at position ids[2m + offset] // 2, so the basic unit's first 1×1 conv reads those rows.  Taking
    "the leading channels of the concatenation" instead would feed the passed half of the member's odd
    slice into weights the supernet trained on its branch half, and the other way round.  The parity rule
    is exact when h and H are even (every width of shufflenet_v2.yaml: channel counts are multiples of 4);
    a space with odd halves would have two channels share a row.  The passed half is named by its place
    again at every concatenation: carried on, two units later some of its channels would be ones the
    supernet's slices send into a branch (once h < H no naming matches both networks' data flow), and the
    place keeps the rule one line.  Depthwise convs, the max pool and global
    pooling keep their input's identities; a conv's outputs are the leading ones.  The largest member
    is the supernet itself: no entry.
    """
    ids: dict[str, tuple[int, ...]] = {}
    for layer in layers(arch):
        source = ids.get(layer.inputs[0]) or tuple(range(layer.channels_in))
        if layer.kind == "concat":
            half, full = layer.channels_out // 2, weights[f"{slots[layer.block]}_pw2/gamma"].shape[0]
            found = (*range(half), *range(full, full + half))
        elif layer.kind == "slice":
            found = tuple(c // 2 for c in source[layer.offset::2])
        elif layer.kind in ("depthwise", "maxpool", "gap"):
            found = source
        else:
            continue
        if found != tuple(range(len(found))):
            ids[layer.name] = found
    return ids


def sliced_kernel(full, layer, rows: tuple[int, ...] | None = None):
    """The member's kernel: centre ``layer.kernel``², input channels ``rows`` (default: the leading ones),
    leading output channels; a 1-channel stem sums R, G, B."""
    import tensorflow as tf

    cut = (full.shape[0] - layer.kernel) // 2
    kernel = full[cut:cut + layer.kernel, cut:cut + layer.kernel]
    if rows is not None:
        kernel = tf.gather(kernel, rows, axis=2)
    if layer.kind == "depthwise":
        return kernel[:, :, :layer.channels_in, :]
    if layer.inputs == ("input",) and layer.channels_in == 1 and full.shape[2] > 1:
        return tf.reduce_sum(kernel[:, :, :, :layer.channels_out], axis=2, keepdims=True)
    return kernel[:, :, :layer.channels_in, :layer.channels_out]


def member_params(weights, arch: Arch, slots: dict[int, str]) -> dict:
    """What :func:`run` needs of member ``arch``: its layer plan, each tensor's last reader, and each layer's
    sliced weights (conv/depthwise: ``(kernel, gamma, beta)``; fc: ``(kernel, bias)``).

    Slicing is 2-4 eager ops per weight, each paying TensorFlow's dispatch
    and constant conversions: at batch 1 it was 43 % of a forward pass.  A
    score runs a member twice or more (recalibration, validation), so it
    slices once; training slices inside its gradient tape every step, where
    gradients must flow back through the slices into the supernet.
    """
    plan = list(layers(arch))
    ids = channel_ids(arch, slots, weights)
    sliced = {}
    for layer in plan:
        rows = ids.get(layer.inputs[0])
        if layer.kind in ("conv", "depthwise"):
            key = weight_key(layer, slots)
            sliced[layer.name] = (sliced_kernel(weights[f"{key}/kernel"], layer, rows),
                                  *bn_parameters(weights, key, layer, rows))
        elif layer.kind == "fc":
            sliced[layer.name] = classifier(weights, layer, slots, rows)
    return {"plan": plan, "last_reader": {name: i for i, layer in enumerate(plan) for name in layer.inputs},
            "weights": sliced}


def forward(weights, arch: Arch, slots: dict[int, str], x, stats: dict | None = None, record: dict | None = None):
    """Logits of member ``arch`` on images ``x`` (N×R×R×C float in [0, 1]): :func:`run` on
    :func:`member_params` (what training calls, inside its gradient tape)."""
    return run(member_params(weights, arch, slots), x, stats, record)


def run(params: dict, x, stats: dict | None = None, record: dict | None = None):
    """Logits of the member whose :func:`member_params` are ``params`` on images ``x``.

    ``stats`` (layer name -> (mean, variance)) normalises with the member's
    recalibrated statistics; without it every BatchNorm uses the batch's,
    and ``record`` (if given) collects them per layer name (mean and the
    biased variance, as ``tf.nn.moments`` gives them).

    BatchNorm is TensorFlow's fused kernel in both modes: one op where
    moments and batch_normalization took six passes over the tensor
    (measured at 96 px, a 256-image recalibration pass took a quarter of
    the time).  A layer's output is dropped after its last reader, so a
    pass holds a few tensors instead of every layer's: that is what lets
    :mod:`mcunas.supernet.score` put 256 images through in one pass.
    """
    import tensorflow as tf

    last_reader, sliced = params["last_reader"], params["weights"]
    out = {"input": x}
    for i, layer in enumerate(params["plan"]):
        inputs = [out.pop(name) if last_reader[name] == i else out[name] for name in layer.inputs]
        if layer.kind in ("conv", "depthwise"):
            kernel, gamma, beta = sliced[layer.name]
            if layer.kind == "conv":
                y = tf.nn.conv2d(inputs[0], kernel, layer.stride, "SAME")
            else:
                y = tf.nn.depthwise_conv2d(inputs[0], kernel, (1, layer.stride, layer.stride, 1), "SAME")
            y = _batch_norm(y, gamma, beta, layer, stats, record)
            if layer.activation == "relu6":
                y = tf.nn.relu6(y)
            elif layer.activation == "relu":
                y = tf.nn.relu(y)
            out[layer.name] = y
        elif layer.kind == "add":
            out[layer.name] = inputs[0] + inputs[1]
        elif layer.kind == "maxpool":
            out[layer.name] = tf.nn.max_pool2d(inputs[0], layer.kernel, layer.stride, "SAME")
        elif layer.kind == "slice":
            out[layer.name] = inputs[0][..., layer.offset::2]
        elif layer.kind == "concat":
            out[layer.name] = tf.concat(inputs, axis=-1)
        elif layer.kind == "gap":
            out[layer.name] = tf.reduce_mean(inputs[0], axis=(1, 2))
        elif layer.kind == "fc":
            kernel, bias = sliced[layer.name]
            out[layer.name] = tf.matmul(inputs[0], kernel) + bias
        elif layer.kind == "softmax":
            return inputs[0]
        else:
            raise ValueError(f"the supernet cannot run a {layer.kind} layer ({layer.name})")
    raise AssertionError("layers() always ends with softmax")


def bn_parameters(weights, key: str, layer, rows: tuple[int, ...] | None):
    """The layer's BatchNorm ``(gamma, beta)``: the leading channels, or a depthwise conv's ``rows``
    (its outputs are its input channels)."""
    import tensorflow as tf

    gamma, beta = weights[f"{key}/gamma"], weights[f"{key}/beta"]
    if layer.kind == "depthwise" and rows is not None:
        return tf.gather(gamma, rows), tf.gather(beta, rows)
    return gamma[:layer.channels_out], beta[:layer.channels_out]


def classifier(weights, layer, slots: dict[int, str], rows: tuple[int, ...] | None):
    """The classifier's ``(kernel, bias)``: input rows ``rows`` (default: the leading ones)."""
    import tensorflow as tf

    key = weight_key(layer, slots)
    kernel = weights[f"{key}/kernel"]
    kernel = tf.gather(kernel, rows) if rows is not None else kernel[:layer.channels_in]
    return kernel[:, :layer.channels_out], weights[f"{key}/bias"][:layer.channels_out]


def _batch_norm(y, gamma, beta, layer, stats: dict | None, record: dict | None):
    """The layer's BatchNorm: with its ``stats``, or the batch's (recorded in ``record`` as the fused kernel
    returns them: mean, Bessel-corrected variance, and how many values per channel it saw)."""
    import tensorflow as tf

    if stats is not None:
        mean, variance = stats[layer.name]
        return tf.compat.v1.nn.fused_batch_norm(y, gamma, beta, mean, variance, BN_EPSILON, is_training=False)[0]
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(y, gamma, beta, epsilon=BN_EPSILON, is_training=True)
    if record is not None:
        record.setdefault(layer.name, []).append((mean, variance, y.shape.num_elements() // layer.channels_out))
    return y
