"""Quantisation-aware fine-tuning (QAT) in Keras 3, exported through the normal int8 path.

The VWW paper ends its recipe with int8 quantisation-aware training at
learning rate 1e-5, decayed ×0.9 per epoch.  :func:`qat_finetune` does that
for a trained mcunas model (:func:`mcunas.keras_model.build_keras_model`):

* it builds a **fake-quantised twin** of the model that *shares its layers*
  (so its variables): every Conv2D/DepthwiseConv2D is fused with its
  BatchNormalization exactly as the TFLite converter fuses them (kernel ×
  γ/√(σ²+ε), bias β − μ·γ/√(σ²+ε), moving statistics frozen), and the fused
  kernel — and the Dense kernel — pass through per-output-channel symmetric
  8-bit fake quantisation (scale max|w|/127, the converter's weight
  quantisation); every tensor the int8 model stores (ReLU outputs, linear
  projection outputs, Add, global-average-pool and logits) passes through
  8-bit fake quantisation with the range that tensor will get in the export;
  gradients go straight through the rounding (``keras.quantizers.
  fake_quant_with_min_max_vars``, which on TensorFlow is
  ``tf.quantization.fake_quant_with_min_max_vars[_per_channel]``);
* the activation ranges are not learned or averaged: at the start of every
  epoch they are set to the min/max of each tensor over the **same
  calibration images** :func:`mcunas.export.tflite.convert_int8` uses, which
  is how the converter sets them (plus one converter rule found by
  measurement: a linear projection feeding only a residual Add gets the
  union of its range and the Add's).  Every activation scale and weight
  scale the twin uses equals the export's to 1e-5 (tests/test_qat.py), so
  the twin trains against the quantisation the exported model will have.
  Only the integer arithmetic's rounding is not reproduced bit for bit:
  early layers agree to a fraction of one step, deep ones by a few steps;
* it returns the model itself with fine-tuned float weights, which load into
  the batch-1 export model and go through the unchanged ``convert_int8``:
  the exported graph (ops, tensor shapes, file size, arena) is the one the
  cost model predicts, because it is built by the same code from the same
  layers.

Why not tensorflow-model-optimization: its ``quantize_model`` only accepts
tf-keras (Keras 2) models, so it needs tf-keras and tfmot in the
environment (tfmot 0.8.1 pins absl-py ~= 1.2, a downgrade from the installed
2.5.1; 0.8.0 also pins numpy ~= 1.23), sets ``TF_USE_LEGACY_KERAS=1``
for the whole process on import, needs a second, Keras 2 copy of the
architecture builder, and learns the input's range instead of pinning it
to mcunas' 1/255, -128.  It does work with TF 2.21 (same op list, file
0.8 % smaller from other tensor names), but this route needs no new
dependency, keeps one builder and exports through the one converter call.

Why BatchNorm is frozen: fine-tuning at 1e-5 barely moves the weights, and
with the moving statistics fixed the twin computes exactly the function the
converter folds; batch statistics would make every training step quantise a
kernel the export never sees.

Why RMSProp with epsilon 1.0: the paper's optimiser (decay 0.9, momentum
0.9) with the epsilon of the TF-slim scripts the ``paper`` recipe uses.

TensorFlow/Keras is imported inside functions.
"""

from __future__ import annotations

import collections
import functools
import types

import numpy as np

QAT_LEARNING_RATE = 1e-5  # the paper's QAT rate
QAT_DECAY_PER_EPOCH = 0.9  # the paper's per-epoch decay
RMSPROP_EPSILON = 1.0  # as the `paper` recipe (TF-slim's MobileNet scripts)
CALIBRATION_BATCH = 32  # images per forward pass when measuring activation ranges


