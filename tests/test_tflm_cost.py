"""The TFLM arena and file-size model, without TensorFlow (fast tests)."""

import subprocess
import sys

import pytest

from conftest import assert_one_line_error, run_cli
from mcunas.arch import parse_arch
from mcunas.cost import estimate
from mcunas.cost.flatbuffer import read_tflite
from mcunas.cost.graph import build_graph
from mcunas.cost.tflite_graph import arch_tflite_model
from mcunas.cost.tflite_stats import tflite_macs
from mcunas.cost.tflm_arena import predict_arena
from mcunas.cost.tflm_planner import Buffer, peak_bytes, plan_offsets
from mcunas.errors import UserError
from mcunas.presets import preset_arch


def test_planner_places_largest_first_and_breaks_ties_by_later_buffer():
    # a (0-1) and c (2-3) never overlap; b overlaps both.  Largest first: b at 0,
    # then the equal-size a and c — TFLM takes the *later* one (c) first.
    buffers = [Buffer(32, 0, 1), Buffer(48, 1, 2), Buffer(32, 2, 3)]
    assert plan_offsets(buffers) == [48, 0, 48]
    assert peak_bytes(buffers) == 80


def test_planner_fills_a_gap_between_placed_buffers():
    buffers = [Buffer(64, 0, 5), Buffer(16, 0, 0), Buffer(64, 1, 5), Buffer(16, 3, 3)]
    # Later 64 first (at 0), then the other at 64.  The 16 alive at scope 0
    # only overlaps the 64 at offset 64, so it fills the gap below it at 0;
    # the 16 alive at scope 3 overlaps both 64s and goes on top.
    assert plan_offsets(buffers) == [64, 0, 0, 128]


def test_mlperf_reference_arena_predicted_from_the_file(shared_models):
    model = read_tflite((shared_models / "mlperf_vww_96_int8.tflite").read_bytes())
    predicted = predict_arena(model)
    # measured with the tflite-micro pip package: 103,672 = 73,728 head + 29,944 tail
    assert abs(predicted["sram_tflm_bytes"] - 103_672) <= 0.01 * 103_672
    assert predicted["tflm_head_bytes"] == 73_728
    assert tflite_macs(model) == 7_489_664


def test_estimate_tflite_cli(shared_models):
    proc = run_cli("estimate", "--tflite", shared_models / "mlperf_vww_96_int8.tflite", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"sram_tflm_bytes": 103672' in proc.stdout
    assert "AVERAGE_POOL_2D x1" in proc.stdout


def test_estimate_tflite_rejects_a_non_flatbuffer(tmp_path):
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model at all")
    assert_one_line_error(run_cli("estimate", "--tflite", bad), "not a TensorFlow Lite flatbuffer")


def test_synthesised_structure_matches_the_cost_graph():
    arch = preset_arch("mobilenet-v2-0.35-96")
    model = arch_tflite_model(arch)
    graph = build_graph(arch)
    assert [o.op for o in model.operators] == [graph.nodes[n]["op"] for n in sorted(graph.nodes)]
    assert tflite_macs(model) == estimate(arch)["macs"]
    # input, 3 tensors per conv/depthwise, one per ADD, MEAN 2, FC 3, SOFTMAX 1
    ops = [o.op for o in model.operators]
    convs = ops.count("CONV_2D") + ops.count("DEPTHWISE_CONV_2D")
    assert len(model.tensors) == 1 + 3 * convs + ops.count("ADD") + 2 + 3 + 1


def test_residual_add_on_a_1x1_map_becomes_reshape_plus_add():
    arch = parse_arch("in_r32_c3-cv_k3_s2_c8-ir_k3_s2_e2_c8-ir_k3_s2_e2_c8-ir_k3_s2_e2_c8-"
                      "ir_k3_s2_e2_c8-ir_k3_s1_e2_c8-gap-fc_c2")
    ops = [o.op for o in arch_tflite_model(arch).operators]
    assert ops[-5:] == ["RESHAPE", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert ops.count("RESHAPE") == 1 and ops.count("ADD") == 1


def test_estimate_reports_deployable_figures():
    costs = estimate(preset_arch("mlperf-vww"))
    assert costs["sram_tflm_bytes"] > costs["sram_paper_bytes"] == 55_296
    assert costs["tflite_bytes"] > costs["weight_bytes"]


def test_unknown_op_is_named():
    from mcunas.cost.flatbuffer import Operator, Tensor, TfliteModel
    from mcunas.cost.tflm_arena import tail_bytes

    t = Tensor("x", (1, 4), "int8", 0)
    model = TfliteModel([t, t], [Operator("LOGISTIC", [0], [1], {})], [0], [1], [], 0)
    with pytest.raises(UserError, match="LOGISTIC"):
        tail_bytes(model)


def test_cost_package_never_imports_tensorflow():
    code = ("import sys, mcunas.cost, mcunas.cost.tflm_arena, mcunas.cost.tflite_size; "
            "from mcunas.cli import estimate; "
            "assert 'tensorflow' not in sys.modules and 'tflite_micro' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("text, measured_bytes", [
    ("in_r16_c3-cv_k3_s2_c8-sf_r9_k3_s2_c16-sf_r6_k3_s2_c32-gap-fc_c2", 36_672),  # head 1,280 + tail 26,176
    ("in_r16_c1-cv_k3_s2_c8-ds_r9_k3_s1_c8-gap-fc_c2", 10_456),  # head 1,024 + tail 7,224
])
def test_deep_narrow_models_need_more_head_for_planning_than_for_activations(text, measured_bytes):
    """TFLM's planning temporaries, not the planned activations, set these arenas (smallest arena measured
    with the tflite-micro pip package on the exported model); the prediction stays at or above it."""
    predicted = predict_arena(arch_tflite_model(parse_arch(text)))
    assert predicted["tflm_planning_bytes"] > predicted["tflm_head_bytes"]
    assert measured_bytes <= predicted["sram_tflm_bytes"] <= measured_bytes + 24
