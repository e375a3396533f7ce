"""Which supernet weights a member of a space uses: pure Python, no TensorFlow.

A supernet holds one set of weights for the space's largest member
(widest, deepest, largest kernels, expansions, stem and head) in *slots*:
``stem``, ``s<i>b<j>`` (block j of stage i, 0-based), ``head``, and two
classifiers, ``fc_head`` (after the 1×1 head conv) and ``fc_body`` (spaces
that can leave the head out: the classifier then reads the last stage, whose
features are nothing like the head's); a max pool after the stem
(ShuffleNet) is slot ``pool`` and has no weights.  A member uses the
leading blocks of each stage (depth), the leading output channels of every
conv (width, expansion, stem and head channels) and the centre of every
kernel (kernel size).  Behind a ShuffleNet unit's concatenation a channel's
place in the member is not its place in the supernet: which supernet
channel it is, :func:`mcunas.supernet.net.channel_ids` says.

:func:`member_slots` finds, from the architecture string alone, which slot
each of a member's blocks is: stages that a space lets vanish (``n: [1, 0]``)
make the block positions ambiguous, so the stages are matched against the
space file (kind, stride, kernel, expansion and repeat choices, and the
channel count at one width shared by all stages).  The string is all the
search, the bench and the finalists carry, so nothing else is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcunas.arch import Arch, Block
from mcunas.errors import UserError
from mcunas.spaces import Space, _resolve_channels, _stage_channels

SUPPORTED_BLOCKS = ("ds", "ir", "sf")


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Shape:
    """The largest member's dimensions: what the supernet's weights are sized for."""

    in_channels: int
    resolutions: tuple[int, ...]
    stem_kernel: int
    stem_stride: int
    stem_channels: int
    stages: tuple[Block, ...]  # per stage: kind, largest kernel, stride, widest channels, largest expansion, deepest,
    # and skip: whether some member's blocks of the stage add their input (the supernet's residual blocks)
    head_channels: int  # 0: no space member has a head conv
    head_optional: bool  # some members leave the head out (the classifier reads the last stage)
    classes: int
    activation: str


def check_supported(space: Space) -> None:
    """Refuse, in one line, a space whose stages the supernet cannot slice (stages of plain convs or max pools)."""
    kinds = {stage["block"] for stage in space.spec["stages"]}
    if not kinds <= set(SUPPORTED_BLOCKS):
        raise UserError(f"space '{space.name}' has stages of {', '.join(sorted(kinds - set(SUPPORTED_BLOCKS)))} "
                        "blocks: the supernet supports stages of ds, ir and sf blocks (mobilenet_v1, mobilenet_v2, "
                        "mnasnet, shufflenet_v2); search this space with ordinary training (no --supernet)")


def largest_shape(space: Space) -> Shape:
    """The dimensions of the space's largest member, each at its largest choice."""
    check_supported(space)
    spec = space.spec
    divisor = int(spec.get("channel_divisor", 8))
    widths = [float(w) for w in _listed(spec["width"])]
    stem, head = spec["stem"], spec["head"]

    def most(choices, base, published=None):
        return max(_resolve_channels(c, base, w, divisor, published) for c in _listed(choices) for w in widths)

    stages = tuple(
        Block(stage["block"], max(_listed(stage["k"])), int(stage["s"]),
              max(_stage_channels(stage["c"], w, divisor, stage.get("published")) for w in widths),
              max(_listed(stage.get("e", 1))), max(_listed(stage["n"])), True in _listed(stage.get("skip", True)))
        for stage in spec["stages"])
    return Shape(
        in_channels=max(_listed(spec["input"]["channels"])),
        resolutions=tuple(sorted(int(r) for r in _listed(spec["input"]["resolution"]))),
        stem_kernel=int(stem["k"]), stem_stride=int(stem["s"]),
        stem_channels=most(stem["c"], stem.get("base_c", 32)),
        stages=stages,
        head_channels=most(head["c"], head.get("base_c", 1280), head.get("published")),
        head_optional=0 in _listed(head["c"]),
        classes=int(spec.get("classes", 2)),
        activation=spec.get("activation", "relu"),
    )


