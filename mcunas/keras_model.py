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
  ``FULLY_CONNECTED``, then ``Softmax``.

Kernels use He initialisation (variance-preserving under ReLU; for depthwise
kernels with the true fan-in K×K, which Keras' ``he_normal`` gets wrong by a
factor C), so an untrained network keeps activations of order one down to
its logits instead of shrinking them layer by layer; see :mod:`mcunas.export.tflite` for
why that matters to TFLM.

TensorFlow/Keras is imported inside the function: importing this module is
free, building a model costs the ~2.5 s TensorFlow import once.
"""

from __future__ import annotations

from mcunas.arch import Arch

BN_MOMENTUM = 0.99  # the VWW paper's batch-norm decay
BN_EPSILON = 1e-3


def build_keras_model(arch: Arch, bn_momentum: float = BN_MOMENTUM, batch_size: int | None = 1):
    """A ``keras.Model`` of ``arch``: float input in [0, 1] of shape (1, R, R, C).

    ``batch_size=None`` gives the open-batch twin used for training; its
    weights load into the batch-1 model for export (same layer names).

    Layer names follow the op order (``b3_dw``, ``b3_pw`` ...) so a model's
    summary can be read against :func:`mcunas.cost.graph.build_graph`.
    """
    import keras
    from keras import layers

    def depthwise_init():
        # He init counts fan-in as K*K*C for a depthwise kernel of shape (K, K, C, 1);
        # each output only sees K*K inputs, which is the kernel's "fan-out" here.  A new
        # instance per layer: a shared unseeded Keras 3 initializer repeats its values.
        return keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")

    def act(x, name):
        if arch.activation == "relu6":
            return layers.ReLU(max_value=6.0, name=name)(x)
        return layers.ReLU(name=name)(x)

    def bn(x, name):
        return layers.BatchNormalization(momentum=bn_momentum, epsilon=BN_EPSILON, name=name)(x)

    def conv(x, filters, kernel, stride, name, activate=True):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name=name)(x)
        x = bn(x, f"{name}_bn")
        return act(x, f"{name}_act") if activate else x

    def depthwise(x, kernel, stride, name):
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                   depthwise_initializer=depthwise_init(), name=name)(x)
        return act(bn(x, f"{name}_bn"), f"{name}_act")

    inputs = keras.Input(shape=(arch.resolution, arch.resolution, arch.in_channels), batch_size=batch_size,
                         name="image")
    x = inputs
    index = 0
    for block in arch.blocks:
        for blk in block.expanded():
            index += 1
            name = f"b{index}"
            if blk.kind == "cv":
                x = conv(x, blk.channels, blk.kernel, blk.stride, name)
            elif blk.kind == "ds":
                x = depthwise(x, blk.kernel, blk.stride, f"{name}_dw")
                x = conv(x, blk.channels, 1, 1, f"{name}_pw")
            else:
                cin = x.shape[-1]
                y = conv(x, cin * blk.expand, 1, 1, f"{name}_expand") if blk.expand > 1 else x
                y = depthwise(y, blk.kernel, blk.stride, f"{name}_dw")
                y = conv(y, blk.channels, 1, 1, f"{name}_project", activate=False)
                if blk.skip and blk.stride == 1 and cin == blk.channels:
                    y = layers.Add(name=f"{name}_add")([x, y])
                x = y
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(arch.classes, name="classifier")(x)
    outputs = layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, outputs, name="mcunas")
