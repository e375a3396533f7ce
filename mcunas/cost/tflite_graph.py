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
    layout = _Layout(arch, graph)
    for node in sorted(graph.nodes):
        n = graph.nodes[node]
        emit = _EMITTERS.get(n["op"])
        if emit is None:
            raise ValueError(f"no .tflite layout known for {n['op']}")
        emit(layout, n)
    return layout.model()


class _Layout:
    """The converted model's tensors and operators, accumulated one graph node at a time."""

    def __init__(self, arch: Arch, graph):
        self.shapes = graph.graph["tensors"]
        self.activation = {"relu": "Relu", "relu6": "Relu6"}[arch.activation]
        self.consts: list[Tensor] = []
        self.acts: list[Tensor] = [_activation("image", (1, *self.shapes["input"]))]
        self.index = {"input": 0}  # graph tensor name -> position in acts
        self.ops: list[tuple[str, list, list, dict]] = []  # inputs: ("a", pos) or ("c", pos)
        self.reshape_const = None
        slices = [graph.nodes[n] for n in graph.nodes if graph.nodes[n]["op"] == "STRIDED_SLICE"]
        self.has_slices = bool(slices)
        # A constant read by one op only keeps that op's name; shared ones become arith.constant<N>.
        self.lone = slices[1]["layer"] if len(slices) == 2 else None  # one basic unit: its odd slice's begin
        if slices:  # strides, end (= the even slice's begin) and the odd slice's begin: int32[4] each
            odd_begin = f"{PREFIX}{self.lone}_1/strided_slice" if self.lone else "arith.constant2"
            for name in ("arith.constant", "arith.constant1", odd_begin):
                self.const(name, (4,), "int32", 0)

    def const(self, name: str, shape: tuple[int, ...], dtype: str, channels: int) -> tuple[str, int]:
        self.consts.append(_const(name, shape, dtype, channels))
        return ("c", len(self.consts) - 1)

    def act(self, name: str, shape: tuple[int, ...], key: str | None = None) -> int:
        self.acts.append(_activation(name, shape))
        self.index[key or name] = len(self.acts) - 1
        return self.index[key or name]

    def inputs(self, n: dict) -> list[tuple[str, int]]:
        return [("a", self.index[t]) for t in n["inputs"]]

    def emit(self, op: str, ins: list, n: dict, name: str, shape: tuple[int, ...] | None = None,
             options: dict | None = None) -> None:
        """Operator ``op`` writing node ``n``'s output, named ``name`` (shape 1×H×W×C unless given)."""
        h, w, c = self.shapes[n["output"]]
        self.ops.append((op, ins, [self.act(name, shape or (1, h, w, c), n["output"])], options or {}))

    def conv(self, n: dict) -> None:
        op, c, cin, k = n["op"], self.shapes[n["output"]][2], self.shapes[n["inputs"][0]][2], n["kernel"]
        wshape = (c, k, k, cin) if op == "CONV_2D" else (1, k, k, c)
        wname, bname, oname = _names(op, n["layer"], self.activation if n["activation"] else None)
        ins = self.inputs(n) + [self.const(wname, wshape, "int8", c), self.const(bname, (c,), "int32", c)]
        self.emit(op, ins, n, oname)

    def add(self, n: dict) -> None:
        h, w, c = self.shapes[n["output"]]
        ins = self.inputs(n)
        if h == w == 1:  # a bias-add to the converter: RESHAPE(y -> [C]) then ADD (see module doc)
            layer = PREFIX + n["layer"] + "_1"
            if self.reshape_const is None:
                self.reshape_const = self.const("arith.constant", (1,), "int32", 0)
            flat = self.act(f"{layer}/Squeeze", (c,))
            self.ops.append(("RESHAPE", [ins[1], self.reshape_const], [flat], {}))
            self.emit("ADD", [ins[0], ("a", flat)], n, f"{layer}/BiasAdd")
        else:
            self.emit("ADD", ins, n, f"{PREFIX}{n['layer']}_1/Add")

    def max_pool(self, n: dict) -> None:
        self.emit("MAX_POOL_2D", self.inputs(n), n, f"{PREFIX}{n['layer']}_1/MaxPool2d")

    def strided_slice(self, n: dict) -> None:
        begin = 2 if n["offset"] else 1
        name = f"{PREFIX}{n['layer']}_1/strided_slice" + ("1" if n["layer"] == self.lone else "")
        self.emit("STRIDED_SLICE", self.inputs(n) + [("c", begin), ("c", 1), ("c", 0)], n, name)

    def concatenation(self, n: dict) -> None:
        self.emit("CONCATENATION", self.inputs(n), n, f"{PREFIX}{n['layer']}_1/concat")

    def mean(self, n: dict) -> None:
        # The converter renames it when the slices' constants took the name space first.
        name = (f"arith.constant{2 if self.lone else 3}" if self.has_slices
                else f"{PREFIX}gap_1/Mean/reduction_indices")
        ins = self.inputs(n) + [self.const(name, (2,), "int32", 0)]
        self.emit("MEAN", ins, n, f"{PREFIX}gap_1/Mean", (1, self.shapes[n["output"]][2]))

    def fully_connected(self, n: dict) -> None:
        c, cin = self.shapes[n["output"]][2], self.shapes[n["inputs"][0]][2]
        fc = PREFIX + "classifier_1/"
        bias = self.const(f"{fc}BiasAdd", (c,), "int32", c)
        weights = self.const(f"{fc}MatMul", (c, cin), "int8", c)
        self.emit("FULLY_CONNECTED", self.inputs(n) + [weights, bias], n, f"{fc}MatMul;{fc}BiasAdd", (1, c))

    def softmax(self, n: dict) -> None:
        c = self.shapes[n["output"]][2]
        self.emit("SOFTMAX", self.inputs(n), n, "Identity", (1, c), {"beta": 1.0})

    def model(self) -> TfliteModel:
        """Laid out as the converter does: input, constants, then the other activations."""
        n = len(self.consts)
        tensors = [self.acts[0], *self.consts, *self.acts[1:]]
        operators = [Operator(op=op, inputs=[1 + i if kind == "c" else (n + i if i else 0) for kind, i in ins],
                              outputs=[n + o if o else 0 for o in outs], options=opts)
                     for op, ins, outs, opts in self.ops]
        return TfliteModel(tensors=tensors, operators=operators, inputs=[0], outputs=[len(tensors) - 1],
                           buffer_sizes=[], file_bytes=0)


_EMITTERS = {"CONV_2D": _Layout.conv, "DEPTHWISE_CONV_2D": _Layout.conv, "ADD": _Layout.add,
             "MAX_POOL_2D": _Layout.max_pool, "STRIDED_SLICE": _Layout.strided_slice,
             "CONCATENATION": _Layout.concatenation, "MEAN": _Layout.mean,
             "FULLY_CONNECTED": _Layout.fully_connected, "SOFTMAX": _Layout.softmax}