def member_slots(space: Space, arch: Arch) -> dict[int, str]:
    """Expanded block number (1-based, as :func:`mcunas.arch.layers` counts) -> slot name, for a member of ``space``.

    Raises :class:`UserError` when ``arch`` is not a member: the supernet has
    no weights for it.
    """
    check_supported(space)
    spec = space.spec
    divisor = int(spec.get("channel_divisor", 8))
    stages = spec["stages"]
    blocks = list(arch.blocks)
    pool = spec.get("pool")
    lead = 2 if pool else 1  # the stem, and the max pool after it
    if pool and (len(blocks) < 2 or blocks[1] != Block("mp", int(pool["k"]), int(pool["s"]), 0)):
        blocks = []  # not a member: the space's max pool is missing
    head = blocks[-1] if len(blocks) > lead and blocks[-1].kind == "cv" else None
    body = blocks[lead:-1] if head else blocks[lead:]

    def fits(block: Block, stage: dict, width: float) -> bool:
        return (block.kind == stage["block"] and block.stride == int(stage["s"])
                and block.kernel in _listed(stage["k"]) and block.expand in _listed(stage.get("e", 1))
                and block.repeats in _listed(stage["n"]) and block.skip in _listed(stage.get("skip", True))
                and block.channels == _stage_channels(stage["c"], width, divisor, stage.get("published")))

    def match(i: int, j: int, width: float) -> list[int] | None:
        """Stage index of each body block from block i and stage j on, or None."""
        if i == len(body):
            return [] if all(0 in _listed(s["n"]) for s in stages[j:]) else None
        if j == len(stages):
            return None
        if fits(body[i], stages[j], width):
            rest = match(i + 1, j + 1, width)
            if rest is not None:
                return [j] + rest
        return match(i, j + 1, width) if 0 in _listed(stages[j]["n"]) else None

    for width in (float(w) for w in _listed(spec["width"])):
        found = match(0, 0, width)
        if found is not None and blocks and blocks[0].kind == "cv":
            slots, number = ({1: "stem", 2: "pool"}, 2) if pool else ({1: "stem"}, 1)
            for block, stage in zip(body, found):
                for j in range(block.repeats):
                    number += 1
                    slots[number] = f"s{stage + 1}b{j}"
            if head:
                slots[number + 1] = "head"
            return slots
    raise UserError(f"architecture '{arch}' is not a member of space '{space.name}': the supernet has weights "
                    "only for the space's members (sample them with `mcunas sample`)")


def extreme_arch(space: Space, largest: bool) -> Arch:
    """The space's largest member (every choice at its largest) or its smallest: the sandwich rule's two ends.

    Built from the space file's choices directly, then checked to be a member
    (:func:`member_slots`), since a trial cannot ask for "the largest" of
    choices such as ``[8, scaled, 16]`` whose sizes depend on the width.
    """
    spec = space.spec
    divisor = int(spec.get("channel_divisor", 8))
    pick = max if largest else min
    width = pick(float(w) for w in _listed(spec["width"]))
    stem, head = spec["stem"], spec["head"]
    blocks = [Block("cv", int(stem["k"]), int(stem["s"]),
                    pick(_resolve_channels(c, stem.get("base_c", 32), width, divisor) for c in _listed(stem["c"])))]
    if "pool" in spec:
        blocks.append(Block("mp", int(spec["pool"]["k"]), int(spec["pool"]["s"]), 0))
    for stage in spec["stages"]:
        repeats = pick(_listed(stage["n"]))
        if repeats:
            blocks.append(Block(stage["block"], pick(_listed(stage["k"])), int(stage["s"]),
                                _stage_channels(stage["c"], width, divisor, stage.get("published")),
                                pick(_listed(stage.get("e", 1))), repeats, _listed(stage.get("skip", True))[0]))
    head_c = pick(_resolve_channels(c, head.get("base_c", 1280), width, divisor, head.get("published"))
                  for c in _listed(head["c"]))
    if head_c:
        blocks.append(Block("cv", 1, 1, head_c))
    arch = Arch(pick(int(r) for r in _listed(spec["input"]["resolution"])),
                pick(int(c) for c in _listed(spec["input"]["channels"])), tuple(blocks),
                int(spec.get("classes", 2)), spec.get("activation", "relu"))
    member_slots(space, arch)
    return arch
