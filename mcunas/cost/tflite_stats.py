"""Figures read off any ``.tflite`` graph: MACs per op, counted from tensor shapes.

An independent count: it uses only the shapes stored in the flatbuffer, so
comparing it with :func:`mcunas.cost.estimate` checks that the cost graph
and the exported model agree.
"""

from __future__ import annotations

from mcunas.cost.flatbuffer import TfliteModel


def op_macs(model: TfliteModel, index: int) -> int:
    """Multiply-accumulates of operator ``index`` (0 for ops without weights, and for ops without
    outputs such as ASSIGN_VARIABLE and CALL_ONCE)."""
    op = model.operators[index]
    if op.op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return 0
    out = model.tensors[op.outputs[0]].shape
    if op.op == "CONV_2D":
        cout, kh, kw, cin = model.tensors[op.inputs[1]].shape
        return out[1] * out[2] * cout * kh * kw * cin
    if op.op == "DEPTHWISE_CONV_2D":
        _, kh, kw, c = model.tensors[op.inputs[1]].shape
        return out[1] * out[2] * c * kh * kw
    units, inputs = model.tensors[op.inputs[1]].shape  # FULLY_CONNECTED
    return units * inputs


def tflite_macs(model: TfliteModel) -> int:
    return sum(op_macs(model, i) for i in range(len(model.operators)))
