"""Arch -> Keras model, layer for layer the graph :mod:`mcunas.cost.graph` costs.

The builder and the cost model must agree op for op, or the cost model's
arena and flash predictions are predictions of some other network.  So:

* the batch is fixed to 1 (``Input(batch_size=1)``): an open batch makes the
  converter emit SHAPE / STRIDED_SLICE / PACK ops the cost model never sees;
* every conv is ``Conv2D(use_bias=False)`` + ``BatchNormalization`` + the
  activation, which the converter folds into one fused ``CONV_2D``
  (``DEPTHWISE_CONV_2D`` likewise); padding is always ``same`` so stride-2
  layers need no ``PAD`` op and output ``ceil(H / stride)``;
* the activation is ``ReLU`` or ``ReLU(max_value=6)`` (fused as RELU/RELU6);
  the projection of an inverted residual is linear;
* ``GlobalAveragePooling2D`` becomes ``MEAN``, ``Dense`` becomes
  ``FULLY_CONNECTED``, then ``Softmax``;
* a ShuffleNet unit's halves are ``x[..., 0::2]`` / ``x[..., 1::2]``, one
  ``STRIDED_SLICE`` each, and ``Concatenate`` joins them (``CONCATENATION``).
  Of the formulations tried on a small ShuffleNetV2 (48 px, one
  down-sampling and two basic units, converted and measured in TFLM) it is
  the cheapest: 24 ops, 38,272 B file, 30,200 B arena, against
  ``Reshape``-``Permute``-``Reshape`` + ``split`` (the paper's shuffle:
  RESHAPE, TRANSPOSE, RESHAPE, SPLIT; 31 ops, 39,944 B, 30,632 B) or
  with slices in halves (two STRIDED_SLICE instead of SPLIT; 33 ops,
  39,816 B, 31,280 B).  Why it is still ShuffleNetV2: :func:`mcunas.arch.layers`.

Kernels use He initialisation (variance-preserving under ReLU; for depthwise
kernels with the true fan-in K×K, which Keras' ``he_normal`` gets wrong by a
factor C), so an untrained network keeps activations of order one down to
its logits instead of shrinking them layer by layer; see :mod:`mcunas.export.tflite` for
why that matters to TFLM.

TensorFlow/Keras is imported inside the function: importing this module is
free, building a model costs the ~2.5 s TensorFlow import once.
"""

from __future__ import annotations

from functools import cache

from mcunas.arch import Arch, layers

BN_EPSILON = 1e-3


@cache
def channel_slice_layer():
    """The Keras layer class taking every second channel from ``offset`` (registered once, for loading).

    A named layer rather than the anonymous ``x[..., 0::2]``: the converter
    orders ops partly by their TensorFlow names, and with anonymous
    ``strided_slice_<n>`` names a basic unit's even slice moved behind its
    branch from the tenth block on (``b10`` sorts before ``b2``); named
    ``b<N>_even`` / ``b<N>_odd`` every unit converts in the same order.
    """
    import keras

    @keras.saving.register_keras_serializable(package="mcunas")
    class ChannelSlice(keras.layers.Layer):
        def __init__(self, offset: int, **kwargs):
            super().__init__(**kwargs)
            self.offset = offset

        def call(self, x):
            return x[..., self.offset::2]

        def compute_output_shape(self, shape):
            return (*shape[:-1], (shape[-1] - self.offset + 1) // 2)

        def get_config(self):
            return super().get_config() | {"offset": self.offset}

    return ChannelSlice


def build_keras_model(arch: Arch, bn_momentum: float | None = None, batch_size: int | None = 1):
    """A ``keras.Model`` of ``arch``: float input in [0, 1] of shape (1, R, R, C).

    ``batch_size=None`` gives the open-batch twin used for training; its
    weights load into the batch-1 model for export (same layer names).
    ``bn_momentum`` only matters for training (the recipes set it); ``None``
    keeps Keras' default.

    Layers are named and ordered by :func:`mcunas.arch.layers` (``b3_dw``,
    ``b3_pw`` ...), the walk :func:`mcunas.cost.graph.build_graph` costs.
    """
    import keras
    from keras import layers as kl

    def depthwise_init():
        # He init counts fan-in as K*K*C for a depthwise kernel of shape (K, K, C, 1);
        # each output only sees K*K inputs, which is the kernel's "fan-out" here.  A new
        # instance per layer: a shared unseeded Keras 3 initializer repeats its values.
        return keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")

    bn_options = {"epsilon": BN_EPSILON} | ({"momentum": bn_momentum} if bn_momentum is not None else {})

    def conv_bn_act(x, layer):
        if layer.kind == "conv":
            x = kl.Conv2D(layer.channels_out, layer.kernel, strides=layer.stride, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name=layer.name)(x)
        else:
            x = kl.DepthwiseConv2D(layer.kernel, strides=layer.stride, padding="same", use_bias=False,
                                   depthwise_initializer=depthwise_init(), name=layer.name)(x)
        x = kl.BatchNormalization(**bn_options, name=f"{layer.name}_bn")(x)
        if layer.activation is None:
            return x
        return kl.ReLU(max_value=6.0 if layer.activation == "relu6" else None, name=f"{layer.name}_act")(x)

    inputs = keras.Input(shape=(arch.resolution, arch.resolution, arch.in_channels), batch_size=batch_size,
                         name="image")
    out = {"input": inputs}
    for layer in layers(arch):
        x = [out[name] for name in layer.inputs]
        if layer.kind in ("conv", "depthwise"):
            out[layer.name] = conv_bn_act(x[0], layer)
        elif layer.kind == "add":
            out[layer.name] = kl.Add(name=layer.name)(x)
        elif layer.kind == "maxpool":
            out[layer.name] = kl.MaxPooling2D(layer.kernel, layer.stride, padding="same", name=layer.name)(x[0])
        elif layer.kind == "slice":
            out[layer.name] = channel_slice_layer()(layer.offset, name=layer.name)(x[0])
        elif layer.kind == "concat":
            out[layer.name] = kl.Concatenate(name=layer.name)(x)
        elif layer.kind == "gap":
            out[layer.name] = kl.GlobalAveragePooling2D(name=layer.name)(x[0])
        elif layer.kind == "fc":
            out[layer.name] = kl.Dense(layer.channels_out, name=layer.name)(x[0])
        else:
            out[layer.name] = kl.Softmax(name=layer.name)(x[0])
    return keras.Model(inputs, out["softmax"], name="mcunas")
