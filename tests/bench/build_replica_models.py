"""Build the replica models of ``mcunas bench fidelity --tflite``: published MCU architectures
of kinds the public C arrays do not cover, converted here with TensorFlow (untrained weights,
random calibration data — the arena does not depend on weight values).

Run from the repository root; writes ``build/fidelity_models/replica_*.tflite`` (ignored by git)::

    python tests/bench/build_replica_models.py [--out build/fidelity_models] [--only NAME]

Each builder names the architecture's source.  Quantisation modes:
``float`` (float32, no quantisation), ``int8`` (full integer, int8 input/output), ``float_io`` (int8 core, float input and output:
QUANTIZE/DEQUANTIZE at the edges), ``uint8_io`` (uint8 input/output), ``int16`` (16x8: int16
activations, int8 weights), ``int16_mlir`` (16x8 through the MLIR quantizer, for the LSTM).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _layers():
    import tensorflow as tf

    return tf.keras.layers


def ad_autoencoder(units=128, code=8, inputs=640):
    """MLPerf Tiny anomaly detection (ToyADMOS) FC autoencoder: 640-128x4-8-128x4-640
    (mlcommons/tiny, benchmark/training/anomaly_detection/keras_model.py)."""
    import tensorflow as tf
    L = _layers()
    x = inp = tf.keras.Input((inputs,), batch_size=1)
    for n in (units,) * 4 + (code,) + (units,) * 4:
        x = L.Dense(n)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
    return tf.keras.Model(inp, L.Dense(inputs)(x))


def ds_cnn_kws(filters=64, blocks=4, classes=12):
    """MLPerf Tiny keyword spotting DS-CNN (mlcommons/tiny, keyword_spotting/keras_model.py;
    Zhang et al. 2017 'Hello Edge'): 49x10 MFCC, conv 10x4 s2, 4 depthwise-separable blocks,
    average pool, FC, softmax."""
    import tensorflow as tf
    L = _layers()
    inp = tf.keras.Input((49, 10, 1), batch_size=1)
    x = L.Conv2D(filters, (10, 4), strides=2, padding="same", use_bias=False)(inp)
    x = L.ReLU()(L.BatchNormalization()(x))
    for _ in range(blocks):
        x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
        x = L.Conv2D(filters, 1, use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
    x = L.AveragePooling2D(pool_size=x.shape[1:3])(x)
    x = L.Flatten()(x)
    return tf.keras.Model(inp, L.Softmax()(L.Dense(classes)(x)))


def resnet8(classes=10):
    """MLPerf Tiny image classification ResNet-8 on CIFAR-10 (mlcommons/tiny,
    image_classification/keras_model.py): 16/32/64 filters, 1x1 projection shortcuts."""
    import tensorflow as tf
    L = _layers()
    inp = tf.keras.Input((32, 32, 3), batch_size=1)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same")(inp)))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(filters, 3, strides=stride, padding="same")(x)))
        y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same")(y))
        if stride > 1:
            x = L.Conv2D(filters, 1, strides=stride)(x)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.AveragePooling2D(pool_size=x.shape[1:3])(x)
    return tf.keras.Model(inp, L.Softmax()(L.Dense(classes)(L.Flatten()(x))))


def lstm_kws(units=64, classes=12, layers=1):
    """LSTM keyword spotting (Zhang et al. 2017 'Hello Edge', LSTM-S: one LSTM layer of 64 cells
    over 49 MFCC frames, then FC).  Built with tf_keras (Keras 2): the converter fuses its LSTM
    into one UNIDIRECTIONAL_SEQUENCE_LSTM; a Keras 3 LSTM becomes a WHILE loop instead."""
    import tf_keras

    L = tf_keras.layers
    x = inp = tf_keras.Input((49, 10), batch_size=1)
    for i in range(layers):
        x = L.LSTM(units, return_sequences=i < layers - 1)(x)
    return tf_keras.Model(inp, L.Softmax()(L.Dense(classes)(x)))


def magic_wand(classes=4):
    """TFLM magic_wand gesture CNN (tensorflow/tflite-micro examples/magic_wand/train/train.py):
    128x3 accelerometer window, conv 8 4x3 + maxpool 3, conv 16 4x1 + maxpool 3x1, FC 16, FC 4."""
    import tensorflow as tf
    L = _layers()
    inp = tf.keras.Input((128, 3, 1), batch_size=1)
    x = L.Conv2D(8, (4, 3), padding="same", activation="relu")(inp)
    x = L.MaxPool2D((3, 3))(x)
    x = L.Conv2D(16, (4, 1), padding="same", activation="relu")(x)
    x = L.MaxPool2D((3, 1), padding="same")(x)
    x = L.Dense(16, activation="relu")(L.Flatten()(x))
    return tf.keras.Model(inp, L.Softmax()(L.Dense(classes)(x)))


def sine_mlp():
    """TFLM hello_world sine model (examples/hello_world/train.py): 1-16-16-1 MLP."""
    import tensorflow as tf
    L = _layers()
    inp = tf.keras.Input((1,), batch_size=1)
    x = L.Dense(16, activation="relu")(inp)
    x = L.Dense(16, activation="relu")(x)
    return tf.keras.Model(inp, L.Dense(1)(x))


def mobilenet_v3_block(res=64, classes=3):
    """MobileNetV3 (Howard et al. 2019) small-style stem and bottlenecks with hard-swish,
    squeeze-and-excite (MEAN, FC, RELU, hard-sigmoid, MUL) and a sigmoid head (LOGISTIC)."""
    import tensorflow as tf
    L = _layers()
    inp = tf.keras.Input((res, res, 3), batch_size=1)
    x = L.Activation("hard_swish")(L.Conv2D(16, 3, strides=2, padding="same")(inp))
    for expand, out, stride in ((32, 16, 2), (48, 24, 2)):
        y = L.Activation("hard_swish")(L.Conv2D(expand, 1)(x))
        y = L.Activation("hard_swish")(L.DepthwiseConv2D(3, strides=stride, padding="same")(y))
        s = L.GlobalAveragePooling2D(keepdims=True)(y)
        s = L.Conv2D(8, 1, activation="relu")(s)
        s = L.Activation("hard_sigmoid")(L.Conv2D(expand, 1)(s))
        y = L.Multiply()([y, s])
        x = L.Conv2D(out, 1)(y)
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, L.Activation("sigmoid")(L.Dense(classes)(x)))


def branchy_cnn(res=32):
    """Ops the MobileNet family never emits (ShuffleNet-style channel split/concat and
    transpose, explicit padding, slicing, max pool, tanh): PAD, SPLIT, CONCATENATION,
    TRANSPOSE, STRIDED_SLICE, MAX_POOL_2D, TANH, RESHAPE."""
    import tensorflow as tf
    L = _layers()
    inp = tf.keras.Input((res, res, 8), batch_size=1)
    x = L.ZeroPadding2D(1)(inp)
    x = L.Conv2D(16, 3, activation="relu")(x)
    a, b = L.Lambda(lambda t: tf.split(t, 2, axis=-1))(x)
    b = L.Conv2D(8, 1, activation="relu")(b)
    x = L.Concatenate()([a, b])
    x = L.Reshape((res, res, 2, 8))(x)
    x = L.Permute((1, 2, 4, 3))(x)  # ShuffleNet channel shuffle
    x = L.Reshape((res, res, 16))(x)
    x = L.MaxPool2D(2)(x)
    x = L.Lambda(lambda t: t[:, 2:-2, 2:-2, :])(x)
    x = L.Activation("tanh")(L.Conv2D(8, 3, strides=2)(x))
    return tf.keras.Model(inp, L.Dense(4)(L.Flatten()(x)))


def mlp_classifier(inputs=64, hidden=(256, 256), classes=100):
    """An FC-heavy classifier head (several FULLY_CONNECTED + SOFTMAX)."""
    import tensorflow as tf
    L = _layers()
    x = inp = tf.keras.Input((inputs,), batch_size=1)
    for n in hidden:
        x = L.Dense(n, activation="relu")(x)
    return tf.keras.Model(inp, L.Softmax()(L.Dense(classes)(x)))


def tiny_conv_speech():
    """TFLM micro_speech 'tiny_conv' (tensorflow/tensorflow speech_commands models.py):
    49x40 spectrogram, conv 8 10x8 s2 + relu, FC 4, softmax."""
    import tensorflow as tf
    L = _layers()
    inp = tf.keras.Input((49, 40, 1), batch_size=1)
    x = L.Conv2D(8, (10, 8), strides=2, padding="same", activation="relu")(inp)
    return tf.keras.Model(inp, L.Softmax()(L.Dense(4)(L.Flatten()(x))))


def open_batch_cnn():
    """A CNN converted with an open batch dimension: the converter keeps SHAPE,
    STRIDED_SLICE and PACK to rebuild the Flatten shape at run time."""
    import tensorflow as tf
    L = _layers()
    inp = tf.keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = L.Reshape((-1,))(x)
    return tf.keras.Model(inp, L.Dense(5)(x))


def single_op(op: str):
    """One op between an int8 input and output: isolates each kernel's persistent and
    temporary allocations (the op-coverage rows of the fidelity table)."""
    import tensorflow as tf
    L = _layers()
    shape = {"fc": (24,), "softmax": (10,), "logistic": (10,), "tanh": (10,)}.get(op, (8, 8, 6))
    inp = tf.keras.Input(shape, batch_size=1)
    if op in ("add", "mul"):
        other = tf.keras.Input(shape, batch_size=1)
        layer = L.Add() if op == "add" else L.Multiply()
        return tf.keras.Model([inp, other], layer([inp, other]))
    out = {
        "conv": lambda x: L.Conv2D(5, 3)(x),
        "dwconv": lambda x: L.DepthwiseConv2D(3)(x),
        "fc": lambda x: L.Dense(7)(x),
        "mean": lambda x: L.GlobalAveragePooling2D()(x),
        "sum": lambda x: L.Lambda(lambda t: tf.reduce_sum(t, axis=-1))(x),
        "reduce_max": lambda x: L.Lambda(lambda t: tf.reduce_max(t, axis=1))(x),
        "avgpool": lambda x: L.AveragePooling2D(2)(x),
        "maxpool": lambda x: L.MaxPool2D(2)(x),
        "pad": lambda x: L.ZeroPadding2D(1)(x),
        "reshape": lambda x: L.Reshape((48, 8))(x),
        "softmax": lambda x: L.Softmax()(x),
        "logistic": lambda x: L.Activation("sigmoid")(x),
        "tanh": lambda x: L.Activation("tanh")(x),
        "concat": lambda x: L.Concatenate()([x, L.ReLU()(x)]),
        "split": lambda x: L.Concatenate()(L.Lambda(lambda t: list(tf.split(t, 2, axis=-1)))(x)[::-1]),
        "strided_slice": lambda x: L.Lambda(lambda t: t[:, 1:-1, ::2, :])(x),
        "transpose": lambda x: L.Permute((2, 1, 3))(x),
        "hard_swish": lambda x: L.Activation("hard_swish")(x),
        "relu": lambda x: L.ReLU()(x),
        "relu6": lambda x: L.ReLU(6.0)(x),
    }[op](inp)
    return tf.keras.Model(inp, out)


SINGLE_OPS = ("conv", "dwconv", "fc", "add", "mul", "mean", "sum", "reduce_max", "avgpool", "maxpool", "pad", "reshape", "softmax",
              "logistic", "tanh", "concat", "split", "strided_slice", "transpose", "hard_swish", "relu", "relu6")

REDUCE_OPS = ("mean", "sum", "reduce_max")

MODELS = {
    "ad_autoencoder": (ad_autoencoder, {}, ("int8", "float_io", "int16")),
    "ds_cnn_kws": (ds_cnn_kws, {}, ("int8", "uint8_io", "float_io", "int16")),
    "resnet8": (resnet8, {}, ("int8", "float_io")),
    # int16: TF 2.21 refuses ("Quantization to 16x8-bit not yet supported for op:
    # 'UNIDIRECTIONAL_SEQUENCE_LSTM'"), so that row is skipped with the converter's message;
    # int16_mlir gets a 16x8 LSTM another way (see convert)
    "lstm_kws": (lstm_kws, {}, ("float", "int8", "int16", "int16_mlir")),
    "lstm_stack": (lstm_kws, {"units": 32, "layers": 2}, ("float", "int8")),
    "magic_wand": (magic_wand, {}, ("int8", "float_io")),
    "sine_mlp": (sine_mlp, {}, ("int8", "float_io", "int16")),
    "mobilenet_v3_block": (mobilenet_v3_block, {}, ("int8", "float_io")),
    "branchy_cnn": (branchy_cnn, {}, ("int8", "float_io", "int16")),
    "mlp_classifier": (mlp_classifier, {}, ("int8", "float_io", "per_tensor_fc")),
    "mlp_c1000": (mlp_classifier, {"inputs": 32, "hidden": (64,), "classes": 1000}, ("int8",)),
    "tiny_conv_speech": (tiny_conv_speech, {}, ("int8", "uint8_io")),
    "open_batch_cnn": (open_batch_cnn, {}, ("int8", "float_io")),
    # the reduces also in float32: their scratch requests differ by type (tflm_kernels._reduce_scratch);
    # int16 REDUCE_MAX converts but TFLM fails to invoke it
    **{f"op_{op}": (single_op, {"op": op}, (("float",) if op in REDUCE_OPS else ()) +
                    (("int8",) if op == "reduce_max" else ("int8", "int16"))) for op in SINGLE_OPS},
}


# Hand-written mcunas architectures from issue 14 (exported the way `mcunas export` does).
MCUNAS_ARCHS = {
    "mcunas_wide_last_stage_r32": "in_r32_c3-cv_k3_s2_c16-ds_k3_s2_c64-cv_k1_s1_c4096-gap-fc_c10",
    "mcunas_fc_c100_r32": "in_r32_c3-cv_k3_s2_c8-ds_k3_s2_c32-gap-fc_c100",
    "mcunas_mbv2_r48": "in_r48_c3-cv_k3_s2_c8-ir_k3_s1_e1_c8-ir_r2_k3_s2_e6_c16-ir_k3_s2_e6_c24-gap-fc_c2",
}


def build_mcunas_archs(out: Path) -> None:
    from mcunas.arch import parse_arch
    from mcunas.export.bundle import build_model
    from mcunas.export.tflite import convert_int8

    for name, arch in MCUNAS_ARCHS.items():
        path = out / f"{name}.tflite"
        path.write_bytes(convert_int8(build_model(parse_arch(arch))))
        print(f"wrote {path} ({path.stat().st_size:,} B)", flush=True)


def convert(model, mode: str, seed: int = 0) -> bytes:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    shapes = [[1, *t.shape[1:]] for t in model.inputs]

    def representative():
        for _ in range(16):
            yield [rng.uniform(-1, 1, shape).astype("float32") for shape in shapes]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float":
        return bytes(converter.convert())
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    if mode == "int16_mlir":
        # 16x8 through the MLIR quantizer, which the public API never picks for int16 (it calls the
        # legacy calibrator, which refuses UNIDIRECTIONAL_SEQUENCE_LSTM): calibrate only, then
        # quantize the calibrated model with int16 activations.  Its LSTM biases come out int32
        # where TFLM's 16x8 LSTM reads int64, so the file loads and runs (its arena is real) but
        # its numbers are not to be trusted.
        from tensorflow.compiler.mlir.lite import types_pb2
        from tensorflow.lite.python.convert import mlir_quantize

        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter._experimental_calibrate_only = True
        return bytes(mlir_quantize(converter.convert(), fully_quantize=True,
                                   inference_type=types_pb2.QUANTIZED_INT16))
    if mode == "int16":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode in ("int8", "per_tensor_fc"):
            converter.inference_input_type = converter.inference_output_type = tf.int8
        elif mode == "uint8_io":
            converter.inference_input_type = converter.inference_output_type = tf.uint8
    if mode == "per_tensor_fc":
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    return bytes(converter.convert())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/fidelity_models")
    p.add_argument("--only", action="append", help="builder name(s); 'mcunas' for the mcunas architectures")
    args = p.parse_args()
    import tensorflow as tf

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.only or "mcunas" in args.only:
        build_mcunas_archs(out)
    for name, (builder, kwargs, modes) in MODELS.items():
        if args.only and name not in args.only:
            continue
        for mode in modes:
            tf.keras.utils.set_random_seed(0)
            path = out / f"replica_{name}_{mode}.tflite"
            try:
                path.write_bytes(convert(builder(**kwargs), mode))
                print(f"wrote {path} ({path.stat().st_size:,} B)", flush=True)
            except Exception as exc:  # a mode the converter cannot do for this graph
                print(f"skipped {path.name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                      flush=True)


if __name__ == "__main__":
    main()
