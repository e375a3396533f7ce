"""Predict the size in bytes of the ``.tflite`` file mcunas exports for an arch.

The file is a flatbuffer.  Most of it is exact arithmetic on the synthesised
structure (:mod:`mcunas.cost.tflite_graph`):

* every constant's data (int8 weights, int32 biases), padded to 4 bytes;
* every tensor's name (the converter's fused-op names, often 100-200
  characters, a real share of a small model's flash), with its length
  prefix and terminator, padded to 4;
* per quantisation channel 12 bytes: a float32 scale and an int64 zero point
  (weights and biases are quantised per output channel).

The rest — flatbuffer tables, vtables, shape and index vectors, options,
operator codes and metadata — is a linear function of the
structure whose coefficients were fitted by least squares on 14 exported
models (residuals within 24 bytes) and checked on others held out; the
fidelity benchmark (``mcunas bench fidelity``) re-checks it on every run.
Held-out exports came out up to 45 B larger than that fit (a residual
MobileNetV2 at 32 px; 30 B for an MnasNet), so :data:`SAFETY_MARGIN_BYTES`
is added on top: a flash budget must never be judged on a figure below the
file.
"""

from __future__ import annotations

from mcunas.cost.flatbuffer import TfliteModel

# Fitted bytes per: tensor, shape dimension, quantised tensor, operator,
# operator input/output index, constant buffer; plus a fixed part.
PER_TENSOR = 196.4
PER_DIMENSION = -117.5
PER_QUANT_CHANNEL = 12.0
PER_QUANT_TENSOR = 108.5
PER_OPERATOR = 63.1
PER_OPERATOR_IO = 80.1
PER_BUFFER = 45.4
# 87.9 as fitted on files with a serving_default signature; the frozen-graph conversion route
# (mcunas.export.tflite) writes none and names the input and output tensors shorter (32 B less,
# counted exactly above): the same 90 + 30 architectures' files came out 136-152 B smaller, so the
# signature was 104-120 B; 104 less keeps every prediction at least as far above its file as before.
FIXED = 87.9 - 104
# ShuffleNet's ops, fitted on 14 exported ShuffleNetV2 variants (16-48 px, 0-16 basic units, with and
# without max pool; residuals -38..+21 B before the margin) on top of the terms above, which were
# fitted without them and overcharge an op with many inputs (a STRIDED_SLICE has four): per op, and
# once for the three int32[4] constants all slices share.
OP_BYTES = {"STRIDED_SLICE": -151, "CONCATENATION": 8, "MAX_POOL_2D": 82}
SHARED_SLICE_CONSTANTS = -177
# Worst file seen above the fit: 45 B (results/cost_model_fidelity.csv and the QAT exports); rounded up.
SAFETY_MARGIN_BYTES = 64


def _pad4(n: int) -> int:
    return -(-n // 4) * 4


def tflite_bytes(model: TfliteModel) -> int:
    """Predicted file size of the int8 ``.tflite`` for a synthesised model."""
    exact = sum(_pad4(t.nbytes) for t in model.tensors if t.has_data)
    exact += sum(_pad4(len(t.name.encode()) + 1) for t in model.tensors)
    fitted = (PER_TENSOR * len(model.tensors)
              + PER_DIMENSION * sum(len(t.shape) for t in model.tensors)
              + PER_QUANT_CHANNEL * sum(len(t.scale) for t in model.tensors)
              + PER_QUANT_TENSOR * sum(1 for t in model.tensors if t.scale)
              + PER_OPERATOR * len(model.operators)
              + PER_OPERATOR_IO * sum(len(o.inputs) + len(o.outputs) for o in model.operators)
              + PER_BUFFER * sum(1 for t in model.tensors if t.has_data)
              + FIXED)
    fitted += sum(OP_BYTES.get(o.op, 0) for o in model.operators)
    if any(o.op == "STRIDED_SLICE" for o in model.operators):
        fitted += SHARED_SLICE_CONSTANTS
    return exact + round(fitted) + SAFETY_MARGIN_BYTES


# What `mcunas export --memory-plan offline` adds to the converted file (mcunas.export.memory_plan):
# 4 B per tensor offset, plus 72 B: the plan's three header words (version, subgraph count, n) and
# its vector's length prefix (16), its Buffer table (8) and slot in the buffers vector (4), the
# Metadata table (12), its name "OfflineMemoryAllocation" with terminator and length prefix (28) and
# slot in the metadata vector (4); measured to the byte on exported models (tests/test_memory_plan.py).
# The finished file is padded to 8 bytes, so it may take 4 B more (or, where the converter's file
# had 4 B of padding, 4 B less): OFFLINE_PLAN_PADDING_BYTES covers the worse case.
OFFLINE_PLAN_FIXED_BYTES = 72
OFFLINE_PLAN_PADDING_BYTES = 4


def offline_plan_bytes(tensor_count: int) -> int:
    """How much larger the ``.tflite`` gets with an offline plan for ``tensor_count`` tensors embedded."""
    return 4 * tensor_count + OFFLINE_PLAN_FIXED_BYTES + OFFLINE_PLAN_PADDING_BYTES

