"""Full-integer int8 TensorFlow Lite conversion.

**Input convention** (:mod:`mcunas.input_convention`, the same as the MLPerf
Tiny VWW reference model): the Keras model takes float pixels in [0, 1], and
the int8 model's input is ``pixel - 128`` (scale 1/255, zero point -128).
The conversion pins that input range: the calibration
set always reaches 0 and 255 (a real image set almost always does; when it
does not, one frame spanning 0..255 is added to it), so every model mcunas
exports takes the same int8 input.

**Representative data**: real uint8 images (N×H×W×C, N of a few hundred is
plenty) when given.  Otherwise the fallback is seeded uniform-noise images
(:func:`fallback_images`): the model then loads and runs and its file size
and arena are exactly those of the trained model (they depend on shapes,
not values), but its activation ranges are not those of real photos, so
accuracy measured on such a model means nothing.

**Why an untrained model can abort TFLM**: TFLM's int8 SOFTMAX Prepare
computes ``beta * input_scale * 2**26`` and CHECK-fails (SIGABRT, exit 134)
unless it exceeds 1, i.e. unless the softmax input's quantisation scale is
above 2**-26 ≈ 1.49e-8.  With Keras' default initialisers the activations of
an untrained MobileNet shrink layer by layer (``he_normal`` counts a
depthwise kernel's fan-in C times too large), so the logits spanned ~1e-13
and the converter gave the softmax input a scale of 7.8e-9.  The builder now
initialises variance-preservingly (see :mod:`mcunas.keras_model`), and
:func:`convert_int8` refuses — with a UserError naming the scale — any model
whose softmax input scale TFLM would abort on, instead of writing a file
that kills its loader.

**Conversion route**: the model's inference call is traced once and
frozen in memory (``from_concrete_functions`` with
``experimental_lower_to_saved_model = False``), not written out as a
SavedModel and read back twice as ``from_keras_model`` does in TF 2.21 with
Keras 3.  Same ops, tensors, weights and quantisation, and the same outputs
bit for bit (tests/test_export.py); 2-4x faster (mlperf-vww, one process,
load average ~8: 12.0 and 17.8 s against 3.1 and 5.4 s), which was most of a trained candidate's
overhead in the search.  The file differs in three ways the device never
sees: the input tensor is named ``image`` and the output ``Identity`` (not
``serving_default_image:0`` and ``StatefulPartitionedCall_1:0``), and there
is no ``serving_default`` signature (TFLM does not read signatures; tensors
are found by index).  The cost model (:mod:`mcunas.cost.tflite_graph`,
:mod:`mcunas.cost.tflite_size`) predicts this file.  Every export and every
search measurement goes through :func:`convert_int8`.

TensorFlow is imported inside the functions (it costs ~2.5 s).  The
converter is ``tf.lite.TFLiteConverter``, which is still what TF 2.21 ships
for *conversion*; only its interpreter moved to ``ai-edge-litert``, and
mcunas runs models in TFLM, not in either interpreter.
"""

from __future__ import annotations

import warnings

import numpy as np

from mcunas.errors import UserError
from mcunas.input_convention import preprocess
from mcunas.quiet import native_output_captured

FALLBACK_IMAGES = 32


def fallback_images(shape: tuple[int, int, int], n: int = FALLBACK_IMAGES, seed: int = 0) -> np.ndarray:
    """Seeded uniform-noise uint8 images of ``shape`` (H, W, C), for calibration without data."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def prepare_untrained(model, seed: int = 0) -> None:
    """Give an *untrained* model trained-looking BatchNorm and classifier-bias values.

    Fresh BatchNorm layers hold offset 0 and mean 0, so every folded conv
    bias is zero, and a fresh Dense bias is zero too.  The converter then
    stores one shared buffer for all biases of the same length and drops the
    classifier bias altogether, so an untrained file is smaller than the
    trained model's (by up to 10 % measured here) and useless for checking
    the size model.  Even the tensor names depend on it: a variance of
    exactly 1 folds away and shortens every depthwise tensor's name.  So, for
    untrained exports only, each BatchNorm offset and moving mean and the
    classifier bias are drawn from N(0, 0.1) and each BatchNorm scale and
    moving variance from U(0.5, 1.5) (seeded), as a trained network's are
    all different.  Kernels keep their random initial values.

    (Setting the statistics from calibration images instead was tried: with
    the model's batch of 1, a 1×1 feature map has zero variance per image,
    which again makes biases identical.)
    """
    from keras import layers

    rng = np.random.default_rng(seed)

    def draw(variable, around: float = 0.0):
        if around:
            values = rng.uniform(around - 0.5, around + 0.5, size=variable.shape)
        else:
            values = rng.normal(0.0, 0.1, size=variable.shape)
        variable.assign(values.astype(np.float32))

    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            draw(layer.beta)
            draw(layer.moving_mean)
            draw(layer.gamma, 1.0)
            draw(layer.moving_variance, 1.0)
        elif isinstance(layer, layers.Dense):
            draw(layer.bias)


def _pin_input_range(images: np.ndarray) -> np.ndarray:
    """Add one 0..255 frame if the images do not reach both ends (see module doc)."""
    if images.min() == 0 and images.max() == 255:
        return images
    frame = np.zeros((1, *images.shape[1:]), dtype=np.uint8)
    frame.reshape(-1)[::2] = 255
    return np.concatenate([images, frame])


def convert_int8(model, representative_images: np.ndarray | None = None) -> bytes:
    """A Keras model (batch 1, float input in [0, 1]) -> full-int8 ``.tflite`` bytes.

    ``representative_images``: uint8 N×H×W×C calibration images in the
    model's input shape; ``None`` uses :func:`fallback_images`.  Input and
    output are int8; every op is an int8 builtin (conversion fails rather
    than leaving a float op behind).
    """
    import tensorflow as tf

    shape = tuple(model.input_shape[1:])
    images = fallback_images(shape) if representative_images is None else np.asarray(representative_images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != shape:
        raise UserError(f"representative images must be uint8 N×{'×'.join(map(str, shape))}, "
                        f"got {images.dtype} {'×'.join(map(str, images.shape))}")
    images = _pin_input_range(images)

    def representative():
        for image in images:
            yield [preprocess(image[None])]

    # The converter prints MLIR lines and "fully_quantize: ..." on C stdout, and warns that int8 input
    # statistics were not given (they come from the representative images): kept out of sight, and shown
    # if it fails (mcunas.quiet).
    with native_output_captured(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        converter = _frozen_graph_converter(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        data = bytes(converter.convert())
    check_tflm_loadable(data)
    return data


def _frozen_graph_converter(model):
    """A converter for ``model``'s inference call, frozen in memory (see module doc, **Conversion route**).

    The input is named ``image`` (the Keras input's name); the output gets
    the traced function's ``Identity``.
    """
    import tensorflow as tf

    call = tf.function(lambda image: model(image, training=False))
    spec = tf.TensorSpec(model.inputs[0].shape, tf.float32, name="image")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([call.get_concrete_function(spec)], model)
    converter.experimental_lower_to_saved_model = False
    return converter


def check_tflm_loadable(data: bytes) -> None:
    """Raise UserError if TFLM's int8 SOFTMAX would abort on this model (see module doc)."""
    from mcunas.tflm import softmax_abort_reason

    reason = softmax_abort_reason(data)
    if reason:
        raise UserError(f"refusing to write a model TFLM cannot load: {reason}. "
                        "Train the model, or calibrate with real images (--data)")
