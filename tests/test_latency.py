"""The latency model against the published measurements it ships with."""

import numpy as np
import pytest

from conftest import assert_one_line_error, cli_json, run_cli
from mcunas.arch import parse_arch
from mcunas.cost.boards import BOARDS, Board
from mcunas.cost.graph import build_graph
from mcunas.cost.latency import RUNTIMES, graph_work, latency_figures
from mcunas.cost.latency_fit import measurements, nnls, workloads
from mcunas.errors import UserError
from mcunas.presets import preset_arch
from mcunas.units import parse_latency_ms

VWW = build_graph(preset_arch("mlperf-vww"))


def test_graph_work_splits_the_mlperf_vww_macs_by_op_kind():
    work = graph_work(VWW)
    # 1x1 convs, the 3x3 stem, 13 depthwise convs and the classifier add up to the preset's 7,489,664 MACs.
    assert work["conv1x1"] == 6_193_152 and work["conv"] == 48 * 48 * 27 * 8 == 497_664
    assert work["depthwise"] == 798_336 and work["fc"] == 256 * 2
    assert sum(work[k] for k in ("conv1x1", "conv", "depthwise", "fc")) == 7_489_664
    assert work["op"] == 30  # 1 stem + 13 x (dw + pw) + mean + fc + softmax


def test_shipped_measurements_name_their_sources_and_compositions():
    rows = measurements()
    assert all(r.source and r.source_path and r.engine for r in rows)
    fit_rows = [r for r in rows if r.use == "fit"]
    assert len(fit_rows) == 53 and all(r.workload in workloads() for r in fit_rows)
    reference = next(r for r in rows if r.board == "nucleo-l4r5zi" and r.workload == "mlperf-vww"
                     and r.runtime == "tflm-cmsis-nn")
    assert reference.latency_ms == pytest.approx(1000 / 1.665, abs=0.05)  # MLPerf Tiny v0.5 reference
    resnet8 = workloads()["mlperf-ic-resnet8"]
    assert resnet8["conv"] + resnet8["conv1x1"] + resnet8["fc"] == 12_501_632  # ResNet-8 for CIFAR-10


def test_nnls_matches_a_hand_solved_problem():
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # Unconstrained least squares would make the second coefficient negative.
    x = nnls(a, np.array([2.0, -1.0, 1.0]))
    assert x == pytest.approx([1.5, 0.0])


@pytest.mark.parametrize("board, runtime, measured_ms", [
    ("disco-f746ng", "vendor", 59.40),        # Plumerai, MLPerf Tiny v0.7
    ("disco-f746ng", "vendor", 57.18),        # Bosch HALE, MLPerf Tiny v1.1
    ("nucleo-l4r5zi", "tflm-cmsis-nn", 600.6),  # MLPerf Tiny v0.5 reference, TFLM v2.3.1
    ("nucleo-u575zi", "vendor", 151.6),       # X-CUBE-AI 7.1.0, MLPerf Tiny v0.7
    ("nucleo-g0b1re", "vendor", 1869.0),      # Bosch HALE, MLPerf Tiny v1.1
])
def test_held_in_mlperf_vww_measurements_fall_inside_the_band(board, runtime, measured_ms):
    fig = latency_figures(VWW, BOARDS[board], runtime)
    assert fig["latency_low_ms"] <= measured_ms <= fig["latency_high_ms"]


def test_mlperf_vww_on_a_216mhz_m7_with_cmsis_nn_is_in_the_published_range():
    # TFLM + CMSIS-NN on a Cortex-M7 runs about 0.24-0.31 MACs per cycle: 112-144 ms at 216 MHz.
    ms = latency_figures(VWW, BOARDS["disco-f746ng"], "tflm-cmsis-nn")["latency_ms"]
    assert 7_489_664 / (0.31 * 216e3) <= ms <= 7_489_664 / (0.24 * 216e3)


@pytest.mark.parametrize("preset", ["mlperf-vww", "mobilenet-v2-0.35-128", "mnasnet-a1-0.5-160"])
def test_reference_kernels_are_slower_than_cmsis_nn_which_is_slower_than_vendor(preset):
    graph = build_graph(preset_arch(preset))
    for board in BOARDS.values():
        ms = {rt: latency_figures(graph, board, rt)["latency_ms"] for rt in RUNTIMES}
        assert ms["tflm-ref"] > ms["tflm-cmsis-nn"] > ms["vendor"], (board.name, ms)


