"""The architecture grammar: exact round trips and one-line errors that name the token."""

import pytest

from mcunas.arch import Arch, Block, format_arch, parse_arch
from mcunas.errors import UserError
from mcunas.presets import MLPERF_VWW, preset_arch, presets
from mcunas.spaces import available_spaces, load_space, sample_strings


def test_mlperf_preset_round_trips_and_decodes_every_layer():
    arch = parse_arch(MLPERF_VWW)
    assert format_arch(arch) == MLPERF_VWW
    assert (arch.resolution, arch.in_channels, arch.classes, arch.activation) == (96, 3, 2, "relu")
    layers = [b for block in arch.blocks for b in block.expanded()]
    assert len(layers) == 14  # stem + 13 depthwise-separable blocks, as in the MLPerf model
    assert [b.channels for b in layers] == [8, 16, 32, 32, 64, 64, 128, 128, 128, 128, 128, 128, 256, 256]
    assert [b.stride for b in layers] == [2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]


@pytest.mark.parametrize("name", ["mobilenet-v2-0.35-96", "mnasnet-a1-0.5-128", "mobilenet-v1-1-224"])
def test_every_preset_round_trips(name):
    text = presets()[name]
    assert format_arch(parse_arch(text)) == text


@pytest.mark.parametrize("space", available_spaces())
def test_sampled_strings_round_trip(space):
    for text in sample_strings(load_space(space), 40, seed=3):
        assert format_arch(parse_arch(text)) == text


def test_options_in_any_order_are_canonicalised():
    arch = parse_arch("in_c1_r64_relu6-cv_c8_s2_k3-ir_c16_e6_s1_k5_r2_noskip-gap-fc_c3")
    assert format_arch(arch) == "in_r64_c1_relu6-cv_k3_s2_c8-ir_r2_k5_s1_e6_c16_noskip-gap-fc_c3"
    assert arch.blocks[1] == Block("ir", kernel=5, stride=1, channels=16, expand=6, repeats=2, skip=False)


def test_arch_to_string_to_arch_is_identity():
    arch = Arch(80, 1, (Block("cv", 3, 2, 16), Block("ir", 3, 2, 24, 4, 3), Block("cv", 1, 1, 64)), 2, "relu6")
    assert parse_arch(str(arch)) == arch


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("in_r96_c3-cv_k3_x2_c8-gap-fc_c2", "token 2 'cv_k3_x2_c8': unknown option 'x2'"),
        ("in_r96_c3-zz_k3_s2_c8-gap-fc_c2", "unknown kind 'zz'"),
        ("in_r96_c3-cv_k3_c8-gap-fc_c2", "missing option(s) s"),
        ("cv_k3_s2_c8-in_r96_c3-gap-fc_c2", "must be the input"),
        ("in_r96_c3-cv_k3_s2_c8-fc_c2-gap", "must end with '-gap-fc_c<N>'"),
        ("in_r96_c3-cv_k3_s2_c0-gap-fc_c2", "zero output channels"),
        ("in_r96_c3-cv_k4_s2_c8-gap-fc_c2", "kernel must be odd"),
        ("in_r96_c3-cv_k3_s3_c8-gap-fc_c2", "stride must be 1 or 2"),
        ("in_r2_c3-cv_k3_s2_c8-cv_k3_s2_c8-gap-fc_c2", "makes it vanish"),
        ("in_r96_c3-cv_k3_s2_c8-gap-fc_c1", "at least 2 classes"),
        ("in_r96_c3-cv_k3_s2_c8-cv_k3_s2_c8_c8-gap-fc_c2", "given twice"),
    ],
)
def test_malformed_or_impossible_strings_say_which_token_and_why(text, fragment):
    with pytest.raises(UserError) as err:
        parse_arch(text)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("in_r96_c3-ds_r1000000000_k3_s1_c8-gap-fc_c2", "repeats must be 1..64, got a 10-digit number"),
        ("in_r96_c3-ds_r65_k3_s1_c8-gap-fc_c2", "token 2 'ds_r65_k3_s1_c8': repeats must be 1..64, got 65"),
        ("in_r96_c3-cv_k3_s2_c1000000000000-gap-fc_c2", "channels must be 1..4096, got a 13-digit number"),
        ("in_r96_c3-cv_k3_s2_c4097-gap-fc_c2", "channels must be 1..4096, got 4097"),
        ("in_r96_c3-cv_k3_s2_c" + "9" * 5000 + "-gap-fc_c2", "channels must be 1..4096, got a 5000-digit number"),
        ("in_r1025_c3-cv_k3_s2_c8-gap-fc_c2", "token 1 'in_r1025_c3': resolution must be 1..1024, got 1025"),
        ("in_r96_c5000-cv_k3_s2_c8-gap-fc_c2", "input channels must be 1..4096, got 5000"),
        ("in_r96_c3-cv_k17_s2_c8-gap-fc_c2", "kernel must be 1..15, got 17"),
        ("in_r96_c3-ir_k3_s2_e33_c8-gap-fc_c2", "expansion must be 1..32, got 33"),
        ("in_r96_c3-cv_k3_s2_c8-gap-fc_c5000", "token 4 'fc_c5000': classes must be 2..4096, got 5000"),
        ("in_r96_c3-cv_k3_s2_c\uff18-gap-fc_c2", "write numbers with the digits 0-9"),  # full-width 8
        ("in_r\u0669\u0666_c3-cv_k3_s2_c8-gap-fc_c2", "write numbers with the digits 0-9"),  # Arabic-Indic 96
    ],
)
def test_numbers_are_ascii_and_bounded(text, fragment):
    """A typo cannot build a 10 GB network or reach int()'s 4300-digit limit; the line stays short."""
    with pytest.raises(UserError) as err:
        parse_arch(text)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value) and len(str(err.value)) < 200


