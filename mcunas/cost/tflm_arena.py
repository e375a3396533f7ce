"""Predict the TFLM tensor arena of an int8 model: planned head + persistent tail.

Works on a :class:`~mcunas.cost.flatbuffer.TfliteModel`, whether read from
a real ``.tflite`` file or synthesised from an architecture by
:mod:`mcunas.cost.tflite_graph`, so both paths share one set of rules.

**Head**: the greedy plan of :mod:`mcunas.cost.tflm_planner` over the
non-constant tensors, plus MEAN's scratch buffer (int32 sums per output
channel and 32 B more, measured: a 1×1×C MEAN's head is 2·C + 4·C + 32 B
for C = 256, 1024, 2048); no other kernel used here (the tflite-micro pip package's
x86 build) requests one.  The arena's head side must also hold TFLM's
temporaries while it prepares kernels and plans (:func:`prepare_bytes`,
:func:`planning_bytes`), which is more than the activations for deep or wide
models on tiny inputs.

**Tail** (``micro_allocator.cc`` plus each kernel's Init/Prepare), in the
categories ``print_allocations()`` reports:

* ``TfLiteEvalTensor``: 24 B for *every* tensor in the subgraph, constants included;
* ``NodeAndRegistration``: 64 B per operator;
* persistent buffers from kernels: an OpData struct per op (CONV_2D and
  DEPTHWISE_CONV_2D 80 B, ADD 64 B ...) plus, for each conv, a per-channel
  output multiplier and shift (two int32 arrays, each rounded up to 16 B);
* the model input and output as full ``TfLiteTensor`` structs (64 B each)
  with their quantisation structs (24 B + a 4 + 4·channels zero-point array);
* the rest: the allocator objects themselves and each op's parsed builtin
  options (28 B per conv, 8 B per ADD, ...).

The per-op byte counts are sizes of x86-64 structs in the tflite-micro pip
package, taken from calibration against ``print_allocations()`` (66 models,
every category exact except the unrecorded rest, which varies by up to
±4 B with allocation order).  On a 32-bit MCU pointers are 4 bytes, so the
real tail there is somewhat smaller; the head is the same.
"""

from __future__ import annotations

from mcunas.cost.flatbuffer import TfliteModel
from mcunas.cost.tflm_planner import ALIGN_BYTES, Buffer, align_up, peak_bytes
from mcunas.errors import UserError

EVAL_TENSOR_BYTES = 24
NODE_AND_REGISTRATION_BYTES = 64
PERSISTENT_TENSOR_BYTES = 64
AFFINE_QUANTIZATION_BYTES = 24
# Fixed tail: allocator objects, subgraph bookkeeping, and the classifier's
# FULLY_CONNECTED + SOFTMAX (every calibration model has exactly one of each).
BASE_TAIL_BYTES = 764

# op -> bytes per op: the kernel's OpData (persistent buffer) plus its parsed
# builtin options.  Calibrated sums.
OP_TAIL_BYTES = {
    "CONV_2D": 80 + 28,
    "DEPTHWISE_CONV_2D": 80 + 28,
    "ADD": 64 + 8,
    "MEAN": 56,
    "AVERAGE_POOL_2D": 28,
    "MAX_POOL_2D": 32 + 40,  # measured like the ShuffleNet ops below
    "RESHAPE": 36,
    # ShuffleNet ops, measured by difference between exported ShuffleNetV2 units in print_allocations
    # (OpData exact; options to +-4 B, the allocation-order noise, rounded up).
    "CONCATENATION": 80 + 16,
    "STRIDED_SLICE": 96 + 20,
    "FULLY_CONNECTED": 0,
    "SOFTMAX": 0,
}
PER_CHANNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")

# While it plans, TFLM holds in the head's temp section the scratch-buffer request list (16 B x 12
# slots), one AllocationInfo per tensor and scratch buffer (32 B) and the greedy planner's
# 40 B per planned buffer
# (micro_allocator.cc CommitStaticMemoryPlan, greedy_memory_planner.h per_buffer_size); a deep,
# narrow, low-resolution model needs more arena for that than for its planned activations.
# Measured: the smallest arena minus the tail exceeds this count (MEAN's scratch buffer counted as
# one more buffer) by 0-8 B on 4 such models (ShuffleNet, MobileNetV1 and V2 at 16-24 px), hence 8 B.
PLANNING_FIXED_BYTES = 16 * 12 + 8
ALLOCATION_INFO_BYTES = 32
PLANNER_BYTES_PER_BUFFER = 40
# Before planning, each kernel's Prepare reads its tensors as temporary TfLiteTensors in the head;
# a per-channel conv's filter and bias carry per-channel quantisation arrays there.  Measured: the
# smallest arena minus the final tail is exactly 592 + 12 B per output channel of the widest conv or
# depthwise conv on 1x1-pixel models of 256, 512, 1024 and 2048 channels (the tail at that conv's
# Prepare is at most the final one, so this errs high).  It sets the arena of wide models on tiny
# inputs (ShuffleNetV2 2x, conv5 2048, at 32 px: 10.5 % above activations + tail).
PREPARE_FIXED_BYTES = 592
PREPARE_BYTES_PER_CHANNEL = 12


