"""Build the small models of tests/data/tflite that check the arena model's control flow,
resource variables, BATCH_MATMUL, LSTM and float reduce rules (TensorFlow converter, no training:
the arena does not depend on weight values).

Run from the repository root; writes into tests/data/tflite by default::

    python tests/bench/build_control_flow_models.py [--out tests/data/tflite]

* ``resource_variable_float.tflite``: a streaming state in a ``tf.Variable`` (VAR_HANDLE,
  READ_VARIABLE, ASSIGN_VARIABLE, and a CALL_ONCE init subgraph that assigns its initial value),
  the pattern of microWakeWord's streaming models;
* ``batch_matmul_float.tflite``: BATCH_MATMUL of two activations (TFLM keeps a transposed copy
  of the right-hand operand in the tail);
* ``if_float.tflite``: ``tf.cond`` -> IF with two branch subgraphs (planned inside the IF's scope);
* ``lstm_float.tflite``, ``lstm_int8.tflite``, ``lstm_16x8.tflite``: a tf_keras LSTM of 16 cells
  over 8 steps of 5 features, then FC: one fused UNIDIRECTIONAL_SEQUENCE_LSTM (float32; int8 with
  an int16 cell state; int16 activations through the MLIR quantizer, see build_replica_models);
* ``sum_float.tflite``: a float32 SUM over the last axis (two scratch requests, not int8's three).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def resource_variable(tf):
    class Stateful(tf.Module):
        def __init__(self):
            self.state = tf.Variable(tf.zeros((1, 8)), trainable=False)
            self.w = tf.constant(np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8))

        @tf.function(input_signature=[tf.TensorSpec((1, 8), tf.float32)])
        def __call__(self, x):
            y = tf.matmul(x + self.state, self.w)
            self.state.assign(y)
            return tf.nn.relu(y)

    module = Stateful()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    converter.experimental_enable_resource_variables = True
    return converter.convert()


def batch_matmul(tf):
    @tf.function(input_signature=[tf.TensorSpec((1, 4, 6), tf.float32), tf.TensorSpec((1, 6, 5), tf.float32)])
    def matmul(a, b):
        return tf.matmul(a, b)

    return tf.lite.TFLiteConverter.from_concrete_functions([matmul.get_concrete_function()]).convert()


def if_branches(tf):
    @tf.function(input_signature=[tf.TensorSpec((1, 16), tf.float32)])
    def cond(x):
        return tf.cond(tf.reduce_sum(x) > 0, lambda: tf.nn.relu(x) * 2.0, lambda: tf.tanh(x) - 1.0)

    return tf.lite.TFLiteConverter.from_concrete_functions([cond.get_concrete_function()]).convert()


def lstm(tf, mode):
    """float, int8 or int16_mlir, converted as build_replica_models converts its LSTM replicas."""
    import tf_keras
    from build_replica_models import convert

    tf_keras.utils.set_random_seed(0)
    inp = tf_keras.Input((8, 5), batch_size=1)
    return convert(tf_keras.Model(inp, tf_keras.layers.Dense(3)(tf_keras.layers.LSTM(16)(inp))), mode)


def reduce_sum(tf):
    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 6), tf.float32)])
    def total(x):
        return tf.reduce_sum(x, axis=[3])

    return tf.lite.TFLiteConverter.from_concrete_functions([total.get_concrete_function()], total).convert()


BUILDERS = {"resource_variable_float": resource_variable, "batch_matmul_float": batch_matmul,
            "if_float": if_branches, "lstm_float": lambda tf: lstm(tf, "float"), "lstm_int8": lambda tf: lstm(tf, "int8"),
            "lstm_16x8": lambda tf: lstm(tf, "int16_mlir"),
            "sum_float": reduce_sum}


def main(argv=None) -> int:
    import tensorflow as tf

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tests/data/tflite")
    ap.add_argument("--only", action="append", help="model name(s) to build (default: all)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        if args.only and name not in args.only:
            continue
        data = build(tf)
        (out / f"{name}.tflite").write_bytes(data)
        print(f"{name}.tflite {len(data)} B")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
