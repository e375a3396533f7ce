"""Figures read off any ``.tflite`` graph: MACs per op, counted from tensor shapes.

An independent count: it uses only the shapes stored in the flatbuffer, so
comparing it with :func:`mcunas.cost.estimate` checks that the cost graph
and the exported model agree.
"""

from __future__ import annotations

from math import prod

from mcunas.cost.flatbuffer import TfliteModel


def op_macs(model: TfliteModel, index: int) -> int:
    """Multiply-accumulates of operator ``index`` (0 for ops without weights, and for ops without
    outputs such as ASSIGN_VARIABLE and CALL_ONCE)."""
    op = model.operators[index]
    if op.op == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        return _lstm_macs(model, op)
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


LSTM_WEIGHT_INPUTS = (1, 2, 3, 4, 5, 6, 7, 8, 16)  # input-to-gate, recurrent-to-gate, projection (lstm_shared.h)


def _lstm_macs(model: TfliteModel, op) -> int:
    """Every time step of every batch row multiplies each gate's input and recurrent weight
    matrix (and the projection, where present) once; the element-wise gate products are not
    counted, as no activation is."""
    steps = prod(model.tensors[op.inputs[0]].shape[:2])  # batch and time, in either order
    return steps * sum(prod(model.tensors[op.inputs[i]].shape) for i in LSTM_WEIGHT_INPUTS
                       if i < len(op.inputs) and op.inputs[i] >= 0)


def tflite_macs(model: TfliteModel) -> int:
    return sum(op_macs(model, i) for i in range(len(model.operators)))
