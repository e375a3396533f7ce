"""The cost model against hand-computed MACs, parameters and paper peaks."""

import pytest

from mcunas.arch import parse_arch
from mcunas.cost import estimate
from mcunas.cost.boards import BOARDS
from mcunas.cost.graph import build_graph
from mcunas.presets import preset_arch


def _layer_costs(rows):
    """Hand tables: (kind, out_hw, cin, cout, k) -> (MACs, folded params)."""
    macs = params = 0
    for kind, hw, cin, cout, k in rows:
        if kind == "conv":
            macs += hw * hw * k * k * cin * cout
            params += k * k * cin * cout + cout
        elif kind == "dw":
            macs += hw * hw * k * k * cin
            params += k * k * cin + cin
        elif kind == "fc":
            macs += cin * cout
            params += cin * cout + cout
    return macs, params


def test_mobilenet_v1_025_96_matches_the_hand_count_and_the_paper():
    # MobileNetV1 α0.25 at 96x96x3: stem, 13 DS blocks (dw + pw), classifier.
    rows = [("conv", 48, 3, 8, 3)]
    ds = [(48, 8, 16), (24, 16, 32), (24, 32, 32), (12, 32, 64), (12, 64, 64), (6, 64, 128)]
    ds += [(6, 128, 128)] * 5 + [(3, 128, 256), (3, 256, 256)]
    for hw, cin, cout in ds:
        rows += [("dw", hw, cin, cin, 3), ("conv", hw, cin, cout, 1)]
    rows.append(("fc", 1, 256, 2, 1))
    macs, params = _layer_costs(rows)
    assert macs == 7_489_664  # the figure measured for the MLPerf reference net
    costs = estimate(preset_arch("mlperf-vww"))
    assert costs["macs"] == macs
    assert costs["params"] == params == 210_850
    assert costs["keras_params"] == 219_058  # Keras' count with BatchNorm unfolded
    assert costs["weight_bytes"] == 210_850
    # Paper rule peak: pointwise 48x48x8 -> 48x48x16.
    assert costs["sram_paper_bytes"] == 48 * 48 * 8 + 48 * 48 * 16 == 55_296