def qat_finetune(model, train_ds, calibration_images: np.ndarray, epochs: int, steps_per_epoch: int,
                 on_epoch=None):
    """Fine-tune a trained mcunas model quantisation-aware; returns ``model`` (its weights changed in place).

    ``model``: a trained :func:`~mcunas.keras_model.build_keras_model` model
    (any batch size); its weights load into the batch-1 export model as
    before.  ``train_ds``: a ``tf.data`` training set (float [0, 1] images,
    int labels), one epoch per iteration.  ``calibration_images``: uint8
    N×H×W×C, the images that will be passed to ``convert_int8``.
    ``on_epoch(epoch, loss)`` is called after every epoch.
    """
    import keras

    twin, ranges = build_qat_twin(model)

    class _Calibrate(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            calibrate(model, ranges, calibration_images)

        def on_epoch_end(self, epoch, logs=None):
            if on_epoch:
                on_epoch(epoch + 1, float(logs["loss"]))

    schedule = keras.optimizers.schedules.ExponentialDecay(
        QAT_LEARNING_RATE, decay_steps=steps_per_epoch, decay_rate=QAT_DECAY_PER_EPOCH, staircase=True)
    optimizer = keras.optimizers.RMSprop(schedule, rho=0.9, momentum=0.9, epsilon=RMSPROP_EPSILON)
    twin.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    twin.fit(train_ds, epochs=epochs, verbose=0, callbacks=[_Calibrate()], shuffle=False)  # the dataset shuffles
    return model


def calibrate(model, ranges: dict, calibration_images: np.ndarray) -> None:
    """Set each fake quantisation's range to what the converter gives its tensor for these images.

    That is the tensor's min/max over the images in the float ``model``
    (BatchNorm in inference mode), widened to include 0 — and, for a linear
    projection whose only consumer is a residual Add, widened to the Add's
    range as well (the TF 2.21 converter does that; measured, see
    tests/test_qat.py).  ``ranges`` is the second value of :func:`build_qat_twin`.
    """
    import keras
    from keras import ops

    from mcunas.export.tflite import preprocess

    names = list(ranges)
    extremes = []  # per image, so predict() keeps only two numbers per image and tensor
    for name in names:
        tensor = model.get_layer(name).output
        axes = tuple(range(1, len(tensor.shape)))
        extremes += [ops.min(tensor, axis=axes), ops.max(tensor, axis=axes)]
    probe = keras.Model(model.inputs, extremes)
    outputs = probe.predict(preprocess(calibration_images), batch_size=CALIBRATION_BATCH, verbose=0)
    low = {name: min(0.0, float(np.min(outputs[2 * i]))) for i, name in enumerate(names)}
    high = {name: max(0.0, float(np.max(outputs[2 * i + 1]))) for i, name in enumerate(names)}
    for name, (low_var, high_var, joined) in ranges.items():
        low_var.assign(min(low[n] for n in (name, *joined)))
        high_var.assign(max(high[n] for n in (name, *joined)))


def build_qat_twin(model):
    """The fake-quantised twin of ``model`` sharing its layers, and its activation ranges.

    Returns ``(twin, ranges)``: ``ranges`` maps the name of each layer of
    ``model`` whose output the int8 model stores to the ``(min, max)``
    variables of its fake quantisation and the names of the layers whose
    range the converter merges into it (set them with :func:`calibrate`
    before using the twin).
    Raises ValueError for a layer type the converter's fusion is not
    reproduced for here.
    """
    import keras
    from keras import layers

    known = (layers.InputLayer, layers.Conv2D, layers.DepthwiseConv2D, layers.BatchNormalization, layers.ReLU,
             layers.Add, layers.GlobalAveragePooling2D, layers.Dense, layers.Softmax)
    unknown = [layer.name for layer in model.layers if not isinstance(layer, known)]
    if unknown:
        raise ValueError(f"quantisation-aware fine-tuning does not handle layers {unknown}")
    qat_layers = _qat_layers()
    producer = {id(layer.output): layer for layer in model.layers}
    bn_of = {producer[id(layer.input)].name: layer for layer in model.layers
             if isinstance(layer, layers.BatchNormalization)}
    relu_inputs = {id(layer.input) for layer in model.layers if isinstance(layer, layers.ReLU)}
    uses = collections.Counter(id(t) for layer in model.layers for t in _inputs(layer))
    merged_into = {producer[id(t)].name: layer.name for layer in model.layers if isinstance(layer, layers.Add)
                   for t in layer.input if uses[id(t)] == 1}  # single-use Add operand -> the Add
    ranges = {}

    def stored(layer, tensor):
        """``tensor`` (the output of ``layer``) as the int8 model stores it."""
        quantise = qat_layers.ActivationFakeQuant(name=f"{layer.name}_fq")
        out = quantise(tensor)
        joined = (merged_into[layer.name],) if layer.name in merged_into else ()
        ranges[layer.name] = (quantise.low, quantise.high, joined)
        return out

    def call(layer, *args, **kwargs):
        if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            return qat_layers.FusedConvFakeQuant(layer, bn_of[layer.name], name=f"{layer.name}_qat")(*args)
        if isinstance(layer, layers.BatchNormalization):
            # already applied by the fused conv; stored only when no ReLU is fused after it
            return args[0] if id(layer.output) in relu_inputs else stored(layer, args[0])
        if isinstance(layer, layers.Dense):
            return stored(layer, qat_layers.DenseFakeQuant(layer, name=f"{layer.name}_qat")(*args))
        out = layer(*args, **kwargs)
        if isinstance(layer, (layers.ReLU, layers.Add, layers.GlobalAveragePooling2D)):
            return stored(layer, out)
        return out  # Softmax: its int8 output has a fixed scale, and the loss wants probabilities

    twin = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    return twin, ranges


def _inputs(layer) -> list:
    """The KerasTensors a layer of a functional model takes (none for the input layer)."""
    from keras import layers

    if isinstance(layer, layers.InputLayer):
        return []
    return layer.input if isinstance(layer.input, list) else [layer.input]


def _fake_quant_weights(kernel, axis: int):
    """Per-channel symmetric int8 fake quantisation along ``axis``: TFLite's (scale max|w|/127, zero point 0)."""
    import keras
    from keras import ops

    reduce = [i for i in range(len(kernel.shape)) if i != axis]
    bound = ops.stop_gradient(ops.maximum(ops.max(ops.abs(kernel), axis=reduce), 1e-12))
    return keras.quantizers.fake_quant_with_min_max_vars(kernel, -bound, bound, num_bits=8, narrow_range=True,
                                                         axis=axis)


@functools.cache
def _qat_layers():
    """The twin's layer classes (defined on first use: Keras is imported lazily)."""
    import keras
    from keras import layers, ops

    class FusedConvFakeQuant(layers.Layer):
        """A conv and its BatchNormalization fused as the converter fuses them, kernel fake-quantised.

        Uses the conv's kernel and the BatchNorm's γ, β and moving statistics
        (frozen: the layer never updates them), so training it trains them.
        """

        def __init__(self, conv, bn, **kwargs):
            super().__init__(**kwargs)
            self.conv, self.bn = conv, bn

        def call(self, x):
            conv, bn = self.conv, self.bn
            scale = bn.gamma * ops.rsqrt(bn.moving_variance + bn.epsilon)
            bias = bn.beta - bn.moving_mean * scale
            options = dict(strides=conv.strides, padding=conv.padding, dilation_rate=conv.dilation_rate,
                           data_format=conv.data_format)
            if isinstance(conv, layers.DepthwiseConv2D):
                k, _, c, m = conv.kernel.shape  # output channel c*m + j is (c, j)
                kernel = ops.reshape(conv.kernel, (k, k, c * m)) * scale
                kernel = ops.reshape(_fake_quant_weights(kernel, axis=2), (k, k, c, m))
                return ops.depthwise_conv(x, kernel, **options) + bias
            return ops.conv(x, _fake_quant_weights(conv.kernel * scale, axis=3), **options) + bias

    class DenseFakeQuant(layers.Layer):
        """A Dense layer with its kernel fake-quantised per output unit (the converter's FULLY_CONNECTED)."""

        def __init__(self, dense, **kwargs):
            super().__init__(**kwargs)
            self.dense = dense

        def call(self, x):
            return ops.matmul(x, _fake_quant_weights(self.dense.kernel, axis=1)) + self.dense.bias

    class ActivationFakeQuant(layers.Layer):
        """8-bit asymmetric fake quantisation with a fixed range (set from calibration, not trained)."""

        def build(self, input_shape):
            self.low = self.add_weight(shape=(), initializer="zeros", trainable=False, name="low")
            self.high = self.add_weight(shape=(), initializer="ones", trainable=False, name="high")

        def call(self, x):
            return keras.quantizers.fake_quant_with_min_max_vars(x, self.low, self.high, num_bits=8)

    return types.SimpleNamespace(FusedConvFakeQuant=FusedConvFakeQuant, DenseFakeQuant=DenseFakeQuant,
                                 ActivationFakeQuant=ActivationFakeQuant)
