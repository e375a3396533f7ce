"""What each TFLM kernel allocates, per target ABI: builtin options, OpData, per-channel
arrays, temporary tensors and scratch buffers.

Two targets:

* ``x86_64`` — the tflite-micro pip package (what ``mcunas measure`` runs): 8-byte
  pointers and ``size_t``, built with ``USE_TFLM_COMPRESSION`` (conv and FC OpData carry
  two more ints), and the *recording* allocator objects in the tail.
* ``cortex-m`` — a 32-bit Arm EABI build of the same reference kernels: 4-byte pointers and
  ``size_t``, ``double`` 8-byte aligned (AAPCS), no compression fields, plain
  ``MicroAllocator::Create`` (SingleArenaBufferAllocator + GreedyMemoryPlanner + MicroAllocator).

Struct sizes, from the TFLM sources (``tensorflow/lite/micro/micro_common.h``,
``c/common.h`` under ``TF_LITE_STATIC_MEMORY``, ``micro_allocator.h``,
``micro_allocation_info.h``, ``memory_planner/greedy_memory_planner.h``), as
(x86_64, cortex-m) bytes:

==============================  =====  =====  =================================================
struct                          x86    arm    fields
==============================  =====  =====  =================================================
TfLiteTensor (static memory)    64     40     quantization{enum, ptr}, params{f32, i32}, data ptr,
                                              dims ptr, size_t bytes, type, allocation_type, bool
TfLiteEvalTensor                24     12     data ptr, dims ptr, type
TfLiteNode (static memory)      56     28     inputs, outputs, intermediates, user_data,
                                              builtin_data, custom_initial_data ptrs, int size
NodeAndRegistration             64     32     TfLiteNode + const TFLMRegistration*
TfLiteAffineQuantization        24     12     scale ptr, zero_point ptr, int32 quantized_dimension
TfLiteIntArray (n entries)      4+4n   4+4n   int size, int data[n]
SubgraphAllocations             16     8      2 ptrs
ScratchBufferRequest            16     12     size_t bytes, int node_idx, int subgraph_idx
ScratchBufferHandle             8      4      uint8_t* data
AllocationInfo                  32     24     size_t bytes, void** output_ptr, 3 int, bool
MicroBuiltinDataAllocator       16     8      vptr, allocator ptr
MicroResourceVariables          16     12     variable array ptr, 2 int (max and used counts)
MicroResourceVariable           40     20     container, shared_name, buffer ptrs, size_t bytes, int
TfLiteVarHandleParams           16     8      container, shared_name ptrs (VAR_HANDLE's options)
TfLiteTensor* (I/O tables)      8      4      one per model input / output
==============================  =====  =====  =================================================

The greedy planner needs 40 B per planned buffer in its scratch (BufferRequirements 16 +
two int sort arrays + ListEntry 12 + offset 4; ints only, so the same on both).

Kernel OpData (``AllocatePersistentBuffer`` in each kernel's Init) on x86_64 is measured
with ``print_allocations()`` on one-op models (the ``op_*`` rows of
``results/tflite_fidelity.csv``); on cortex-m it is the same struct with 4-byte pointers
(``pointers`` below counts them) and without the two compression ints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from mcunas.cost.flatbuffer import Operator, Subgraph, Tensor
from mcunas.errors import UserError


@dataclass(frozen=True)
class Target:
    name: str
    pointer_bytes: int
    tensor_bytes: int  # TfLiteTensor
    eval_tensor_bytes: int
    node_and_registration_bytes: int
    affine_quantization_bytes: int
    subgraph_allocations_bytes: int
    scratch_request_bytes: int
    scratch_handle_bytes: int
    allocation_info_bytes: int
    builtin_allocator_bytes: int
    allocator_objects_bytes: int  # arena allocator + planner + MicroAllocator, made before the model
    compression_fields: bool
    resource_variables_bytes: int  # MicroResourceVariables (made before the interpreter when a model has VAR_HANDLE)
    resource_variable_bytes: int  # one MicroResourceVariable per distinct variable

    @property
    def struct_align(self) -> int:  # alignof any struct holding a pointer
        return self.pointer_bytes


TARGETS = {
    # allocator_objects_bytes on x86_64: RecordingSingleArenaBufferAllocator, GreedyMemoryPlanner and
    # RecordingMicroAllocator of the pip package together, calibrated (the one figure of the tail
    # that print_allocations does not itemise).
    "x86_64": Target("x86_64", 8, 64, 24, 64, 24, 16, 16, 8, 32, 16, 456, True, 16, 40),
    # cortex-m: SingleArenaBufferAllocator 36 (2 vptrs, 5 ptrs, int, intptr_t) + GreedyMemoryPlanner 44
    # (vptr, 2 int, 4 ptrs, 2 int, ptr, bool) + MicroAllocator 36 (vptr, 4 ptrs, bool, 2 size_t, ptr).
    "cortex-m": Target("cortex-m", 4, 40, 12, 32, 12, 8, 12, 4, 24, 8, 36 + 44 + 36, False, 12, 20),
}
PLANNER_BYTES_PER_BUFFER = 40
MAX_SCRATCH_BUFFERS_PER_OP = 12


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise UserError(f"unknown target '{name}': choose one of {', '.join(TARGETS)}")
    return TARGETS[name]


@dataclass(frozen=True)
class OpData:
    """A kernel's OpData: its x86_64 size (measured) and how many pointers / compression ints it holds."""

    x86_bytes: int
    pointers: int = 0
    doubles: bool = False
    compression_ints: int = 0

    def bytes(self, target: Target) -> int:
        if target.name == "x86_64":
            return self.x86_bytes
        size = self.x86_bytes - self.pointers * (8 - target.pointer_bytes) - 4 * self.compression_ints
        align = 8 if self.doubles else 4
        return -(-size // align) * align


@dataclass
class KernelCost:
    # parsed builtin options: (bytes, alignment) allocations, none where the parser allocates none;
    # alignment 4 for structs of ints and floats, a pointer's for VAR_HANDLE's
    params: list[tuple[int, int]] = field(default_factory=list)
    init_bytes: list[int] = field(default_factory=list)  # persistent buffers from Init
    temps: list[int] = field(default_factory=list)  # tensor indices Prepare allocates as temp TfLiteTensors
    persistent_bytes: list[int] = field(default_factory=list)  # persistent buffers from Prepare
    scratch_bytes: list[int] = field(default_factory=list)  # RequestScratchBufferInArena


# Builtin options structs (tensorflow/lite/core/c/builtin_op_data.h); ints, floats and bools
# only, so the same on both targets.  Ops absent here parse no options (builtin_data = nullptr).
PARAMS_BYTES = {
    "CONV_2D": 28, "DEPTHWISE_CONV_2D": 28, "FULLY_CONNECTED": 16, "AVERAGE_POOL_2D": 40,
    "MAX_POOL_2D": 40, "ADD": 8, "SUB": 8, "MUL": 4, "SOFTMAX": 4, "RESHAPE": 36, "MEAN": 1, "SUM": 1,
    "REDUCE_MAX": 1, "CONCATENATION": 8, "SPLIT": 4, "SPLIT_V": 4, "STRIDED_SLICE": 24, "SHAPE": 4,
    "PACK": 8, "UNPACK": 8, "UNIDIRECTIONAL_SEQUENCE_LSTM": 16, "LEAKY_RELU": 4, "SQUEEZE": 36,
    "GATHER": 8, "RESIZE_NEAREST_NEIGHBOR": 2, "RESIZE_BILINEAR": 2, "TRANSPOSE_CONV": 20, "DIV": 4,
    "IF": 8, "WHILE": 8, "CALL_ONCE": 4, "ARG_MAX": 4, "ARG_MIN": 4, "SVDF": 12, "CAST": 0,
    "BATCH_MATMUL": 4,
}

# Kernel OpData, x86_64 bytes measured on one-op models (see module doc).
OPDATA = {
    "CONV_2D": OpData(80, pointers=2, compression_ints=2),
    "DEPTHWISE_CONV_2D": OpData(80, pointers=2, compression_ints=2),
    "FULLY_CONNECTED": OpData(72, pointers=2, compression_ints=2),
    "SOFTMAX": OpData(80, pointers=6, doubles=True),
    "AVERAGE_POOL_2D": OpData(32), "MAX_POOL_2D": OpData(32),
    "LOGISTIC": OpData(16), "TANH": OpData(16),
    "MEAN": OpData(44),
    "PAD": OpData(56), "RELU": OpData(28), "RELU6": OpData(8), "HARD_SWISH": OpData(20),
    "CONCATENATION": OpData(80, pointers=2), "STRIDED_SLICE": OpData(84),
    "ADD": OpData(60), "MUL": OpData(36),
    "QUANTIZE": OpData(32, doubles=True), "DEQUANTIZE": OpData(32, doubles=True),
    # Resource variables (var_handle.cc, call_once.cc, assign_variable.cc): int32 resource id;
    # int subgraph index + bool; ASSIGN_VARIABLE's OpData (a scratch index) exists only in
    # USE_TFLM_COMPRESSION builds.
    "VAR_HANDLE": OpData(4), "CALL_ONCE": OpData(8), "ASSIGN_VARIABLE": OpData(4, compression_ints=1),
    # From the kernels' OpData structs (ints, bools and enums only, so the same on both targets),
    # checked on the openWakeWord rows of results/public_tflite_fidelity.csv: SUB as ADD's;
    # RSQRT / LOG: OpDataAbsRsqrt-like (multiplier, shift, two offsets, flags, types);
    # LEAKY_RELU: two multiplier/shift pairs and two zero points; REDUCE_MAX, SUM: MEAN's
    # OpDataReduce; GREATER, GREATER_EQUAL: ComparisonParams; IF: then / else subgraph indices.
    "SUB": OpData(60), "RSQRT": OpData(28), "LOG": OpData(28), "LEAKY_RELU": OpData(24),
    "REDUCE_MAX": OpData(44), "SUM": OpData(44), "GREATER": OpData(32), "GREATER_EQUAL": OpData(32),
    "IF": OpData(8),
    # OpDataBatchMatmul: quantization, lhs and rhs transposed-tensor pointers, three bools
    "BATCH_MATMUL": OpData(32, pointers=3),
    # OpDataLSTM (lstm_eval.h): LstmSizeInfo 20 + CellStateInfo 12 + activation 4, four
    # GateParameters of two FullyConnectedParams (40 each), InterGateParameters of three
    # ArithmeticParams (104 each, int64 fields: 8-aligned), four scratch indices.  No pointers.
    "UNIDIRECTIONAL_SEQUENCE_LSTM": OpData(688, doubles=True),
}
INT16_LUT_BYTES = 513 * 2  # softmax int16: exp and 1/(1+x) lookup tables
IF_UNTRACED_TAIL_BYTES = 16
LSTM_INPUTS = 24  # UnidirectionalSequenceLstmPrepare checks the count
LSTM_CELL_STATE_INPUT = 19  # kLstmCellStateTensor (lstm_shared.h)


def _channels(t: Tensor) -> int:
    return len(t.scale)


def kernel_cost(sg: Subgraph, op: Operator, target: Target) -> KernelCost:
    """What the TFLM kernel of ``op`` allocates (reference kernels; see module doc)."""
    name = op.op
    if name not in SUPPORTED_OPS:
        raise UserError(f"the TFLM arena model does not know the op {name}")
    ins = [i for i in op.inputs if i >= 0]
    cost = KernelCost(params=[(PARAMS_BYTES[name], 4)] if PARAMS_BYTES.get(name) else [])
    if name == "VAR_HANDLE":  # TfLiteVarHandleParams: two string pointers
        cost.params = [(2 * target.pointer_bytes, target.pointer_bytes)]
    if name == "FULLY_CONNECTED":
        # Each FC leaves 16 B more, 8-aligned, right after its 16 B TfLiteFullyConnectedParams in
        # the pip package's tail: fitted on the 36 FC models of results/public_tflite_fidelity.csv
        # and tests/data/tflite (1 to 10 FCs: never under, at most +48 B; the earlier "24 B more,
        # 4-aligned" was 80 B over on a 10-FC model).  Not itemised by print_allocations, origin
        # not traced; counted on both targets, so cortex-m may err high by up to 16 B per FC.
        cost.params.append((16, 8))
    if name in OPDATA and OPDATA[name].bytes(target):
        cost.init_bytes.append(OPDATA[name].bytes(target))
    # Default: Prepare reads each input and output once as a temporary TfLiteTensor.
    cost.temps = ins + list(op.outputs)
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        weights = sg.tensors[op.inputs[1]]
        channels = weights.shape[0] if name == "CONV_2D" else weights.shape[-1]
        # ConvPrepare: output, input, filter; then CalculateOpDataConv: input, filter, bias, output.
        cost.temps = [op.outputs[0], ins[0], ins[1], *ins, op.outputs[0]]
        cost.persistent_bytes += [4 * channels, 4 * channels]
    elif name == "FULLY_CONNECTED":
        weights = sg.tensors[op.inputs[1]]
        if _channels(weights) > 1:
            cost.persistent_bytes += [4 * _channels(weights)] * 2
    elif name == "SOFTMAX" and sg.tensors[op.inputs[0]].dtype == "int16":
        cost.persistent_bytes += [INT16_LUT_BYTES, INT16_LUT_BYTES]
    elif name in ("MEAN", "SUM", "REDUCE_MAX"):
        cost.scratch_bytes += _reduce_scratch(sg, op)
    elif name == "BATCH_MATMUL":
        cost.persistent_bytes += _batch_matmul_buffers(sg, op, target)
    elif name == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        # LstmTensors reads the 24 inputs (those present, in order) and the output as temporaries
        # (the default above); Prepare then requests four gate buffers of batch x state cells in
        # the cell state's type (float32, or int16 for int8 models): the cell state's own size.
        if len(op.inputs) != LSTM_INPUTS or op.inputs[LSTM_CELL_STATE_INPUT] < 0:
            raise UserError(f"UNIDIRECTIONAL_SEQUENCE_LSTM has {len(op.inputs)} inputs and TFLM's kernel "
                            f"takes {LSTM_INPUTS} with a cell state at input {LSTM_CELL_STATE_INPUT}: "
                            "TFLM refuses to load this model")
        cost.scratch_bytes += [sg.tensors[op.inputs[LSTM_CELL_STATE_INPUT]].nbytes] * 4
    elif name == "IF":
        # 16 B more in the pip package's tail per IF, not itemised by print_allocations and not
        # traced in if.cc: without it if_float.tflite and openWakeWord hey_jarvis (the two IF
        # models measured) are 16 B under, with it both are exact.  Counted on cortex-m too.
        cost.persistent_bytes.append(IF_UNTRACED_TAIL_BYTES)
    elif name in ("VAR_HANDLE", "CALL_ONCE"):
        cost.temps = []  # Prepare reads no TfLiteTensor
    elif name in ("READ_VARIABLE", "ASSIGN_VARIABLE"):
        # the resource id (READ_VARIABLE) or the value (ASSIGN_VARIABLE); the variable's own
        # buffer is allocated by the first ASSIGN_VARIABLE (tflm_arena.resource_buffers)
        cost.temps = [ins[0] if name == "READ_VARIABLE" else ins[1]]
    elif name == "TANH":
        cost.temps = [ins[0], op.outputs[0], ins[0]]  # input read twice (measured: one more temp than LOGISTIC)
    return cost


def _reduce_scratch(sg: Subgraph, op: Operator) -> list[int]:
    """Scratch buffers of MEAN / SUM / REDUCE_MAX as the pip TFLM plans them, read off its planned
    head on one-op float32, int8 and int16 models (the ``replica_op_{mean,sum,reduce_max}_*`` rows
    of results/tflite_fidelity.csv, all exact): every reduce requests an int per input dimension
    and one per reduced axis; int8 and int16 MEAN and SUM also an int32 sum per output element
    (float32 sums into the output itself).  The reduce_common.cc sources found online request
    fewer; the pip build's heads decide."""
    source, axes, out = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]], sg.tensors[op.outputs[0]]
    sums = op.op != "REDUCE_MAX" and source.dtype in ("int8", "int16")
    return [4 * max(1, prod(out.shape))] * sums + [4 * max(1, prod(axes.shape)), 4 * len(source.shape)]


