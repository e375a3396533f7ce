"""A small pure-Python reader for TensorFlow Lite flatbuffers.

Why not the ``tflite`` or ``flatbuffers`` packages: the cost model must run
where TensorFlow is not installed and must never import it, and the
generated ``tflite`` schema module is not a dependency of mcunas (the copy
inside ``tflite_micro`` drags in the TFLM runtime).  The part of the schema
the cost model needs is small — tensors, operators, buffers, quantisation —
so this module decodes exactly that from the raw bytes with ``struct``.

Flatbuffer layout, in one paragraph: a table starts with a signed 32-bit
offset back to its vtable; the vtable holds its own size, the table's size
and one 16-bit offset per field (0 = field absent, use the default).
Reference fields (vectors, strings, sub-tables) hold a 32-bit offset
relative to the field's own position; a vector is a 32-bit length followed
by its elements.  Field numbers below follow ``tensorflow/lite/schema/schema.fbs``.
"""

from __future__ import annotations

import struct
from math import prod
from dataclasses import dataclass, field

from mcunas.cost.tflite_ops import op_name
from mcunas.errors import UserError

TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
                7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
                13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4"}
TYPE_BYTES = {"float32": 4, "float16": 2, "int32": 4, "uint8": 1, "int64": 8, "bool": 1, "int16": 2,
              "int8": 1, "float64": 8, "complex64": 8, "complex128": 16, "uint64": 8, "uint32": 4,
              "uint16": 2, "resource": 0}  # resource: VAR_HANDLE points its output at its OpData, unplanned
ACTIVATIONS = {0: None, 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}


@dataclass(slots=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int
    scale: list[float] = field(default_factory=list)
    zero_point: list[int] = field(default_factory=list)
    has_data: bool = False  # a constant (weights, biases, shape) stored in the file
    is_variable: bool = False  # state TFLM keeps across invocations (LSTM/RNN/SVDF state)

    @property
    def nbytes(self) -> int:
        return prod(self.shape) * TYPE_BYTES.get(self.dtype, 1)


@dataclass(slots=True)
class Operator:
    op: str
    inputs: list[int]
    outputs: list[int]
    options: dict
    intermediates: list[int] = field(default_factory=list)


@dataclass
class Subgraph:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]


@dataclass
class TfliteModel:
    """The first (main) subgraph's fields, plus any further subgraphs (IF/WHILE bodies)."""

    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    buffer_sizes: list[int]
    file_bytes: int
    extra_subgraphs: list[Subgraph] = field(default_factory=list)
    # The "OfflineMemoryAllocation" metadata: one head offset per tensor (all subgraphs
    # concatenated), -1 where TFLM's own planner places the tensor; None without one.
    offline_offsets: list[int] | None = None

    @property
    def subgraphs(self) -> list[Subgraph]:
        return [Subgraph(self.tensors, self.operators, self.inputs, self.outputs), *self.extra_subgraphs]


