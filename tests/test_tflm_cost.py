"""The TFLM arena and file-size model, without TensorFlow (fast tests)."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, assert_one_line_error, run_cli
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
    # measured with the tflite-micro pip package: 103,672 (head 73,728); predicted exactly
    assert predicted["sram_tflm_bytes"] == 103_672
    assert predicted["tflm_head_bytes"] == 73_728
    assert tflite_macs(model) == 7_489_664
    # 32-bit: same head, smaller tail (4-byte pointers, no compression fields)
    arm = predict_arena(model, "cortex-m")
    assert arm["tflm_head_bytes"] == 73_728
    assert arm["sram_tflm_bytes"] == 100_712


def test_estimate_tflite_cli(shared_models):
    proc = run_cli("estimate", "--tflite", shared_models / "mlperf_vww_96_int8.tflite", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"sram_tflm_bytes": 103672' in proc.stdout
    assert "AVERAGE_POOL_2D x1" in proc.stdout


DATA = Path(__file__).parent / "data" / "tflite"
# Smallest arena each loads in with the tflite-micro pip package (`mcunas measure FILE`).
MEASURED_ARENA_BYTES = {
    "op_fc_int8.tflite": 1_288,  # per-channel FULLY_CONNECTED: commit-time planner temporaries set the arena
    "op_mean_int8.tflite": 1_376,  # MEAN's three scratch buffers in the plan
    "op_softmax_int16.tflite": 3_136,  # int16 SOFTMAX: two 1,026 B lookup tables in the tail
    "sine_mlp_float_io.tflite": 2_416,  # float I/O: QUANTIZE / DEQUANTIZE around an int8 MLP
    "sum_float.tflite": 2_672,  # float32 SUM: two scratch requests (int8's third, the int32 sums, is absent)
    "lstm_float.tflite": 3_616,  # UNIDIRECTIONAL_SEQUENCE_LSTM: 688 B OpData, four 64 B float gate buffers
    "lstm_int8.tflite": 3_992,  # the same LSTM in int8 (int16 cell state): four 32 B gate buffers
    "lstm_16x8.tflite": 3_992,  # the same LSTM with int16 activations (MLIR quantizer route)
}


@pytest.mark.parametrize("name", sorted(MEASURED_ARENA_BYTES))
def test_prediction_is_never_below_the_measured_arena(name):
    measured = MEASURED_ARENA_BYTES[name]
    predicted = predict_arena(read_tflite((DATA / name).read_bytes()))["sram_tflm_bytes"]
    assert measured <= predicted <= measured + max(64, 0.01 * measured)


@pytest.mark.parametrize("name, predicted_bytes", [
    ("sum_float.tflite", 2_672), ("lstm_float.tflite", 3_616), ("lstm_int8.tflite", 3_992),
    ("lstm_16x8.tflite", 3_992), ("op_mean_int8.tflite", 1_376),
])
def test_lstm_and_reduce_models_are_predicted_exactly(name, predicted_bytes):
    """Measured with `mcunas measure` (MEASURED_ARENA_BYTES); the replay lands on the byte."""
    assert predict_arena(read_tflite((DATA / name).read_bytes()))["sram_tflm_bytes"] == predicted_bytes
    assert predicted_bytes == MEASURED_ARENA_BYTES[name]


def test_lstm_kernel_requests_four_gate_buffers_of_the_cell_state_size():
    """lstm_eval_common.cc: four scratch buffers of batch x state cells in the cell state's type
    (float32 in a float model, int16 in an int8 one), and the 24 inputs (absent ones skipped) plus
    the output as Prepare's temporaries."""
    from mcunas.cost.tflm_kernels import get_target, kernel_cost

    for name, cell_bytes in (("lstm_float.tflite", 16 * 4), ("lstm_int8.tflite", 16 * 2),
                             ("lstm_16x8.tflite", 16 * 2)):
        sg = read_tflite((DATA / name).read_bytes()).subgraphs[0]
        op = sg.operators[0]
        assert op.op == "UNIDIRECTIONAL_SEQUENCE_LSTM"
        cost = kernel_cost(sg, op, get_target("x86_64"))
        assert cost.scratch_bytes == [cell_bytes] * 4
        assert cost.temps == [i for i in op.inputs if i >= 0] + op.outputs and len(cost.temps) == 16
        assert cost.init_bytes == [688]