def test_mobilenet_v2_035_96_matches_the_hand_count_and_the_paper():
    arch = preset_arch("mobilenet-v2-0.35-96")
    # stem 8 (paper), blocks: (t, c, n, s) after width 0.35 with divisor 8, head 1x1 448.
    rows = [("conv", 48, 3, 8, 3)]
    hw, cin = 48, 8
    for t, c, n, s in [(1, 8, 1, 1), (6, 8, 2, 2), (6, 16, 3, 2), (6, 24, 4, 2), (6, 32, 3, 1),
                       (6, 56, 3, 2), (6, 112, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            out_hw = -(-hw // stride)
            hidden = cin * t
            if t > 1:
                rows.append(("conv", hw, cin, hidden, 1))
            rows += [("dw", out_hw, hidden, hidden, 3), ("conv", out_hw, hidden, c, 1)]
            hw, cin = out_hw, c
    rows += [("conv", hw, cin, 448, 1), ("fc", 1, 448, 2, 1)]
    macs, params = _layer_costs(rows)
    costs = estimate(arch)
    assert costs["macs"] == macs == 9_005_360
    assert costs["params"] == params
    # Paper rule: block 2's depthwise, 48x48x48 in -> 24x24x48 out.
    assert costs["sram_paper_bytes"] == 48 * 48 * 48 + 24 * 24 * 48 == 138_240


RESIDUAL = "in_r8_c16-ir_k5_s1_e3_c16-gap-fc_c2"  # one MNasNet-style MBConv with its skip


def test_one_residual_mnasnet_block_by_hand():
    costs = estimate(parse_arch(RESIDUAL))
    # expand 16->48, depthwise 5x5 on 48, project 48->16, fc 16->2, all at 8x8
    assert costs["macs"] == 64 * 16 * 48 + 64 * 25 * 48 + 64 * 48 * 16 + 16 * 2 == 175_136
    assert costs["params"] == (16 * 48 + 48) + (25 * 48 + 48) + (48 * 16 + 16) + (16 * 2 + 2) == 2_882
    # During the depthwise: its input (3072) + output (3072) + the block input kept for the add (1024).
    assert costs["sram_paper_bytes"] == 3072 + 3072 + 1024


def test_without_the_skip_the_block_input_is_not_kept_alive():
    costs = estimate(parse_arch(RESIDUAL.replace("c16-gap", "c16_noskip-gap")))
    assert costs["sram_paper_bytes"] == 3072 + 3072


def test_split_path_slices_lower_the_paper_peak_by_hand():
    # Two slices of 24 channels: the second depthwise holds its slice in and out (1536 each),
    # the block input (1024) and the projection accumulator (1024).
    costs = estimate(parse_arch(RESIDUAL), mbv2_slices=2)
    assert costs["sram_paper_bytes"] == 1536 + 1536 + 1024 + 1024
    assert costs["macs"] == 175_136  # slicing moves memory, not work


def test_six_slices_on_mobilenet_v2_move_the_peak_away_from_the_expansion():
    costs = estimate(preset_arch("mobilenet-v2-0.35-96"), mbv2_slices=6)
    # Sliced, block 2's depthwise holds 48x48x8 in, 24x24x8 out, the block input 48x48x8 and the
    # 24x24x8 accumulator: 46,080, a tie with the stem (96x96x3 -> 48x48x8).
    assert costs["sram_paper_bytes"] == 48 * 48 * 8 * 2 + 24 * 24 * 8 * 2 == 96 * 96 * 3 + 48 * 48 * 8 == 46_080


def test_graph_is_in_execution_order_with_exporter_ops():
    g = build_graph(parse_arch(RESIDUAL))
    assert [g.nodes[n]["op"] for n in g] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert g.has_edge(0, 1) and g.nodes[3]["inputs"] == ["input", "t2"]


def test_latency_comes_with_runtime_and_band_and_scales_with_the_clock():
    arch = preset_arch("mlperf-vww")
    f746 = estimate(arch, board=BOARDS["nucleo-f746zg"], deployable=False)
    assert f746["runtime"] == "tflm-cmsis-nn"
    assert f746["latency_low_ms"] < f746["latency_ms"] < f746["latency_high_ms"]
    # Same core, same cycles: milliseconds go with 1/clock (imxrt1060 runs its M7 at 600 MHz).
    rt1060 = estimate(arch, board=BOARDS["imxrt1060"], deployable=False)["latency_ms"]
    assert rt1060 == pytest.approx(f746["latency_ms"] * 216 / 600, rel=1e-3)


SHUFFLE = "in_r8_c16-sf_k3_s2_c16-sf_k3_s1_c16-gap-fc_c2"  # one down-sampling and one basic unit


def test_shufflenet_units_by_hand():
    costs = estimate(parse_arch(SHUFFLE))
    # down-sampling: dw 3x3/2 on 16 + pw 16->8 (4x4); pw1 16->8 (8x8), dw 3x3/2 on 8, pw2 8->8 (4x4)
    # basic: pw1 8->8, dw 3x3 on 8, pw2 8->8 (4x4); classifier 16->2
    down = 16 * 9 * 16 + 16 * 16 * 8 + 64 * 16 * 8 + 16 * 9 * 8 + 16 * 8 * 8
    basic = 16 * 8 * 8 + 16 * 9 * 8 + 16 * 8 * 8
    assert costs["macs"] == down + basic + 16 * 2 == 17_952
    assert costs["params"] == (9 * 16 + 16) + (16 * 8 + 8) * 2 + (9 * 8 + 8) + (8 * 8 + 8) \
        + (8 * 8 + 8) * 2 + (9 * 8 + 8) + (16 * 2 + 2) == 842
    # Peak at the second branch's first 1x1: its input (the unit input, 8x8x16, counted once though
    # both branches read it) + its output 8x8x8 + the first branch's finished 4x4x8 output.
    assert costs["sram_paper_bytes"] == 1024 + 512 + 128


def test_shufflenet_graph_has_the_converters_ops_in_its_order():
    g = build_graph(parse_arch(SHUFFLE))
    assert [g.nodes[n]["op"] for n in g] == [
        "DEPTHWISE_CONV_2D", "CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "CONCATENATION",
        "STRIDED_SLICE", "STRIDED_SLICE", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "CONCATENATION",
        "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert g.nodes[5]["inputs"] == ["t1", "t4"] and g.nodes[11]["inputs"] == ["t6", "t10"]
    assert (g.nodes[6]["offset"], g.nodes[7]["offset"]) == (0, 1)