class _Reader:
    def __init__(self, buf: bytes):
        self.buf = buf

    def u32(self, pos: int) -> int:
        return struct.unpack_from("<I", self.buf, pos)[0]

    def field_pos(self, table: int, index: int) -> int | None:
        """Absolute position of field ``index`` of the table at ``table``, or None."""
        vtable = table - struct.unpack_from("<i", self.buf, table)[0]
        vt_size = struct.unpack_from("<H", self.buf, vtable)[0]
        slot = 4 + 2 * index
        if slot >= vt_size:
            return None
        off = struct.unpack_from("<H", self.buf, vtable + slot)[0]
        return table + off if off else None

    def scalar(self, table: int, index: int, fmt: str, default=0):
        pos = self.field_pos(table, index)
        return default if pos is None else struct.unpack_from("<" + fmt, self.buf, pos)[0]

    def ref(self, table: int, index: int) -> int | None:
        pos = self.field_pos(table, index)
        return None if pos is None else pos + self.u32(pos)

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(position of the first element, length) of a vector field; (0, 0) if absent."""
        pos = self.ref(table, index)
        return (0, 0) if pos is None else (pos + 4, self.u32(pos))

    def scalars(self, table: int, index: int, fmt: str) -> list:
        start, n = self.vector(table, index)
        return list(struct.unpack_from(f"<{n}{fmt}", self.buf, start)) if n else []

    def tables(self, table: int, index: int) -> list[int]:
        start, n = self.vector(table, index)
        return [start + 4 * i + self.u32(start + 4 * i) for i in range(n)]

    def string(self, table: int, index: int) -> str:
        pos = self.ref(table, index)
        if pos is None:
            return ""
        n = self.u32(pos)
        return self.buf[pos + 4:pos + 4 + n].decode("utf-8", "replace")


def _options(r: _Reader, table: int | None, op: str) -> dict:
    """The builtin options the cost model uses (strides, kernel, activation, beta)."""
    if table is None:
        return {}
    if op == "CONV_2D":
        return {"padding": r.scalar(table, 0, "b"), "stride_w": r.scalar(table, 1, "i"),
                "stride_h": r.scalar(table, 2, "i"), "activation": ACTIVATIONS.get(r.scalar(table, 3, "b"))}
    if op == "DEPTHWISE_CONV_2D":
        return {"padding": r.scalar(table, 0, "b"), "stride_w": r.scalar(table, 1, "i"),
                "stride_h": r.scalar(table, 2, "i"), "depth_multiplier": r.scalar(table, 3, "i"),
                "activation": ACTIVATIONS.get(r.scalar(table, 4, "b"))}
    if op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return {"padding": r.scalar(table, 0, "b"), "stride_w": r.scalar(table, 1, "i"),
                "stride_h": r.scalar(table, 2, "i"), "filter_w": r.scalar(table, 3, "i"),
                "filter_h": r.scalar(table, 4, "i"), "activation": ACTIVATIONS.get(r.scalar(table, 5, "b"))}
    if op == "SOFTMAX":
        return {"beta": r.scalar(table, 0, "f", 0.0)}
    if op == "IF":
        return {"subgraphs": [r.scalar(table, 0, "i"), r.scalar(table, 1, "i")]}
    if op == "WHILE":
        return {"subgraphs": [r.scalar(table, 0, "i"), r.scalar(table, 1, "i")]}
    if op == "CALL_ONCE":
        return {"subgraphs": [r.scalar(table, 0, "i")]}
    if op == "BATCH_MATMUL":
        return {"adj_x": bool(r.scalar(table, 0, "b")), "adj_y": bool(r.scalar(table, 1, "b"))}
    if op == "VAR_HANDLE":  # TFLM keys a resource variable by (container, shared_name)
        return {"container": r.string(table, 0), "shared_name": r.string(table, 1)}
    return {}


def _subgraph(r: _Reader, sg: int, codes: list[str], buffer_sizes: list[int]) -> Subgraph:
    tensors = []
    for t in r.tables(sg, 0):
        q = r.ref(t, 4)
        buf_index = r.scalar(t, 2, "I")
        type_code = r.scalar(t, 1, "b")
        tensors.append(Tensor(
            name=r.string(t, 3),
            shape=tuple(r.scalars(t, 0, "i")),
            dtype=TENSOR_TYPES.get(type_code, f"type #{type_code}"),
            buffer=buf_index,
            scale=r.scalars(q, 2, "f") if q is not None else [],
            zero_point=r.scalars(q, 3, "q") if q is not None else [],
            has_data=buf_index < len(buffer_sizes) and buffer_sizes[buf_index] > 0,
            is_variable=bool(r.scalar(t, 5, "B")),
        ))
    operators = []
    for o in r.tables(sg, 3):
        op = codes[r.scalar(o, 0, "I")]
        operators.append(Operator(op=op, inputs=r.scalars(o, 1, "i"), outputs=r.scalars(o, 2, "i"),
                                  options=_options(r, r.ref(o, 4), op), intermediates=r.scalars(o, 8, "i")))
    return Subgraph(tensors, operators, r.scalars(sg, 1, "i"), r.scalars(sg, 2, "i"))


OFFLINE_PLAN_METADATA = "OfflineMemoryAllocation"


def _offline_offsets(r: _Reader, model: int, buffers: list[int]) -> list[int] | None:
    """The offsets of the offline memory plan in the metadata, as TFLM reads them: int32
    [version, subgraphs, n, offset_0 .. offset_n-1] in the named buffer."""
    for meta in r.tables(model, 6):
        if r.string(meta, 0) == OFFLINE_PLAN_METADATA:
            start, n = r.vector(buffers[r.scalar(meta, 1, "I")], 0)
            values = struct.unpack_from(f"<{n // 4}i", r.buf, start)
            if len(values) < 3 or len(values) != 3 + values[2]:
                raise UserError(f"malformed {OFFLINE_PLAN_METADATA} metadata: {len(values)} int32 values, "
                                f"expected 3 + the count it gives")
            return list(values[3:])
    return None


def read_tflite(data: bytes) -> TfliteModel:
    """Decode every subgraph of a ``.tflite`` file; UserError if it is not one."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise UserError("not a TensorFlow Lite flatbuffer (file identifier 'TFL3' missing)")
    r = _Reader(data)
    try:
        model = r.u32(0)
        codes = []
        for oc in r.tables(model, 1):
            # deprecated_builtin_code (int8, field 0) tops out at 127; builtin_code (field 3) holds the rest
            code = max(r.scalar(oc, 0, "b"), r.scalar(oc, 3, "i"))
            codes.append(f"CUSTOM '{r.string(oc, 1)}'" if code == 32 else op_name(code))
        buffers = r.tables(model, 4)
        buffer_sizes = []
        for b in buffers:
            _, n = r.vector(b, 0)
            buffer_sizes.append(n or r.scalar(b, 2, "Q"))
        subgraphs = [_subgraph(r, sg, codes, buffer_sizes) for sg in r.tables(model, 2)]
        if not subgraphs:
            raise UserError("the .tflite file has no subgraph")
        main = subgraphs[0]
        return TfliteModel(tensors=main.tensors, operators=main.operators, inputs=main.inputs,
                           outputs=main.outputs, buffer_sizes=buffer_sizes, file_bytes=len(data),
                           extra_subgraphs=subgraphs[1:], offline_offsets=_offline_offsets(r, model, buffers))
    except (struct.error, IndexError) as exc:
        raise UserError(f"corrupt TensorFlow Lite flatbuffer ({exc})") from None
