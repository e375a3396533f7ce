"""Arch -> networkx DiGraph of the ops the int8 exporter produces.

The graph mirrors what TensorFlow Lite will run, not the Keras layer list:
batch fixed to 1, BatchNorm folded into conv biases, activations fused into
the conv, global average pooling as ``MEAN``, the classifier as
``FULLY_CONNECTED`` and a final ``SOFTMAX``; a ShuffleNet unit's halves are
``STRIDED_SLICE`` ops (every second channel) joined by ``CONCATENATION``.  Node ids are the execution
order; each node carries its op type, its input tensor names, its output
tensor name, the op's weights, biases and MACs, and the Keras layer it comes
from (``layer``).  The layers themselves come from :func:`mcunas.arch.layers`,
the walk the Keras builder uses too.  Tensor shapes (H, W, C,
batch 1 implied) live in ``graph.graph["tensors"]`` so the memory rules can
work on tensors while networkx keeps the producer -> consumer structure.

``slices`` > 1 builds the paper's split-path variant of MobileNetV2 blocks
(§5.3): expansion, depthwise and projection run as that many channel slices,
each materialised only while it is computed, with the projection
accumulating into one output tensor.  Only the paper's SRAM rule uses it.
"""

from __future__ import annotations

import networkx as nx

from mcunas.arch import Arch, Layer, layers

Shape = tuple[int, int, int]
OPS = {"conv": "CONV_2D", "depthwise": "DEPTHWISE_CONV_2D", "add": "ADD", "maxpool": "MAX_POOL_2D",
       "slice": "STRIDED_SLICE", "concat": "CONCATENATION", "gap": "MEAN", "fc": "FULLY_CONNECTED",
       "softmax": "SOFTMAX"}


class _Builder:
    """Appends ops in execution order and names their output tensors."""

    def __init__(self, arch: Arch):
        self.g = nx.DiGraph(arch=arch, tensors={}, producer={})
        self.g.graph["tensors"]["input"] = (arch.resolution, arch.resolution, arch.in_channels)
        self.g.graph["input"] = "input"
        self.tensor_of = {"input": "input"}  # Keras layer name -> its output tensor

    def op(self, op: str, inputs: list[str], out_shape: Shape, *, weights: int = 0, biases: int = 0,
           macs: int = 0, out: str | None = None, **attrs) -> str:
        """Append one op; ``out`` names an existing tensor the op accumulates into."""
        node = self.g.number_of_nodes()
        out = out or f"t{node}"
        self.g.add_node(node, op=op, inputs=inputs, output=out, weights=weights, biases=biases,
                        macs=macs, **attrs)
        for t in inputs:
            src = self.g.graph["producer"].get(t)
            if src is not None:
                self.g.add_edge(src, node, tensor=t)
        self.g.graph["tensors"][out] = out_shape
        self.g.graph["producer"][out] = node
        return out

    def layer(self, layer: Layer, *, channels_in: int | None = None, channels_out: int | None = None,
              inputs: list[str] | None = None, out: str | None = None) -> str:
        """Append the op of one :class:`~mcunas.arch.Layer`; the overrides build channel slices."""
        cin = channels_in or layer.channels_in
        cout = cin if layer.kind == "depthwise" else channels_out or layer.channels_out
        shape = (layer.size, layer.size, cout)
        ins = inputs if inputs is not None else [self.tensor_of[name] for name in layer.inputs]
        k2 = layer.kernel * layer.kernel
        if layer.kind == "conv":
            pixels = layer.size * layer.size
            t = self.op("CONV_2D", ins, shape, weights=k2 * cin * cout, biases=cout if out is None else 0,
                        macs=pixels * k2 * cin * cout, kernel=layer.kernel, stride=layer.stride,
                        activation=layer.activation, layer=layer.name, out=out)
        elif layer.kind == "depthwise":
            t = self.op("DEPTHWISE_CONV_2D", ins, shape, weights=k2 * cout, biases=cout,
                        macs=layer.size * layer.size * k2 * cout, kernel=layer.kernel, stride=layer.stride,
                        activation=layer.activation, layer=layer.name)
        elif layer.kind == "fc":
            t = self.op("FULLY_CONNECTED", ins, shape, weights=cin * cout, biases=cout, macs=cin * cout,
                        layer=layer.name)
        elif layer.kind == "maxpool":  # comparisons, not multiply-accumulates
            t = self.op("MAX_POOL_2D", ins, shape, kernel=layer.kernel, stride=layer.stride, layer=layer.name)
        elif layer.kind == "slice":
            t = self.op("STRIDED_SLICE", ins, shape, offset=layer.offset, layer=layer.name)
        else:
            t = self.op(OPS[layer.kind], ins, shape, layer=layer.name)
        self.tensor_of[layer.name] = t
        return t

    def shape(self, tensor: str) -> Shape:
        return self.g.graph["tensors"][tensor]


def _slice_sizes(total: int, slices: int) -> list[int]:
    slices = min(slices, total)
    return [total // slices + (1 if i < total % slices else 0) for i in range(slices)]


def _sliced_inverted_residual(b: _Builder, expand: Layer, depthwise: Layer, project: Layer, slices: int) -> None:
    """Expansion, depthwise and projection as channel slices accumulating into one output (§5.3)."""
    x = b.tensor_of[expand.inputs[0]]
    y = None
    for part in _slice_sizes(expand.channels_out, slices):
        e = b.layer(expand, channels_out=part, inputs=[x])
        d = b.layer(depthwise, channels_in=part, inputs=[e])
        first = y is None
        y = b.layer(project, channels_in=part, inputs=[d] if first else [d, y], out=None if first else y)
    b.tensor_of[project.name] = y


def build_graph(arch: Arch, slices: int = 1) -> nx.DiGraph:
    """The op graph of ``arch`` as the int8 exporter lays it out (see module doc)."""
    b = _Builder(arch)
    walk = layers(arch)
    for layer in walk:
        if slices > 1 and layer.name.endswith("_expand"):
            _sliced_inverted_residual(b, layer, next(walk), next(walk), slices)
        else:
            b.layer(layer)
    b.g.graph["output"] = b.tensor_of["softmax"]
    return b.g


def tensor_bytes(shape: Shape, bytes_per_element: int = 1) -> int:
    """Size of an activation tensor; int8 activations are one byte each."""
    h, w, c = shape
    return h * w * c * bytes_per_element
