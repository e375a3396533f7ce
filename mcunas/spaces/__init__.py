"""Search spaces: YAML files in ``search_spaces/`` sampled define-by-run.

A space file lists, per dimension, either a fixed value or a list of choices
whose first entry is the reference network's value (see
``search_spaces/mobilenet_v1.yaml`` for the reading rules).  :func:`sample_arch`
walks the file and asks a trial for every listed dimension, so the very same
code serves an Optuna ``Trial`` during a search, a seeded random study in
``mcunas sample``, and :class:`ReferenceTrial` for the presets.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from mcunas.arch import ACTIVATIONS, BLOCK_KINDS, Arch, Block, validate
from mcunas.errors import UserError, did_you_mean
from mcunas.yaml_input import read_yaml

SPACES_DIR = Path(str(resources.files(__name__).joinpath("search_spaces")))
"""The shipped spaces.  In a checkout ``mcunas/spaces/search_spaces`` is a link to the top-level
``search_spaces/`` (the one copy people edit); a wheel holds the files themselves (package data)."""


class SuggestsCategorical(Protocol):
    """The one part of ``optuna.Trial`` a space needs."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Space:
    """A parsed space file; ``spec`` is the YAML mapping as written."""

    name: str
    path: Path
    spec: dict


def available_spaces() -> list[str]:
    """Names of the space files shipped in ``search_spaces/``."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def load_space(name_or_path: str) -> Space:
    """Load a space by name (``mobilenet_v2``) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SPACES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise UserError(
            f"unknown search space '{name_or_path}'{did_you_mean(name_or_path, available_spaces())}: choose one of {', '.join(available_spaces())} "
            "or give the path to a space YAML file"
        )
    spec = read_yaml(path, f"search space {path}")
    check_spec(spec, path)
    return Space(name=spec.get("name", path.stem), path=path, spec=spec)


_KINDS = {
    "int": (lambda v: type(v) is int, "a whole number"),
    "count": (lambda v: type(v) is int and v >= 1, "a whole number, at least 1"),
    "number": (lambda v: type(v) in (int, float), "a number"),
    "bool": (lambda v: type(v) is bool, "true or false"),
    "channels": (lambda v: type(v) is int or v == "scaled", "a whole number or 'scaled'"),
    "block": (lambda v: v in BLOCK_KINDS, f"one of {', '.join(BLOCK_KINDS)}"),
    "activation": (lambda v: v in ACTIVATIONS, f"one of {', '.join(ACTIVATIONS)}"),
    "text": (lambda v: type(v) is str, "text"),
}

# Every key sample_arch reads, per section: (kind, searched: a list of choices is allowed, required).
# Other keys (description, comments' companions) are free.
_RULES = {
    "": {"name": ("text", False, False), "width": ("number", True, True), "channel_divisor": ("count", False, False),
         "classes": ("int", False, False), "activation": ("activation", False, False)},
    "input": {"resolution": ("int", True, True), "channels": ("int", True, True)},
    "stem": {"k": ("int", False, True), "s": ("int", False, True), "c": ("channels", True, True),
             "base_c": ("int", False, False)},
    "stages": {"block": ("block", False, True), "c": ("number", False, True), "s": ("int", False, True),
               "n": ("int", True, True), "k": ("int", True, True), "e": ("int", True, False),
               "skip": ("bool", True, False)},
    "head": {"c": ("channels", True, True), "base_c": ("int", False, False)},
}


def check_spec(spec: Any, path: Path) -> None:
    """Refuse a space file with a missing key or a wrong-typed value in one line, at load time.

    Without this a typo surfaces as a KeyError or TypeError traceback, possibly
    only when a worker first draws the odd choice hours into a campaign.
    """
    def fail(problem: str):
        raise UserError(f"search space {path}: {problem} (see search_spaces/mobilenet_v1.yaml)")

    if not isinstance(spec, dict):
        fail("must be a mapping of sections (input, width, stem, stages, head)")
    for key in ("input", "stem", "stages", "head"):
        if key not in spec:
            fail(f"lacks the '{key}' section")
    stages = spec["stages"]
    if not isinstance(stages, list) or not stages:
        fail("'stages' must be a list of stages, one mapping each")
    sections = [("", "", spec), ("input", "input", spec["input"]), ("stem", "stem", spec["stem"]),
                ("head", "head", spec["head"])]
    sections += [("stages", f"stage {i}", stage) for i, stage in enumerate(stages, start=1)]
    for rules, name, section in sections:
        if not isinstance(section, dict):
            fail(f"{name} must be a mapping, got {section!r}")
        where = f" in {name}" if name else ""
        for key, (kind, searched, required) in _RULES[rules].items():
            if key not in section:
                if required:
                    fail(f"'{key}' is missing{where}")
                continue
            value = section[key]
            choices = value if searched and isinstance(value, list) else [value]
            test, words = _KINDS[kind]
            if not choices:
                fail(f"'{key}'{where} is an empty list: give at least one choice")
            for choice in choices:
                if not test(choice):
                    fail(f"'{key}'{where} must be {words}{' or a list of them' if searched else ''}, got {choice!r}")