def plan_buffers(model: TfliteModel) -> list[Buffer]:
    """The planner's buffers: non-constant tensors with their scope lifetimes, then scratch buffers."""
    scopes = len(model.operators)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t in (*model.inputs, *model.outputs):
        first[t] = last[t] = 0
    for scope, op in enumerate(model.operators, start=1):
        for t in op.outputs:
            first[t] = last[t] = scope
        for t in op.inputs:
            if t >= 0:
                last[t] = scope
    for t in model.outputs:
        last[t] = scopes
    buffers = [Buffer(align_up(tensor.nbytes), first[i], last[i])
               for i, tensor in enumerate(model.tensors)
               if not tensor.has_data and tensor.nbytes and i in first]
    for scope, op in enumerate(model.operators, start=1):
        if op.op == "MEAN":  # one scratch buffer, int32 sums per output channel + 32 B, during MEAN only
            channels = model.tensors[op.outputs[0]].shape[-1]
            buffers.append(Buffer(align_up(4 * channels) + 2 * ALIGN_BYTES, scope, scope))
    return buffers


def tail_bytes(model: TfliteModel) -> int:
    """The persistent tail TFLM allocates for ``model`` (see module doc)."""
    total = BASE_TAIL_BYTES
    total += EVAL_TENSOR_BYTES * len(model.tensors)
    total += NODE_AND_REGISTRATION_BYTES * len(model.operators)
    for op in model.operators:
        if op.op not in OP_TAIL_BYTES:
            raise UserError(f"the TFLM arena model does not know the op {op.op}")
        total += OP_TAIL_BYTES[op.op]
        if op.op in PER_CHANNEL_OPS:
            channels = model.tensors[op.outputs[0]].shape[-1]
            total += 2 * align_up(4 * channels)
    for t in (*model.inputs, *model.outputs):
        channels = max(1, len(model.tensors[t].scale))
        total += PERSISTENT_TENSOR_BYTES + AFFINE_QUANTIZATION_BYTES + align_up(4 + 4 * channels, 8)
    return total


def planning_bytes(model: TfliteModel, buffers: list[Buffer]) -> int:
    """Head space TFLM needs while planning (see PLANNING_FIXED_BYTES); scratch buffers (MEAN's) have an
    AllocationInfo too."""
    scratch = sum(op.op == "MEAN" for op in model.operators)
    return (PLANNING_FIXED_BYTES + ALLOCATION_INFO_BYTES * (len(model.tensors) + scratch)
            + PLANNER_BYTES_PER_BUFFER * len(buffers))


def prepare_bytes(model: TfliteModel) -> int:
    """Head space the widest per-channel conv's Prepare needs for its temporaries (see PREPARE_*)."""
    widest = max((model.tensors[op.outputs[0]].shape[-1] for op in model.operators if op.op in PER_CHANNEL_OPS),
                 default=0)
    return PREPARE_FIXED_BYTES + PREPARE_BYTES_PER_CHANNEL * widest if widest else 0


def predict_arena(model: TfliteModel) -> dict:
    """``sram_tflm_bytes``: the tail plus the largest head-side need (activations, planning, Prepare)."""
    check_int8(model)
    buffers = plan_buffers(model)
    head = peak_bytes(buffers)
    planning = planning_bytes(model, buffers)
    prepare = prepare_bytes(model)
    tail = tail_bytes(model)
    return {"sram_tflm_bytes": max(head, planning, prepare) + tail, "tflm_head_bytes": head,
            "tflm_planning_bytes": planning, "tflm_prepare_bytes": prepare, "tflm_tail_bytes": tail}


def check_int8(model: TfliteModel) -> None:
    """UserError unless every activation tensor is int8 (a full-integer model)."""
    for i in (*model.inputs, *model.outputs):
        if model.tensors[i].dtype != "int8":
            raise UserError(f"not a full-int8 model: tensor '{model.tensors[i].name}' is "
                            f"{model.tensors[i].dtype}, expected int8 input and output")
    for op in model.operators:
        for t in op.outputs:
            if model.tensors[t].dtype != "int8":
                raise UserError(f"not a full-int8 model: {op.op} outputs {model.tensors[t].dtype}")