@pytest.mark.parametrize("runtime", ["tflm-cmsis-nn", "vendor"])
def test_depthwise_share_changes_the_rate_per_mac(runtime):
    # Same widths and resolution: three 1x1 convs, or three 5x5-depthwise-separable blocks.
    pointwise = build_graph(parse_arch("in_r48_c64-cv_k1_s1_c64-cv_k1_s1_c64-cv_k1_s1_c64-gap-fc_c2"))
    separable = build_graph(parse_arch("in_r48_c64-ds_k5_s1_c64-ds_k5_s1_c64-ds_k5_s1_c64-gap-fc_c2"))
    board = BOARDS["disco-f746ng"]
    rate = {}
    for name, graph in (("pointwise", pointwise), ("separable", separable)):
        macs = sum(n["macs"] for _, n in graph.nodes(data=True))
        rate[name] = macs / (latency_figures(graph, board, runtime)["latency_ms"] * 216e3)
    # A depthwise MAC costs more cycles than a 1x1-conv MAC, so the separable net runs fewer MACs per cycle.
    assert rate["separable"] < 0.97 * rate["pointwise"]


def test_derived_core_without_measurements_still_gets_a_latency():
    m55 = Board("m55", "cortex-m55", 400, 512 * 1024, 1024**2, "test")
    m85 = Board("m85", "cortex-m85", 400, 512 * 1024, 1024**2, "test")
    assert latency_figures(VWW, m55)["latency_ms"] == pytest.approx(1.5 * latency_figures(VWW, m85)["latency_ms"],
                                                                    rel=1e-3)


def test_parse_latency_ms_needs_a_unit():
    assert parse_latency_ms("100ms") == 100
    assert parse_latency_ms("1.5s") == 1500
    assert parse_latency_ms("800us") == pytest.approx(0.8)
    with pytest.raises(UserError, match="needs a unit"):
        parse_latency_ms("100")
    with pytest.raises(UserError, match="negative"):
        parse_latency_ms("-5ms")


@pytest.mark.parametrize("runtime", ["vendor", "tflm-cmsis-nn", "tflm-ref"])
def test_estimate_cli_prints_latency_for_each_runtime(runtime):
    fig = cli_json("estimate", "--preset", "mlperf-vww", "--board", "nucleo-l4r5zi", "--runtime", runtime)
    assert fig["runtime"] == runtime and fig["latency_low_ms"] < fig["latency_ms"] < fig["latency_high_ms"]


def test_estimate_cli_refuses_bad_latency_input(tmp_path):
    assert_one_line_error(run_cli("estimate", "--preset", "mlperf-vww", "--board", "disco-f746ng",
                                  "--runtime", "tvm"), "unknown runtime 'tvm'")
    assert_one_line_error(run_cli("estimate", "--preset", "mlperf-vww", "--runtime", "vendor"),
                          "--runtime needs --board")
    boards = tmp_path / "boards.yaml"
    for text, fragment in (
        ("b: {core: cortex-m4, clock_mhz: fast, sram: 128KiB, flash: 512KiB}\n", "clock_mhz 'fast'"),
        ("b: {core: cortex-m4, sram: 128KiB, flash: 512KiB}\n", "needs core, clock_mhz"),
        ("b: {core: cortex-a53, clock_mhz: 1000, sram: 128KiB, flash: 512KiB}\n", "unknown core 'cortex-a53'"),
    ):
        boards.write_text(text)
        assert_one_line_error(run_cli("estimate", "--preset", "mlperf-vww", "--board", "b",
                                      "--boards-file", boards), fragment)


def test_bench_latency_reports_cross_validation_and_every_board():
    fig = cli_json("bench", "latency")
    overall = {r["runtime"]: r for r in fig["cross_validation"] if r["core"] == "all"}
    assert overall["vendor"]["cnn_n"] == 34 and overall["tflm-cmsis-nn"]["cnn_n"] == 9
    assert overall["vendor"]["cnn_median_error_pct"] < 30
    assert len(fig["mlperf_vww"]) == len(BOARDS) * len(RUNTIMES)