def test_reduce_scratch_requests_depend_on_the_input_type():
    """Read off the pip TFLM's planned head on one-op models: float32 SUM sums into its output (two
    scratch ints arrays: reduced axes, input dims); int8 MEAN adds an int32 sum per output element."""
    from mcunas.cost.tflm_kernels import get_target, kernel_cost

    sg = read_tflite((DATA / "sum_float.tflite").read_bytes()).subgraphs[0]
    assert kernel_cost(sg, sg.operators[0], get_target("x86_64")).scratch_bytes == [4, 16]
    sg = read_tflite((DATA / "op_mean_int8.tflite").read_bytes()).subgraphs[0]
    assert kernel_cost(sg, sg.operators[0], get_target("x86_64")).scratch_bytes == [4 * 6, 4 * 2, 4 * 4]


def test_lstm_macs_count_every_gate_matrix_per_time_step():
    model = read_tflite((DATA / "lstm_int8.tflite").read_bytes())
    # 8 steps x (4 gates x 16 cells x (5 inputs + 16 recurrent)) + the 16 -> 3 FC
    assert tflite_macs(model) == 8 * 4 * 16 * (5 + 16) + 16 * 3


def test_commit_temporaries_not_the_plan_set_small_arenas():
    from mcunas.cost.flatbuffer import Operator, Tensor, TfliteModel

    # One int8 FC 16 -> 4 (per-tensor): planned head 16 + 16, but committing the plan needs
    # the request buffer, 5 AllocationInfo structs and 40 B per planned buffer on top of it.
    tensors = [Tensor("x", (1, 16), "int8", 0, [0.1], [0]), Tensor("w", (4, 16), "int8", 1, [0.1], [0], True),
               Tensor("y", (1, 4), "int8", 0, [0.1], [0])]
    model = TfliteModel(tensors, [Operator("FULLY_CONNECTED", [0, 1, -1], [2], {})], [0], [2], [], 0)
    predicted = predict_arena(model)
    assert predicted["tflm_head_bytes"] == 32
    assert predicted["sram_tflm_bytes"] > predicted["tflm_head_bytes"] + predicted["tflm_tail_bytes"]


def test_cortex_m_tail_is_smaller_than_x86():
    model = read_tflite((DATA / "sine_mlp_float_io.tflite").read_bytes())
    x86, arm = predict_arena(model), predict_arena(model, "cortex-m")
    assert arm["tflm_head_bytes"] == x86["tflm_head_bytes"]
    assert arm["tflm_tail_bytes"] < x86["tflm_tail_bytes"]