class ReferenceTrial:
    """A stand-in trial that answers every dimension with its reference value.

    ``overrides`` pins chosen dimensions (e.g. ``{"width": 0.5}``); all others
    take the first listed choice.  Used for presets.
    """

    def __init__(self, overrides: dict[str, Any] | None = None):
        self.overrides = overrides or {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.overrides.get(name, choices[0])


class RandomTrial:
    """A seeded uniform sampler with the ``suggest_categorical`` surface.

    About 50× cheaper per candidate than an Optuna ``ask``/``tell`` (no
    storage round trips), for bulk exploration such as ``mcunas frontier``
    and the cost benchmark, where no sampler needs to learn anything.
    """

    def __init__(self, seed: int):
        import random

        self._rng = random.Random(seed)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._rng.choice(choices)


class RecordingTrial:
    """Wraps any trial and remembers the value it gave for each dimension asked.

    ``sample_arch`` only asks about dimensions with more than one choice, so
    ``params`` holds exactly the searched dimensions of one candidate (e.g.
    ``{"resolution": 96, "width": 0.25, "s2_n": 2}``): what ``mcunas frontier``
    tallies per value, and what ``Study.enqueue_trial`` takes.
    """

    def __init__(self, trial: SuggestsCategorical):
        self.trial = trial
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.params[name] = value = self.trial.suggest_categorical(name, choices)
        return value


def scale_channels(channels: float, divisor: int) -> int:
    """Round to the nearest multiple of ``divisor``, never losing more than 10 %.

    The rule of the MobileNetV2 reference code (``_make_divisible``), so widths
    like 0.35 give the channel counts users know from Keras Applications.
    """
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


def _choose(trial: SuggestsCategorical, name: str, value: Any) -> Any:
    """Ask the trial for a listed dimension; a fixed value is returned as is."""
    if isinstance(value, list):
        return value[0] if len(value) == 1 else trial.suggest_categorical(name, value)
    return value


def _resolve_channels(choice: Any, base: int, width: float, divisor: int, published: dict | None = None) -> int:
    if choice == "scaled":
        return _stage_channels(base, width, divisor, published)
    return int(choice)


def _stage_channels(base: int, width: float, divisor: int, published: dict | None) -> int:
    """``base`` × ``width`` rounded, unless the family publishes the count for this width.

    ShuffleNetV2's channel counts (Ma et al., 2018, Table 5: 48/96/192 at
    0.5×, 116/232/464 at 1×, 176/352/704 at 1.5×, 244/488/976 at 2×) are not
    a multiplier times a base, so its space lists them under ``published``.
    """
    for w, channels in (published or {}).items():
        if abs(float(w) - width) < 1e-9:
            return int(channels)
    return scale_channels(base * width, divisor)


def sample_arch(space: Space, trial: SuggestsCategorical) -> Arch:
    """Build one architecture of ``space``, asking ``trial`` for every choice.

    Parameter names are stable (``resolution``, ``width``, ``stem_c``,
    ``s2_n``, ``s2_k``, ``s2_e``, ``s2_skip``, ``head_c``...) so studies can
    be compared and resumed.
    """
    spec = space.spec
    divisor = int(spec.get("channel_divisor", 8))
    resolution = int(_choose(trial, "resolution", spec["input"]["resolution"]))
    in_channels = int(_choose(trial, "in_channels", spec["input"]["channels"]))
    width = float(_choose(trial, "width", spec["width"]))

    stem = spec["stem"]
    stem_c = _resolve_channels(_choose(trial, "stem_c", stem["c"]), stem.get("base_c", 32), width, divisor)
    blocks = [Block("cv", int(stem["k"]), int(stem["s"]), stem_c)]
    if "pool" in spec:  # a max pool after the stem (ShuffleNet)
        blocks.append(Block("mp", int(spec["pool"]["k"]), int(spec["pool"]["s"]), 0))
    for i, stage in enumerate(spec["stages"], start=1):
        repeats = int(_choose(trial, f"s{i}_n", stage["n"]))
        kernel = int(_choose(trial, f"s{i}_k", stage["k"]))
        expand = int(_choose(trial, f"s{i}_e", stage.get("e", 1)))
        skip = bool(_choose(trial, f"s{i}_skip", stage.get("skip", True)))
        if repeats == 0:
            continue
        channels = _stage_channels(stage["c"], width, divisor, stage.get("published"))
        blocks.append(Block(stage["block"], kernel, int(stage["s"]), channels, expand, repeats, skip))
    head = spec["head"]
    head_c = _resolve_channels(_choose(trial, "head_c", head["c"]), head.get("base_c", 1280), width, divisor,
                               head.get("published"))
    if head_c:
        blocks.append(Block("cv", 1, 1, head_c))
    arch = Arch(
        resolution=resolution,
        in_channels=in_channels,
        blocks=tuple(blocks),
        classes=int(spec.get("classes", 2)),
        activation=spec.get("activation", "relu"),
    )
    validate(arch)
    return arch


PAPER_RESOLUTIONS = (96, 128, 160, 192, 224)
"""The input resolutions the VWW paper benchmarks; presets are defined at these."""


def reference_choices(space: Space) -> list[dict[str, Any]]:
    """The space's reference network at each listed width and each of the paper's resolutions it lists.

    Other choices take their reference values.  What a new study is seeded
    with; pass each to :class:`ReferenceTrial`.
    """
    def listed(value):
        return value if isinstance(value, list) else [value]

    resolutions = [r for r in listed(space.spec["input"]["resolution"]) if r in PAPER_RESOLUTIONS]
    return [{"width": w, "resolution": r} for w in listed(space.spec["width"]) for r in resolutions]


def sample_strings(space: Space, n: int, seed: int) -> list[str]:
    """``n`` reproducible random members of ``space`` via a seeded Optuna study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(str(sample_arch(space, trial)))
        study.tell(trial, 0.0)
    return out