def test_the_limits_admit_every_space_and_preset():
    """The bounds are generous: the largest preset and a network at every upper limit parse."""
    assert parse_arch(presets()["mobilenet-v1-1-224"]).resolution == 224
    big = "in_r1024_c4096-ir_r64_k15_s1_e32_c4096-gap-fc_c4096"
    arch = parse_arch(big)
    assert (arch.resolution, arch.blocks[0].repeats, arch.blocks[0].expand) == (1024, 64, 32)


def test_unknown_preset_is_a_user_error():
    with pytest.raises(UserError, match="unknown preset 'mobilenet-v9'"):
        preset_arch("mobilenet-v9")


def test_layer_walk_is_the_one_skip_rule():
    """layers() names every op once, and adds a residual exactly when stride 1, channels match and no _noskip."""
    from mcunas.arch import layers

    arch = parse_arch("in_r32_c3-cv_k3_s2_c8-ir_k3_s1_e1_c8-ir_k3_s2_e6_c16-ir_r2_k5_s1_e6_c16"
                      "-ir_k3_s1_e6_c16_noskip-ir_k3_s1_e3_c24-gap-fc_c5")
    walk = list(layers(arch))
    names = [layer.name for layer in walk]
    assert len(names) == len(set(names))
    assert [layer.name for layer in walk if layer.kind == "add"] == ["b2_add", "b4_add", "b5_add"]
    assert walk[names.index("b4_add")].inputs == ("b3_project", "b4_project")
    assert "b2_expand" not in names  # expansion 1 has no expand conv
    assert walk[names.index("b3_expand")].channels_out == 48
    assert walk[names.index("b3_dw")].size == 8 and walk[names.index("b3_dw")].stride == 2
    assert walk[names.index("b3_project")].activation is None
    assert [(layer.kind, layer.channels_out, layer.size) for layer in walk[-3:]] == [
        ("gap", 24, 1), ("fc", 5, 1), ("softmax", 5, 1)]


def test_shufflenet_units_round_trip_and_walk_both_branches():
    from mcunas.arch import layers

    text = "in_r32_c3-cv_k3_s2_c24-mp_k3_s2-sf_r3_k5_s2_c48-cv_k1_s1_c128-gap-fc_c2"
    arch = parse_arch(text)
    assert format_arch(arch) == text
    assert arch.blocks[1] == Block("mp", 3, 2, 0) and arch.blocks[2] == Block("sf", 5, 2, 48, repeats=3)
    walk = {layer.name: layer for layer in layers(arch)}
    assert walk["b2"].kind == "maxpool" and (walk["b2"].channels_out, walk["b2"].size) == (24, 8)
    # down-sampling unit: two branches read the pool's output, each gives 24 channels at 4x4
    assert walk["b3_down_dw"].inputs == ("b2",) and walk["b3_pw1"].inputs == ("b2",)
    assert walk["b3_concat"].inputs == ("b3_down_pw", "b3_pw2") and walk["b3_concat"].channels_out == 48
    assert walk["b3_dw"].activation is None and walk["b3_pw2"].activation == "relu"
    # basic unit: even half passes, odd half goes through the branch
    assert (walk["b4_even"].offset, walk["b4_odd"].offset) == (0, 1)
    assert walk["b4_pw1"].inputs == ("b4_odd",) and walk["b4_concat"].inputs == ("b4_even", "b4_pw2")
    assert [walk[n].channels_out for n in ("b4_even", "b4_odd", "b4_pw1", "b4_concat")] == [24, 24, 24, 48]


@pytest.mark.parametrize("text, fragment", [
    ("in_r32_c3-cv_k3_s2_c24-sf_k3_s2_c45-gap-fc_c2", "even channel count"),
    ("in_r32_c3-cv_k3_s2_c24-sf_k3_s1_c48-gap-fc_c2", "keeps its 24 input channels"),
    ("in_r32_c3-cv_k3_s2_c24-mp_k3_s2_c8-gap-fc_c2", "unknown option 'c8' for 'mp'"),
])
def test_impossible_shufflenet_units_are_named(text, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_arch(text)


def _lifetimes(channels: int, units: int, even_odd: bool):
    """Count channels per (birth conv, death unit) through one stage (see arch.layers' docstring)."""
    from collections import Counter

    half = channels // 2
    x = [("left", i) for i in range(half)] + [("right", i) for i in range(half)]  # down-sampling unit
    interleave = lambda t: [t[j] for k in range(half) for j in (k, half + k)]  # noqa: E731  paper's shuffle
    x = x if even_odd else interleave(x)
    deaths = Counter()
    for unit in range(1, units + 1):
        passed, branch = (x[0::2], x[1::2]) if even_odd else (x[:half], x[half:])
        deaths.update((birth, unit) for birth, _ in branch)
        x = passed + [(f"unit{unit}", i) for i in range(half)]
        x = x if even_odd else interleave(x)
    deaths.update((birth, "end") for birth, _ in x)
    return deaths


@pytest.mark.parametrize("channels", [4, 6, 24, 48, 58, 116, 176, 244])
def test_even_odd_slices_are_the_papers_shuffle_and_split_up_to_channel_order(channels):
    for units in range(12):
        assert _lifetimes(channels, units, even_odd=True) == _lifetimes(channels, units, even_odd=False)
