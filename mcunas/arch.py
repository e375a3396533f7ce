"""Architecture strings: the one grammar every part of mcunas speaks.

An architecture is a readable one-liner, in the spirit of timm's
``ir_r2_k3_s2_e6_c24`` block strings, that spells out the whole network:
input, stem, every block and the head.  Tokens are joined by ``-``; inside a
token, options are joined by ``_``.  The string is what ``estimate``,
``export``, the study's trial attributes and every report show, so a person
can paste a winner straight from a report into another command.

Example (the MLPerf Tiny VWW reference, preset ``mlperf-vww``)::

    in_r96_c3-cv_k3_s2_c8-ds_k3_s1_c16-ds_k3_s2_c32-ds_k3_s1_c32-ds_k3_s2_c64-
    ds_k3_s1_c64-ds_k3_s2_c128-ds_r5_k3_s1_c128-ds_k3_s2_c256-ds_k3_s1_c256-gap-fc_c2

Tokens (in this order):

``in_r<R>_c<C>[_relu6]``
    Input of R×R pixels with C channels (3 = RGB, 1 = grayscale).  The
    activation used by every block is ReLU, or ReLU6 with ``_relu6``.
``cv_k<K>_s<S>_c<C>``
    Convolution K×K, stride S, C output channels, with BatchNorm and the
    activation (the stem, or a 1×1 head conv).
``ds[_r<N>]_k<K>_s<S>_c<C>``
    MobileNetV1 depthwise-separable block: depthwise K×K stride S, then a
    pointwise conv to C channels, each with BatchNorm and the activation.
    Never residual.
``ir[_r<N>]_k<K>_s<S>_e<E>_c<C>[_noskip]``
    Inverted residual (MobileNetV2 / MNasNet MBConv without squeeze-excite):
    1×1 expansion to E× the input channels (left out when E is 1), depthwise
    K×K stride S, linear 1×1 projection to C channels.  It adds the block's
    input when the stride is 1 and the channels match, unless ``_noskip``.
``mp_k<K>_s<S>``
    Max pooling K×K, stride S (ShuffleNet's stem); channels pass through.
``sf[_r<N>]_k<K>_s<S>_c<C>``
    ShuffleNetV2 unit (Ma et al., 2018) with C output channels (C even) and
    depthwise kernel K.  With stride 2 the down-sampling unit: two branches
    read the whole input — 1×1 conv, depthwise K×K stride 2, 1×1 conv on
    one; depthwise K×K stride 2, 1×1 conv on the other — each to C/2
    channels, then concatenated.  With stride 1 the basic unit (input
    channels must equal C): the input's odd channels go through 1×1 conv,
    depthwise K×K, 1×1 conv; its even channels pass through; the two
    halves are concatenated.  Taking the even / odd channels *is* the
    paper's channel shuffle followed by its channel split, up to a fixed
    relabelling of channels that the 1×1 convs absorb (see
    :func:`layers`); it exports as two ``STRIDED_SLICE`` ops instead of
    ``RESHAPE``-``TRANSPOSE``-``RESHAPE``-``SPLIT``.  Depthwise convs are
    linear (BatchNorm only), the 1×1 convs use the activation.
``gap``
    Global average pooling.
``fc_c<N>``
    Fully connected classifier with N classes, followed by softmax.

``_r<N>`` repeats a block N times; only the first repeat uses stride S.
Numbers are ASCII digits within :data:`LIMITS` (resolution up to 1024,
channels and classes up to 4096, kernel up to 15, expansion up to 32,
repeats up to 64): generous for a microcontroller, and a typo such as
``ds_r1000000000`` is refused before anything is built.
Options may be written in any order; :func:`format_arch` writes the canonical
spelling (``r k s e c``, repeats only when above 1), and for every canonical
string ``format_arch(parse_arch(s)) == s``.

:func:`layers` walks an :class:`Arch` layer by layer.  It is the one place
that says which layers a block is made of and when a residual add follows;
the cost graph, the ``.tflite`` layout prediction and the Keras builder all
consume it, so they cannot describe three different networks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mcunas.errors import UserError

BLOCK_KINDS = ("cv", "ds", "ir", "mp", "sf")
ACTIVATIONS = ("relu", "relu6")

_OPTION = re.compile(r"^([a-z]+?)([0-9]+)$")  # [0-9], not \d: full-width digits are not numbers here

LIMITS = {
    "resolution": (1, 1024), "input channels": (1, 4096), "channels": (1, 4096), "classes": (2, 4096),
    "kernel": (1, 15), "stride": (1, 2), "expansion": (1, 32), "repeats": (1, 64),
}
"""Allowed range of every number in an architecture, by meaning (the CLI's help repeats them)."""

_MEANING = {"r": "repeats", "k": "kernel", "s": "stride", "e": "expansion", "c": "channels"}
_MEANING_IN = {("in", "r"): "resolution", ("in", "c"): "input channels", ("fc", "c"): "classes"}
_ALLOWED = {
    "in": {"r", "c"},
    "cv": {"k", "s", "c"},
    "ds": {"r", "k", "s", "c"},
    "ir": {"r", "k", "s", "e", "c"},
    "mp": {"k", "s"},
    "sf": {"r", "k", "s", "c"},
    "fc": {"c"},
}
_REQUIRED = {
    "in": {"r", "c"},
    "cv": {"k", "s", "c"},
    "ds": {"k", "s", "c"},
    "ir": {"k", "s", "e", "c"},
    "mp": {"k", "s"},
    "sf": {"k", "s", "c"},
    "fc": {"c"},
}
_FLAGS = {"in": {"relu6"}, "ir": {"noskip"}}


@dataclass(frozen=True)
class Block:
    """One block of the body: a conv, a depthwise-separable, an inverted residual, a max pool
    (``channels`` 0: they pass through) or a ShuffleNetV2 unit."""

    kind: str
    kernel: int
    stride: int
    channels: int
    expand: int = 1
    repeats: int = 1
    skip: bool = True

    def expanded(self) -> list["Block"]:
        """The block's repeats as single blocks (stride only on the first)."""
        first = Block(self.kind, self.kernel, self.stride, self.channels, self.expand, 1, self.skip)
        rest = Block(self.kind, self.kernel, 1, self.channels, self.expand, 1, self.skip)
        return [first] + [rest] * (self.repeats - 1)


@dataclass(frozen=True)
class Arch:
    """A whole network: input, blocks (stem first) and a classifier head."""

    resolution: int
    in_channels: int
    blocks: tuple[Block, ...]
    classes: int = 2
    activation: str = "relu"

    def __str__(self) -> str:
        return format_arch(self)


@dataclass(frozen=True)
class Layer:
    """One layer of the network as the exporter will run it (one TFLite op).

    ``name`` is the Keras layer name (``b3_dw``), unique in the network; later
    layers name the layers they read in ``inputs`` (``"input"`` is the image).
    ``kind`` is ``conv``, ``depthwise``, ``add``, ``maxpool``, ``slice``
    (every second channel from ``offset``: a ShuffleNet unit's half),
    ``concat``, ``gap``, ``fc`` or ``softmax``.  ``activation`` is the fused
    activation (``None`` for a linear layer).  ``size`` is the output's
    height and width.  ``block`` is the 1-based index of the (expanded) block
    it belongs to, 0 for the head.
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    channels_in: int
    channels_out: int
    size: int
    kernel: int = 1
    stride: int = 1
    activation: str | None = None
    block: int = 0
    offset: int = 0


def has_residual(block: Block, channels_in: int) -> bool:
    """The skip rule: a block adds its input when stride is 1, channels match and ``_noskip`` is absent."""
    return block.kind == "ir" and block.skip and block.stride == 1 and channels_in == block.channels


def layers(arch: Arch):
    """Yield every :class:`Layer` of ``arch`` in execution order, the head included.

    "Execution order" is the order of the converted ``.tflite``, which for
    the two-branch ShuffleNet units is not the order Keras runs them in (the
    converter sorts ops partly by their TensorFlow names): a down-sampling
    unit runs its depthwise-1×1 branch (``_down_``) first, then the
    1×1-depthwise-1×1 one; a basic unit takes both halves (``_even``,
    ``_odd``) first, so its input dies before the branch runs.  Measured on
    converted models; the cost graph, the arena model and the paper rule all
    follow it.

    Why a basic unit takes even / odd channels instead of shuffling and
    splitting in halves: the network is the same up to a relabelling of
    channels.  Every channel is born at the last 1×1 conv of some branch and
    is read by the branch of the unit whose split sends it there (its
    death); the two schemes give every stage the same count of channels per
    (birth conv, death unit), checked for every channel count up to 2,100 and
    up to 15 basic units (tests/test_arch.py), so reordering each conv's
    output channels maps one onto the other, and every reader of a channel
    set is a 1×1 conv or a per-channel op followed by one.
    """
    state = {"last": "input", "channels": arch.in_channels, "size": arch.resolution, "block": 0}

    def layer(name: str, kind: str, channels_out: int, kernel: int = 1, stride: int = 1,
              activation: str | None = arch.activation, inputs: tuple[str, ...] | None = None,
              offset: int = 0) -> Layer:
        size = 1 if kind == "gap" else -(-state["size"] // stride)  # global pooling leaves 1×1
        made = Layer(name, kind, inputs or (state["last"],), state["channels"], channels_out, size, kernel, stride,
                     activation, state["block"], offset)
        state.update(last=name, channels=channels_out, size=made.size)
        return made

    for blk in (single for block in arch.blocks for single in block.expanded()):
        state["block"] += 1
        b = f"b{state['block']}"
        block_input, cin, size = state["last"], state["channels"], state["size"]
        if blk.kind == "cv":
            yield layer(b, "conv", blk.channels, blk.kernel, blk.stride)
        elif blk.kind == "mp":
            yield layer(b, "maxpool", cin, blk.kernel, blk.stride, activation=None)
        elif blk.kind == "ds":
            yield layer(f"{b}_dw", "depthwise", cin, blk.kernel, blk.stride)
            yield layer(f"{b}_pw", "conv", blk.channels)
        elif blk.kind == "sf":
            half = blk.channels // 2
            if blk.stride == 1:  # basic unit: the even half passes, the odd half goes through the branch
                yield layer(f"{b}_even", "slice", half, activation=None)
                passed = state["last"]
                state.update(last=block_input, channels=cin)
                yield layer(f"{b}_odd", "slice", half, activation=None, offset=1)
            else:  # down-sampling unit: both branches read the whole input
                yield layer(f"{b}_down_dw", "depthwise", cin, blk.kernel, blk.stride, activation=None)
                yield layer(f"{b}_down_pw", "conv", half)
                passed = state["last"]
                state.update(last=block_input, channels=cin, size=size)
            yield layer(f"{b}_pw1", "conv", half)
            yield layer(f"{b}_dw", "depthwise", half, blk.kernel, blk.stride, activation=None)
            yield layer(f"{b}_pw2", "conv", half)
            yield layer(f"{b}_concat", "concat", blk.channels, activation=None, inputs=(passed, state["last"]))
        else:
            if blk.expand > 1:
                yield layer(f"{b}_expand", "conv", cin * blk.expand)
            yield layer(f"{b}_dw", "depthwise", state["channels"], blk.kernel, blk.stride)
            yield layer(f"{b}_project", "conv", blk.channels, activation=None)
            if has_residual(blk, cin):
                yield layer(f"{b}_add", "add", blk.channels, activation=None, inputs=(block_input, state["last"]))
    state["block"] = 0
    yield layer("gap", "gap", state["channels"], activation=None)
    yield layer("classifier", "fc", arch.classes, activation=None)
    yield layer("softmax", "softmax", arch.classes, activation=None)


def _format_block(b: Block) -> str:
    parts = [b.kind]
    if b.repeats > 1:
        parts.append(f"r{b.repeats}")
    parts += [f"k{b.kernel}", f"s{b.stride}"]
    if b.kind == "ir":
        parts.append(f"e{b.expand}")
    if b.kind != "mp":
        parts.append(f"c{b.channels}")
    if b.kind == "ir" and not b.skip:
        parts.append("noskip")
    return "_".join(parts)


def format_arch(arch: Arch) -> str:
    """Write an :class:`Arch` as its canonical one-line string."""
    head = f"in_r{arch.resolution}_c{arch.in_channels}"
    if arch.activation == "relu6":
        head += "_relu6"
    body = [_format_block(b) for b in arch.blocks]
    return "-".join([head, *body, "gap", f"fc_c{arch.classes}"])


def _parse_token(token: str, position: int) -> tuple[str, dict[str, int], set[str]]:
    """Split one token into its kind, numeric options and flags, checking each."""
    where = f"token {position} '{_shortened(token)}'"
    if not token.isascii():
        raise UserError(f"malformed architecture: {where}: write numbers with the digits 0-9 and names in a-z")
    kind, *options = token.split("_")
    if kind == "gap":
        if options:
            raise UserError(f"malformed architecture: {where}: 'gap' takes no options")
        return kind, {}, set()
    if kind not in _ALLOWED:
        raise UserError(
            f"malformed architecture: {where}: unknown kind '{kind}' "
            "(expected in, cv, ds, ir, mp, sf, gap or fc)"
        )
    values: dict[str, int] = {}
    flags: set[str] = set()
    for opt in options:
        if opt in _FLAGS.get(kind, set()):
            flags.add(opt)
            continue
        m = _OPTION.match(opt)
        if not m or m.group(1) not in _ALLOWED[kind]:
            allowed = ", ".join(sorted(_ALLOWED[kind] | _FLAGS.get(kind, set())))
            raise UserError(
                f"malformed architecture: {where}: unknown option '{opt}' for '{kind}' "
                f"(allowed: {allowed})"
            )
        name, number = m.group(1), _number(kind, m.group(1), m.group(2), where)
        if name in values:
            raise UserError(f"malformed architecture: {where}: option '{name}' given twice")
        values[name] = number
    missing = _REQUIRED[kind] - values.keys()
    if missing:
        raise UserError(
            f"malformed architecture: {where}: missing option(s) "
            f"{', '.join(sorted(missing))} for '{kind}'"
        )
    return kind, values, flags


def _shortened(text: str, most: int = 60) -> str:
    """``text`` cut to ``most`` characters for an error line (a pasted 5000-digit token stays readable)."""
    return text if len(text) <= most else text[:most - 3] + "..."


def _number(kind: str, option: str, digits: str, where: str) -> int:
    """An option's digits as an int; :func:`validate` checks the range.

    Past 9 digits the number is refused here: every limit is far below, and
    Python will not even convert 4300 digits.
    """
    if len(digits.lstrip("0")) > 9:
        raise UserError(_out_of_range(where, _MEANING_IN.get((kind, option), _MEANING[option]),
                                      f"a {len(digits)}-digit number"))
    return int(digits)


def _out_of_range(where: str, meaning: str, got) -> str:
    low, high = LIMITS[meaning]
    return f"impossible architecture: {where}: {meaning} must be {low}..{high}, got {got}"


def _check_range(where: str, meaning: str, value: int) -> None:
    """Only the upper end: :func:`validate` words each lower end itself (zero channels, no classes, ...)."""
    if value > LIMITS[meaning][1]:
        raise UserError(_out_of_range(where, meaning, value))


def parse_arch(text: str) -> Arch:
    """Decode an architecture string; the only place the grammar is read.

    Raises :class:`UserError` naming the offending token and the reason, both
    for malformed strings and for impossible networks (zero channels, a stride
    that would shrink a 1×1 tensor, an even kernel, ...).
    """
    tokens = text.strip().split("-")
    if len(tokens) < 4:
        raise UserError(
            f"malformed architecture '{_shortened(text)}': expected 'in_...-<blocks>-gap-fc_c<N>' "
            "(see `mcunas estimate --help`)"
        )
    parsed = [_parse_token(t, i + 1) for i, t in enumerate(tokens)]
    kinds = [p[0] for p in parsed]
    if kinds[0] != "in":
        raise UserError(f"malformed architecture: token 1 '{tokens[0]}': must be the input, e.g. in_r96_c3")
    if kinds[-2:] != ["gap", "fc"]:
        raise UserError(
            f"malformed architecture: the string must end with '-gap-fc_c<N>', got '-{tokens[-2]}-{tokens[-1]}'"
        )
    for i, kind in enumerate(kinds[1:-2], start=2):
        if kind not in BLOCK_KINDS:
            raise UserError(
                f"malformed architecture: token {i} '{tokens[i - 1]}': '{kind}' is only allowed "
                "at the start (in) or the end (gap, fc)"
            )
    _, inp, in_flags = parsed[0]
    blocks = tuple(
        Block(
            kind=kind,
            kernel=opts["k"],
            stride=opts["s"],
            channels=opts.get("c", 0),
            expand=opts.get("e", 1),
            repeats=opts.get("r", 1),
            skip="noskip" not in flags,
        )
        for kind, opts, flags in parsed[1:-2]
    )
    arch = Arch(
        resolution=inp["r"],
        in_channels=inp["c"],
        blocks=blocks,
        classes=parsed[-1][1]["c"],
        activation="relu6" if "relu6" in in_flags else "relu",
    )
    validate(arch, tokens)
    return arch


def validate(arch: Arch, tokens: list[str] | None = None) -> None:
    """Reject networks that cannot exist, naming the block and the reason."""

    def name(i: int) -> str:
        return f"token {i + 2} '{tokens[i + 1]}'" if tokens else f"block {i + 1} '{_format_block(arch.blocks[i])}'"

    if arch.resolution < 1 or arch.in_channels < 1:
        raise UserError("impossible architecture: the input needs a resolution and channels of at least 1")
    if arch.classes < 2:
        raise UserError("impossible architecture: the classifier needs at least 2 classes (fc_c2)")
    if arch.activation not in ACTIVATIONS:
        raise UserError(f"impossible architecture: unknown activation '{arch.activation}'")
    first = f"token 1 '{tokens[0]}'" if tokens else "the input"
    last = f"token {len(tokens)} '{tokens[-1]}'" if tokens else "the classifier"
    for where, meaning, value in ((first, "resolution", arch.resolution), (first, "input channels", arch.in_channels),
                                  (last, "classes", arch.classes)):
        _check_range(where, meaning, value)
    size, channels = arch.resolution, arch.in_channels
    for i, b in enumerate(arch.blocks):
        for meaning, value in (("channels", b.channels), ("kernel", b.kernel), ("expansion", b.expand),
                               ("repeats", b.repeats)):
            if not (meaning == "channels" and b.kind == "mp"):  # a max pool keeps its input's channels
                _check_range(name(i), meaning, value)
        if b.channels < 1 and b.kind != "mp":
            raise UserError(f"impossible architecture: {name(i)}: zero output channels")
        if b.kind == "sf" and b.channels % 2:
            raise UserError(f"impossible architecture: {name(i)}: a ShuffleNet unit needs an even channel count "
                            f"(two halves), got {b.channels}")
        if b.kind == "sf" and b.stride == 1 and channels != b.channels:
            raise UserError(f"impossible architecture: {name(i)}: a stride-1 ShuffleNet unit keeps its "
                            f"{channels} input channels, got c{b.channels} (use s2 to change channels)")
        if b.kernel < 1 or b.kernel % 2 == 0:
            raise UserError(f"impossible architecture: {name(i)}: kernel must be odd and positive, got {b.kernel}")
        if b.stride not in (1, 2):
            raise UserError(f"impossible architecture: {name(i)}: stride must be 1 or 2, got {b.stride}")
        if b.repeats < 1:
            raise UserError(f"impossible architecture: {name(i)}: repeats must be at least 1")
        if b.expand < 1:
            raise UserError(f"impossible architecture: {name(i)}: expansion must be at least 1")
        if b.stride == 2:
            if size < 2:
                raise UserError(
                    f"impossible architecture: {name(i)}: stride 2 on a {size}x{size} tensor makes it vanish "
                    "(raise the input resolution or use fewer stride-2 blocks)"
                )
            size = (size + 1) // 2
        channels = b.channels or channels