BATCH_MATMUL_QUANT_BYTES = 28  # QuantizationOpDataBatchMatmul: 7 int32 (multiplier, shift, min/max, 3 zero points)


def _batch_matmul_buffers(sg: Subgraph, op: Operator, target: Target) -> list[int]:
    """BATCH_MATMUL's Prepare (``batch_matmul.cc``): the int8/int16 quantisation struct; for
    each operand it transposes (lhs when ``adj_x``, rhs unless ``adj_y``) a persistent
    TfLiteEvalTensor, its dims array and a copy of its data; then a writable copy of the
    output's dims."""
    lhs, rhs, out = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]], sg.tensors[op.outputs[0]]
    buffers = [BATCH_MATMUL_QUANT_BYTES] if lhs.dtype in ("int8", "int16") else []
    for tensor, transposed in ((lhs, op.options.get("adj_x", False)), (rhs, not op.options.get("adj_y", False))):
        if transposed:
            buffers += [target.eval_tensor_bytes, 4 + 4 * len(tensor.shape), tensor.nbytes]
    return buffers + [4 + 4 * len(out.shape)]


# Ops whose allocations are modelled AND checked against TFLM measurements (one-op models and
# the replicas of results/tflite_fidelity.csv).  Anything else is refused by name rather than
# guessed: a kernel's scratch buffers can be any size (TFLM has no BIDIRECTIONAL_SEQUENCE_LSTM
# kernel at all; its pip package registers only the unidirectional one).
SUPPORTED_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D",
    "PAD", "RESHAPE", "SOFTMAX", "LOGISTIC", "TANH", "QUANTIZE", "DEQUANTIZE", "CONCATENATION", "SPLIT",
    "STRIDED_SLICE", "TRANSPOSE", "SHAPE", "PACK", "HARD_SWISH", "RELU", "RELU6",
    "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE", "SPLIT_V",
    "SUB", "RSQRT", "LOG", "LEAKY_RELU", "MAXIMUM", "MINIMUM", "EXPAND_DIMS", "SQUEEZE", "REDUCE_MAX",
    "GREATER_EQUAL", "IF", "BATCH_MATMUL", "SUM", "GREATER", "UNIDIRECTIONAL_SEQUENCE_LSTM",
})