def test_estimate_tflite_target_cli():
    proc = run_cli("estimate", "--tflite", DATA / "op_softmax_int16.tflite", "--target", "cortex-m", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"target": "cortex-m"' in proc.stdout and '"sram_tflm_bytes": 2616' in proc.stdout


def test_softmax_over_511_int8_classes_is_refused():
    from mcunas.tflm import softmax_abort_reason

    # 513 near-equal scores abort TFLM at invoke (measured); 512 run.
    reason = softmax_abort_reason((DATA / "softmax_513_classes_int8.tflite").read_bytes())
    assert reason and "513 classes" in reason
    assert softmax_abort_reason((DATA / "op_fc_int8.tflite").read_bytes()) is None


def test_ops_are_named_from_the_schema_table():
    from mcunas.cost.tflite_ops import op_name

    assert (op_name(77), op_name(117), op_name(44), op_name(124)) == (
        "SHAPE", "HARD_SWISH", "UNIDIRECTIONAL_SEQUENCE_LSTM", "DENSIFY")


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


def test_unknown_op_and_uint8_core_are_refused_by_name():
    from mcunas.cost.flatbuffer import Operator, Tensor, TfliteModel

    t = Tensor("x", (1, 4), "int8", 0, [0.1], [0])
    # TFLM has no BIDIRECTIONAL_SEQUENCE_LSTM kernel (its pip package registers only the unidirectional one)
    model = TfliteModel([t, t], [Operator("BIDIRECTIONAL_SEQUENCE_LSTM", [0], [1], {})], [0], [1], [], 0)
    with pytest.raises(UserError, match="does not know the op BIDIRECTIONAL_SEQUENCE_LSTM"):
        predict_arena(model)
    model = TfliteModel([t, t], [Operator("UNIDIRECTIONAL_SEQUENCE_LSTM", [0], [1], {})], [0], [1], [], 0)
    with pytest.raises(UserError, match="has 1 inputs and TFLM's kernel takes 24"):
        predict_arena(model)
    u = Tensor("u", (1, 4), "uint8", 0, [0.1], [128])
    model = TfliteModel([u, u], [Operator("LOGISTIC", [0], [1], {})], [0], [1], [], 0)
    with pytest.raises(UserError, match="uint8 activation"):
        predict_arena(model)


def test_cost_package_never_imports_tensorflow():
    code = ("import sys, mcunas.cost, mcunas.cost.tflm_arena, mcunas.cost.tflite_size; "
            "from mcunas.cli import estimate; "
            "assert 'tensorflow' not in sys.modules and 'tflite_micro' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_bench_fidelity_tflite_measures_every_file(tmp_path):
    out = tmp_path / "fidelity.csv"
    proc = run_cli("bench", "fidelity", "--tflite", DATA, "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    import csv
    import json

    rows = {r["file"]: r for r in csv.DictReader(out.open())}
    for name, measured in MEASURED_ARENA_BYTES.items():
        assert int(rows[name]["measured_arena_bytes"]) == measured
        assert int(rows[name]["arena_error_bytes"]) >= 0
    assert "TFLM fails" in rows["softmax_513_classes_int8.tflite"]["status"]
    assert json.loads(proc.stdout)["under"] == 0


def test_c_header_states_its_target(tmp_path):
    from mcunas.export.c_array import write_c_array

    data = (DATA / "op_softmax_int16.tflite").read_bytes()
    header, _ = write_c_array(data, tmp_path, 3_136, target="x86_64")
    assert "kTensorArenaSize = 3136;" in header.read_text() and "measured" in header.read_text()
    header, _ = write_c_array(data, tmp_path, 3_136, target="cortex-m")
    text = header.read_text()
    # cortex-m: the predicted 2,616 B rounded up to 16, flagged as a prediction with its x86 margin
    assert "kTensorArenaSize = 2624;" in text and "PREDICTED" in text and "+16 B" in text


@pytest.mark.parametrize("text, measured_bytes", [
    ("in_r16_c3-cv_k3_s2_c8-sf_r9_k3_s2_c16-sf_r6_k3_s2_c32-gap-fc_c2", 36_672),  # head 1,280 + tail 26,176
    ("in_r16_c1-cv_k3_s2_c8-ds_r9_k3_s1_c8-gap-fc_c2", 10_456),  # head 1,024 + tail 7,224
])
def test_deep_narrow_models_need_more_head_for_planning_than_for_activations(text, measured_bytes):
    """TFLM's planning temporaries, not the planned activations, set these arenas (smallest arena measured
    with the tflite-micro pip package on the exported model); the replay stays at or above it."""
    predicted = predict_arena(arch_tflite_model(parse_arch(text)))
    assert predicted["sram_tflm_bytes"] - predicted["tflm_tail_bytes"] > predicted["tflm_head_bytes"]
    assert measured_bytes <= predicted["sram_tflm_bytes"] <= measured_bytes + 24


def test_every_measured_export_in_the_committed_fidelity_table_is_predicted_at_or_above_its_truth():
    """results/cost_model_fidelity.csv holds 120 real exports measured in TFLM (four spaces); today's
    cost model must stay at or above each measured arena and file, and within 1 %."""
    import csv

    from mcunas.bench.fidelity import predicted

    with (REPO / "results" / "cost_model_fidelity.csv").open(newline="") as fh:
        rows = [predicted(r) for r in csv.DictReader(fh)]
    assert len(rows) == 120 and {r["space"] for r in rows} == {"mobilenet_v1", "mobilenet_v2", "mnasnet",
                                                                 "shufflenet_v2"}
    for r in rows:
        assert 0 <= r["arena_error_pct"] <= 1.0, r["arch"]
        assert 0 <= r["tflite_error_pct"] <= 1.0, r["arch"]
