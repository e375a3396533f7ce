"""Arch -> the tensors and operators of the ``.tflite`` file mcunas exports.

:func:`mcunas.cost.graph.build_graph` describes the ops; this module adds
what the flatbuffer holds on top, so the TFLM arena model
(:mod:`mcunas.cost.tflm_arena`) and the file-size model
(:mod:`mcunas.cost.tflite_size`) can work on the same
:class:`~mcunas.cost.flatbuffer.TfliteModel` as for a real file:

* every conv and depthwise conv has an int8 weight tensor (per-channel
  quantised: one scale and zero point per output channel) and an int32 bias
  tensor (one scale per channel too);
* MEAN reads a constant int32 ``reduction_indices`` tensor of 2 elements;
  FULLY_CONNECTED has an int8 weight tensor and an int32 bias (per tensor);
* a residual ADD on a 1×1 feature map is not an ADD of two 4-D tensors in the
  converted graph: the converter sees a bias-add and emits
  ``RESHAPE(y -> [C])`` (with one shared int32 shape constant) followed by
  ``ADD(x, reshaped)``.  Measured on every sampled 32-pixel network.

Tensors are listed as the converter lays them out: the input, then the
constants, then the activations in execution order (only the order of the
activations matters to the planner).
"""

from __future__ import annotations

from mcunas.arch import Arch
from mcunas.cost.flatbuffer import Operator, Tensor, TfliteModel
from mcunas.cost.graph import build_graph


def _const(name: str, shape: tuple[int, ...], dtype: str, channels: int) -> Tensor:
    return Tensor(name=name, shape=shape, dtype=dtype, buffer=-1, scale=[1.0] * channels,
                  zero_point=[0] * channels, has_data=True)


def _activation(name: str, shape: tuple[int, ...]) -> Tensor:
    return Tensor(name=name, shape=shape, dtype="int8", buffer=-1, scale=[1.0], zero_point=[0])


def arch_tflite_model(arch: Arch) -> TfliteModel:
    """The exporter's ``.tflite`` structure for ``arch`` (no weight values)."""
    graph = build_graph(arch)
    shapes = graph.graph["tensors"]
    consts: list[Tensor] = []
    acts: list[Tensor] = [_activation("input", (1, *shapes["input"]))]
    index = {"input": 0}  # activation name -> position in acts
    ops: list[tuple[str, list, list, dict]] = []  # inputs: ("a", pos) or ("c", pos)
    reshape_const = None

    def act(name: str, shape: tuple[int, ...]) -> int:
        acts.append(_activation(name, shape))
        index[name] = len(acts) - 1
        return index[name]

    for node in sorted(graph.nodes):
        n = graph.nodes[node]
        op, out = n["op"], n["output"]
        h, w, c = shapes[out]
        ins = [("a", index[t]) for t in n["inputs"]]
        if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            cin = shapes[n["inputs"][0]][2]
            k = n["kernel"]
            wshape = (c, k, k, cin) if op == "CONV_2D" else (1, k, k, c)
            consts += [_const(f"{out}_w", wshape, "int8", c), _const(f"{out}_b", (c,), "int32", c)]
            ins += [("c", len(consts) - 2), ("c", len(consts) - 1)]
            ops.append((op, ins, [act(out, (1, h, w, c))], {}))
        elif op == "ADD" and h == w == 1:
            if reshape_const is None:
                consts.append(_const("reshape_shape", (1,), "int32", 0))
                reshape_const = len(consts) - 1
            flat = act(f"{out}_flat", (c,))
            ops.append(("RESHAPE", [ins[1], ("c", reshape_const)], [flat], {}))
            ops.append(("ADD", [ins[0], ("a", flat)], [act(out, (1, 1, 1, c))], {}))
        elif op == "ADD":
            ops.append((op, ins, [act(out, (1, h, w, c))], {}))
        elif op == "MEAN":
            consts.append(_const("reduction_indices", (2,), "int32", 0))
            ops.append((op, ins + [("c", len(consts) - 1)], [act(out, (1, c))], {}))
        elif op == "FULLY_CONNECTED":
            cin = shapes[n["inputs"][0]][2]
            consts += [_const("fc_w", (c, cin), "int8", 1), _const("fc_b", (c,), "int32", 1)]
            ops.append((op, ins + [("c", len(consts) - 2), ("c", len(consts) - 1)],
                        [act(out, (1, c))], {}))
        elif op == "SOFTMAX":
            ops.append((op, ins, [act(out, (1, c))], {"beta": 1.0}))
        else:
            raise ValueError(f"no .tflite layout known for {op}")

    # Layout: input, constants, then the other activations.
    def pos(ref: tuple[str, int]) -> int:
        kind, i = ref
        if kind == "c":
            return 1 + i
        return 0 if i == 0 else len(consts) + i

    tensors = [acts[0], *consts, *acts[1:]]
    operators = [Operator(op=op, inputs=[pos(r) for r in ins], outputs=[pos(("a", o)) for o in outs],
                          options=opts) for op, ins, outs, opts in ops]
    return TfliteModel(tensors=tensors, operators=operators, inputs=[0], outputs=[len(tensors) - 1],
                       buffer_sizes=[], file_bytes=0)
