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
  FULLY_CONNECTED has an int8 weight tensor and an int32 bias, both
  quantised per output class;
* every STRIDED_SLICE (a ShuffleNet unit's even or odd channels) reads
  three int32[4] constants — begin, end, strides — that all slices of the
  model share (the converter deduplicates equal constants; ``end`` is all
  zeros under an end mask, so it doubles as the even slice's ``begin``), and
  its output is named after its layer (``b3_odd_1/strided_slice``).  A
  constant read by one op only keeps that op's name (with one basic unit the
  odd slice's ``begin`` takes ``b3_odd_1/strided_slice`` and pushes the
  slice's output to ``...strided_slice1``); shared ones are
  ``arith.constant<N>``, and MEAN's reduction indices join that numbering;
  MAX_POOL_2D and CONCATENATION have no constants;
* a residual ADD on a 1×1 feature map is not an ADD of two 4-D tensors in the
  converted graph: the converter sees a bias-add and emits
  ``RESHAPE(y -> [C])`` (with one shared int32 shape constant) followed by
  ``ADD(x, reshaped)``.  Measured on every sampled 32-pixel network.

Tensors are listed as the converter lays them out: the input, then the
constants, then the activations in execution order (only the order of the
activations matters to the planner), and carry the names the converter
gives them (it joins the TF op names it fused with ``;``), because names are
a good part of the file: each graph node carries the Keras layer name it comes
from (:func:`mcunas.arch.layers` names them for the builder and the graph
alike), and :func:`_names` spells the converter's rules.
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


PREFIX = "mcunas_1/"  # the Keras model name as the converter's trace scopes it


def _names(op: str, layer: str, act: str | None) -> tuple[str, str, str]:
    """(weights, bias, output) tensor names of a fused conv / depthwise layer."""
    p = PREFIX + layer
    relu = f"{p}_act_1/{act};" if act else ""
    if op == "CONV_2D":
        weights = f"{p}_1/convolution"
        bias = f"{relu}{p}_bn_1/batchnorm/add_1;{p}_1/convolution;{p}_bn_1/batchnorm/sub"
    else:
        weights = f"{p}_bn_1/batchnorm/mul_1;{p}_1/depthwise;{p}_bn_1/batchnorm/mul"
        bias = f"{relu}{p}_bn_1/batchnorm/add_1;{weights};{p}_bn_1/batchnorm/sub"
    return weights, bias, bias + "1"


def arch_tflite_model(arch: Arch, graph=None) -> TfliteModel:
    """The exporter's ``.tflite`` structure for ``arch`` (no weight values).

    ``graph`` is ``build_graph(arch)`` when the caller has it already.
    """
    graph = graph if graph is not None else build_graph(arch)
    shapes = graph.graph["tensors"]
    consts: list[Tensor] = []
    acts: list[Tensor] = [_activation("serving_default_image:0", (1, *shapes["input"]))]
    activation = {"relu": "Relu", "relu6": "Relu6"}[arch.activation]
    index = {"input": 0}  # activation name -> position in acts
    ops: list[tuple[str, list, list, dict]] = []  # inputs: ("a", pos) or ("c", pos)
    reshape_const = None
    slices = [graph.nodes[n] for n in graph.nodes if graph.nodes[n]["op"] == "STRIDED_SLICE"]
    # A constant read by one op only keeps that op's name; shared ones become arith.constant<N>.
    lone = slices[1]["layer"] if len(slices) == 2 else None  # one basic unit: its odd slice's begin
    if slices:  # strides, end (= the even slice's begin) and the odd slice's begin: int32[4] each
        odd_begin = f"{PREFIX}{lone}_1/strided_slice" if lone else "arith.constant2"
        consts += [_const(name, (4,), "int32", 0) for name in ("arith.constant", "arith.constant1", odd_begin)]

    def act(name: str, shape: tuple[int, ...], key: str | None = None) -> int:
        acts.append(_activation(name, shape))
        index[key or name] = len(acts) - 1
        return index[key or name]

    for node in sorted(graph.nodes):
        n = graph.nodes[node]
        op, out = n["op"], n["output"]
        h, w, c = shapes[out]
        ins = [("a", index[t]) for t in n["inputs"]]
        if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            cin = shapes[n["inputs"][0]][2]
            k = n["kernel"]
            wshape = (c, k, k, cin) if op == "CONV_2D" else (1, k, k, c)
            wname, bname, oname = _names(op, n["layer"], activation if n["activation"] else None)
            consts += [_const(wname, wshape, "int8", c), _const(bname, (c,), "int32", c)]
            ins += [("c", len(consts) - 2), ("c", len(consts) - 1)]
            ops.append((op, ins, [act(oname, (1, h, w, c), out)], {}))
        elif op == "ADD" and h == w == 1:
            layer = PREFIX + n["layer"] + "_1"
            if reshape_const is None:
                consts.append(_const("arith.constant", (1,), "int32", 0))
                reshape_const = len(consts) - 1
            flat = act(f"{layer}/Squeeze", (c,))
            ops.append(("RESHAPE", [ins[1], ("c", reshape_const)], [flat], {}))
            ops.append(("ADD", [ins[0], ("a", flat)], [act(f"{layer}/BiasAdd", (1, 1, 1, c), out)], {}))
        elif op == "ADD":
            ops.append((op, ins, [act(f"{PREFIX}{n['layer']}_1/Add", (1, h, w, c), out)], {}))
        elif op == "MAX_POOL_2D":
            ops.append((op, ins, [act(f"{PREFIX}{n['layer']}_1/MaxPool2d", (1, h, w, c), out)], {}))
        elif op == "STRIDED_SLICE":
            begin = 2 if n["offset"] else 1
            name = f"{PREFIX}{n['layer']}_1/strided_slice" + ("1" if n["layer"] == lone else "")
            ops.append((op, ins + [("c", begin), ("c", 1), ("c", 0)], [act(name, (1, h, w, c), out)], {}))
        elif op == "CONCATENATION":
            ops.append((op, ins, [act(f"{PREFIX}{n['layer']}_1/concat", (1, h, w, c), out)], {}))
        elif op == "MEAN":
            # The converter renames it when the slices' constants took the name space first.
            name = (f"arith.constant{2 if lone else 3}" if slices
                    else f"{PREFIX}gap_1/Mean/reduction_indices")
            consts.append(_const(name, (2,), "int32", 0))
            ops.append((op, ins + [("c", len(consts) - 1)], [act(f"{PREFIX}gap_1/Mean", (1, c), out)], {}))
        elif op == "FULLY_CONNECTED":
            cin = shapes[n["inputs"][0]][2]
            fc = PREFIX + "classifier_1/"
            consts += [_const(f"{fc}BiasAdd", (c,), "int32", c), _const(f"{fc}MatMul", (c, cin), "int8", c)]
            ops.append((op, ins + [("c", len(consts) - 1), ("c", len(consts) - 2)],
                        [act(f"{fc}MatMul;{fc}BiasAdd", (1, c), out)], {}))
        elif op == "SOFTMAX":
            ops.append((op, ins, [act("StatefulPartitionedCall_1:0", (1, c), out)], {"beta": 1.0}))
        else:
            raise ValueError(f"no .tflite layout known for {op}")

    # Layout: input, constants, then the other activations.
    n = len(consts)
    tensors = [acts[0], *consts, *acts[1:]]
    operators = [Operator(op=op, inputs=[1 + i if kind == "c" else (n + i if i else 0) for kind, i in ins],
                          outputs=[n + o if o else 0 for o in outs], options=opts)
                 for op, ins, outs, opts in ops]
    return TfliteModel(tensors=tensors, operators=operators, inputs=[0], outputs=[len(tensors) - 1],
                       buffer_sizes=[], file_bytes=0)
