"""Embed an offline memory plan in a ``.tflite``: the ``OfflineMemoryAllocation`` metadata.

TFLM reads it in ``AllocationInfoBuilder::GetOfflinePlannedOffsets``
(``micro_allocation_info.cc``; format in ``micro/docs/memory_management.md``): a metadata
entry of that exact name whose buffer holds int32 ``[version 0, subgraph count, n,
offset_0 .. offset_n-1]``, one offset per tensor (``n`` must equal the model's tensor count
or loading fails), -1 for tensors its own planner should place.  Constant tensors are never
planned, whatever their entry says; they get -1.  The plan itself is
:func:`mcunas.cost.memory_plan.offline_plan` (pure Python).  Where another execution order
has a smaller live set (ShuffleNet units, :mod:`mcunas.cost.execution_order`), the subgraph's
operators are rewritten in that order, which TFLM follows; every tensor keeps its index.

The model is rewritten with TensorFlow's own flatbuffer object API
(``tensorflow.lite.python.schema_py_generated``: unpack, add a buffer and a metadata entry,
pack), so every other field survives unchanged.  Unpacking and packing a converted model
with that API gives back the converter's file byte for byte (the same builder algorithm,
the same field order; checked in the slow tests), so the embedded file is the converted
one plus exactly the plan's objects: :func:`mcunas.cost.tflite_size.offline_plan_bytes`
predicts that growth, which a flash budget under ``--memory-plan offline`` must count.
The plan's int32 words start 4-byte aligned (a vector's length prefix is), as TFLM's
``reinterpret_cast`` to ``int32_t`` needs; the weights keep the converter's alignment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcunas.cost.execution_order import order_for_plan
from mcunas.cost.flatbuffer import OFFLINE_PLAN_METADATA, read_tflite
from mcunas.cost.memory_plan import OfflinePlan, offline_plan
from mcunas.errors import UserError

PLAN_FORMAT_VERSION = 0
BUFFER_ALIGN_BYTES = 16


def embed_offline_plan(data: bytes) -> tuple[bytes, OfflinePlan]:
    """``data`` with the offline plan in its metadata (replacing one already there) and its ops in
    the plan's execution order, and the plan."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    plan = offline_plan(read_tflite(data))
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    if any(b.offset or b.size for b in model.buffers or []):
        raise UserError("the model keeps its buffers outside the flatbuffer (a >2 GB layout); "
                        "an offline memory plan cannot be embedded in it")
    values = np.array([PLAN_FORMAT_VERSION, len(model.subgraphs), len(plan.offsets), *plan.offsets], dtype="<i4")
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(values.tobytes(), dtype=np.uint8)
    model.metadata = [m for m in (model.metadata or []) if m.name not in (OFFLINE_PLAN_METADATA,
                                                                          OFFLINE_PLAN_METADATA.encode())]
    if plan.order is not None:  # the order the plan is for (mcunas.cost.execution_order)
        ops = model.subgraphs[0].operators
        model.subgraphs[0].operators = [ops[o] for o in plan.order]
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = OFFLINE_PLAN_METADATA
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = bytes(builder.Output())
    written = read_tflite(out)
    if written.offline_offsets != plan.offsets or (plan.order is not None and order_for_plan(written) is not None):
        raise RuntimeError("the offline plan or its execution order did not survive writing the model")
    return out, plan



def embed_in_file(path: Path, stock: dict) -> tuple[dict, dict]:
    """Embed the plan in the ``.tflite`` at ``path`` (rewritten in place), given TFLM's measurement
    ``stock`` of the file as it was; returns the measurement of the new file and the plan's figures
    (both arenas, the lower bound, what the plan saved) every export reports."""
    from mcunas.tflm import measure_arena

    data, plan = embed_offline_plan(path.read_bytes())
    path.write_bytes(data)
    measured = measure_arena(path)
    return measured, {"memory_plan": "offline", "tflm_arena_stock_bytes": stock["tflm_arena_bytes"],
                      "tflm_head_stock_bytes": stock["tflm_head_bytes"], "tflm_head_bound_bytes": plan.bound_bytes,
                      "arena_saved_bytes": stock["tflm_arena_bytes"] - measured["tflm_arena_bytes"]}


def plan_note(measured: dict, plan_figures: dict) -> str:
    """The lines ``model_data.h`` carries about an embedded plan."""
    return (f"Offline memory plan embedded (OfflineMemoryAllocation metadata): TFLM needs "
            f"{measured['tflm_arena_bytes']:,} B instead of {plan_figures['tflm_arena_stock_bytes']:,} B "
            "(x86-64, measured).\nKernels with scratch buffers of their own (e.g. CMSIS-NN) get them "
            "placed around the plan by TFLM's planner.")
