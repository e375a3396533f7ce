"""Arch -> networkx DiGraph of the ops the int8 exporter produces.

The graph mirrors what TensorFlow Lite will run, not the Keras layer list:
batch fixed to 1, BatchNorm folded into conv biases, activations fused into
the conv, global average pooling as ``MEAN``, the classifier as
``FULLY_CONNECTED`` and a final ``SOFTMAX``.  Node ids are the execution
order; each node carries its op type, its input tensor names, its output
tensor name and the op's weights, biases and MACs.  Tensor shapes (H, W, C,
batch 1 implied) live in ``graph.graph["tensors"]`` so the memory rules can
work on tensors while networkx keeps the producer -> consumer structure.

``slices`` > 1 builds the paper's split-path variant of MobileNetV2 blocks
(§5.3): expansion, depthwise and projection run as that many channel slices,
each materialised only while it is computed, with the projection
accumulating into one output tensor.  Only the paper's SRAM rule uses it.
"""

from __future__ import annotations

import networkx as nx

from mcunas.arch import Arch, Block

Shape = tuple[int, int, int]


class _Builder:
    """Appends ops in execution order and names their output tensors."""

    def __init__(self, arch: Arch):
        self.g = nx.DiGraph(arch=arch, tensors={}, producer={})
        self.g.graph["tensors"]["input"] = (arch.resolution, arch.resolution, arch.in_channels)
        self.g.graph["input"] = "input"

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

    def shape(self, tensor: str) -> Shape:
        return self.g.graph["tensors"][tensor]


def _conv(b: _Builder, x: str, cout: int, kernel: int, stride: int, act: str | None) -> str:
    h, w, cin = b.shape(x)
    ho, wo = -(-h // stride), -(-w // stride)
    return b.op("CONV_2D", [x], (ho, wo, cout), weights=kernel * kernel * cin * cout, biases=cout,
                macs=ho * wo * kernel * kernel * cin * cout, kernel=kernel, stride=stride, activation=act)


def _depthwise(b: _Builder, x: str, kernel: int, stride: int, act: str | None) -> str:
    h, w, c = b.shape(x)
    ho, wo = -(-h // stride), -(-w // stride)
    return b.op("DEPTHWISE_CONV_2D", [x], (ho, wo, c), weights=kernel * kernel * c, biases=c,
                macs=ho * wo * kernel * kernel * c, kernel=kernel, stride=stride, activation=act)


def _slice_sizes(total: int, slices: int) -> list[int]:
    slices = min(slices, total)
    return [total // slices + (1 if i < total % slices else 0) for i in range(slices)]


def _inverted_residual(b: _Builder, x: str, blk: Block, act: str, slices: int) -> str:
    h, w, cin = b.shape(x)
    hidden = cin * blk.expand
    if slices > 1 and blk.expand > 1:
        y = None
        for part in _slice_sizes(hidden, slices):
            e = _conv(b, x, part, 1, 1, act)
            d = _depthwise(b, e, blk.kernel, blk.stride, act)
            ho, wo, _ = b.shape(d)
            first = y is None
            y = b.op("CONV_2D", [d] if first else [d, y], (ho, wo, blk.channels), weights=part * blk.channels,
                     biases=blk.channels if first else 0, macs=ho * wo * part * blk.channels,
                     kernel=1, stride=1, activation=None, out=y)
    else:
        e = _conv(b, x, hidden, 1, 1, act) if blk.expand > 1 else x
        d = _depthwise(b, e, blk.kernel, blk.stride, act)
        y = _conv(b, d, blk.channels, 1, 1, None)
    if blk.skip and blk.stride == 1 and cin == blk.channels:
        y = b.op("ADD", [x, y], b.shape(y))
    return y


def build_graph(arch: Arch, slices: int = 1) -> nx.DiGraph:
    """The op graph of ``arch`` as the int8 exporter lays it out (see module doc)."""
    b = _Builder(arch)
    x = "input"
    for block in arch.blocks:
        for blk in block.expanded():
            if blk.kind == "cv":
                x = _conv(b, x, blk.channels, blk.kernel, blk.stride, arch.activation)
            elif blk.kind == "ds":
                x = _depthwise(b, x, blk.kernel, blk.stride, arch.activation)
                x = _conv(b, x, blk.channels, 1, 1, arch.activation)
            else:
                x = _inverted_residual(b, x, blk, arch.activation, slices)
    c = b.shape(x)[2]
    x = b.op("MEAN", [x], (1, 1, c))
    x = b.op("FULLY_CONNECTED", [x], (1, 1, arch.classes), weights=c * arch.classes, biases=arch.classes,
             macs=c * arch.classes)
    x = b.op("SOFTMAX", [x], (1, 1, arch.classes))
    b.g.graph["output"] = x
    return b.g


def tensor_bytes(shape: Shape, bytes_per_element: int = 1) -> int:
    """Size of an activation tensor; int8 activations are one byte each."""
    h, w, c = shape
    return h * w * c * bytes_per_element
