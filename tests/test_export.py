"""Export, TFLM measurement and the cost model against them (TensorFlow, slow)."""

import json
import re

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from mcunas.arch import parse_arch
from mcunas.cost import estimate
from mcunas.cost.flatbuffer import read_tflite
from mcunas.cost.graph import build_graph
from mcunas.cost.tflite_stats import tflite_macs

# Small but complete: stem, residual inverted blocks (one on a 1×1 map), head conv.
ARCH = ("in_r32_c3_relu6-cv_k3_s2_c8-ir_k3_s1_e1_c8_noskip-ir_r2_k3_s2_e3_c16-ir_k5_s2_e3_c24-"
        "ir_k3_s2_e3_c32-ir_r2_k3_s2_e3_c40-cv_k1_s1_c128-gap-fc_c2")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    proc = run_cli("export", ARCH, "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    # Each slow step is named on stderr as it starts; stdout stays pure JSON (parsed below).
    assert [line.split(",")[0] for line in proc.stderr.splitlines() if line.startswith("mcunas: ")] == [
        "mcunas: building the Keras model (TensorFlow loads first", "mcunas: converting to int8",
        "mcunas: measuring the tensor arena of model_int8.tflite in TFLM"]
    return out, json.loads(proc.stdout)


@pytest.mark.slow
def test_export_writes_every_artefact(exported):
    out, result = exported
    for name in ("model.keras", "model_int8.tflite", "model_data.h", "model_data.cc", "arch.txt"):
        assert (out / name).is_file(), name
    assert (out / "arch.txt").read_text().strip() == ARCH
    header = (out / "model_data.h").read_text()
    arena = int(re.search(r"kTensorArenaSize = (\d+);", header).group(1))
    assert arena % 16 == 0 and 0 <= arena - result["tflm_arena_bytes"] < 16
    source = (out / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model_data[]" in source
    data = (out / "model_int8.tflite").read_bytes()
    assert f"g_model_data_len = {len(data)};" in source
    assert source.count("0x") == len(data)


@pytest.mark.slow
def test_exported_model_is_full_int8_with_the_documented_input(exported):
    out, _ = exported
    model = read_tflite((out / "model_int8.tflite").read_bytes())
    x = model.tensors[model.inputs[0]]
    assert x.dtype == "int8" and x.zero_point == [-128]
    assert abs(x.scale[0] - 1 / 255) < 1e-9
    assert model.tensors[model.outputs[0]].dtype == "int8"


@pytest.mark.slow
def test_cost_model_matches_the_export_and_tflm(exported):
    out, result = exported
    arch = parse_arch(ARCH)
    costs = estimate(arch)
    model = read_tflite((out / "model_int8.tflite").read_bytes())
    # MACs: cost model == independent count from the exported graph's shapes
    assert tflite_macs(model) == costs["macs"]
    graph = build_graph(arch)
    graph_ops = [graph.nodes[n]["op"] for n in sorted(graph.nodes)]
    assert [o.op for o in model.operators if o.op != "RESHAPE"] == graph_ops
    assert abs(costs["sram_tflm_bytes"] - result["tflm_arena_bytes"]) <= 0.01 * result["tflm_arena_bytes"]
    assert abs(costs["tflite_bytes"] - result["tflite_bytes"]) <= 0.01 * result["tflite_bytes"]


@pytest.mark.slow
def test_measure_cli_reports_arena_split_and_ops(exported):
    out, result = exported
    proc = run_cli("measure", out / "model_int8.tflite", "--json")
    assert proc.returncode == 0, proc.stderr
    measured = json.loads(proc.stdout)
    assert measured["tflm_arena_bytes"] == result["tflm_arena_bytes"]
    assert measured["tflm_head_bytes"] + measured["tflm_tail_bytes"] == measured["tflm_arena_bytes"]
    assert measured["ops"][0] == "CONV_2D" and measured["ops"][-1] == "SOFTMAX"


@pytest.mark.slow
def test_softmax_abort_is_refused_on_export_and_reported_by_measure(tmp_path, monkeypatch):
    import mcunas.export.tflite as tfl
    from mcunas.errors import UserError
    from mcunas.keras_model import build_keras_model

    model = build_keras_model(parse_arch("in_r16_c1-cv_k3_s2_c8-gap-fc_c2"))
    classifier = model.get_layer("classifier")
    classifier.set_weights([np.zeros_like(w) for w in classifier.get_weights()])  # constant logits
    with pytest.raises(UserError, match="2\\^-26"):
        tfl.convert_int8(model)
    monkeypatch.setattr(tfl, "check_tflm_loadable", lambda data: None)
    path = tmp_path / "aborts.tflite"
    path.write_bytes(tfl.convert_int8(model))
    proc = run_cli("measure", path)
    assert_one_line_error(proc, "SIGABRT")
    assert str(path) in proc.stderr and "softmax input scale" in proc.stderr


@pytest.mark.slow
def test_estimate_tflite_predicts_float_models_and_logistic(tmp_path):
    import json

    import keras
    import tensorflow as tf

    from mcunas.export.tflite import convert_int8
    from mcunas.tflm import measure_arena

    inputs = keras.Input((8, 8, 1), batch_size=1)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="sigmoid")(inputs)
    model = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(2)(keras.layers.Flatten()(x))))
    float_path = tmp_path / "float.tflite"
    float_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    proc = run_cli("estimate", "--tflite", float_path, "--json")
    assert proc.returncode == 0, proc.stderr
    predicted = json.loads(proc.stdout)["sram_tflm_bytes"]
    measured = measure_arena(float_path)["tflm_arena_bytes"]
    assert measured <= predicted <= measured + 64  # float32 kernels: never below, within +64 B
    sigmoid_path = tmp_path / "sigmoid.tflite"
    sigmoid_path.write_bytes(convert_int8(model))
    proc = run_cli("estimate", "--tflite", sigmoid_path, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "LOGISTIC x1" in proc.stdout


# ShuffleNetV2: max pool, down-sampling units, basic units (slices + concatenation), conv5.
SHUFFLE = "in_r32_c3-cv_k3_s2_c16-mp_k3_s2-sf_r3_k5_s2_c32-sf_r2_k3_s2_c64-cv_k1_s1_c128-gap-fc_c2"


@pytest.mark.slow
def test_shufflenet_export_is_costed_op_for_op(tmp_path):
    proc = run_cli("export", SHUFFLE, "--out", tmp_path, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    arch = parse_arch(SHUFFLE)
    costs = estimate(arch)
    model = read_tflite((tmp_path / "model_int8.tflite").read_bytes())
    assert tflite_macs(model) == costs["macs"]
    graph = build_graph(arch)
    assert [o.op for o in model.operators] == [graph.nodes[n]["op"] for n in sorted(graph.nodes)]
    assert [o.op for o in model.operators].count("STRIDED_SLICE") == 6  # two per basic unit, no shuffle ops
    measured = result["tflm_arena_bytes"]
    assert measured <= costs["sram_tflm_bytes"] <= 1.01 * measured
    assert abs(costs["tflite_bytes"] - result["tflite_bytes"]) <= 0.01 * result["tflite_bytes"]


def _converted_with_keras_route(model, images) -> bytes:
    """The route convert_int8 used before (SavedModel written and read back): the reference for the test below."""
    import tensorflow as tf

    from mcunas.export.tflite import _pin_input_range
    from mcunas.input_convention import preprocess

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([preprocess(i[None])] for i in _pin_input_range(images))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return bytes(converter.convert())


@pytest.mark.slow
def test_frozen_graph_route_converts_exactly_what_from_keras_model_did():
    """Same ops, tensors, quantisation and weights, and the same int8 outputs on fixed images, as
    ``from_keras_model``; only the input/output names differ and the signature is gone (module doc)."""
    from mcunas.data.evaluate import load_interpreter, quantize_input
    from mcunas.export.tflite import convert_int8, fallback_images, prepare_untrained
    from mcunas.keras_model import build_keras_model

    model = build_keras_model(parse_arch(ARCH))
    prepare_untrained(model, seed=3)
    images = fallback_images((32, 32, 3), n=64, seed=1)
    new, old = convert_int8(model, images), _converted_with_keras_route(model, images)
    assert [o.op for o in read_tflite(new).operators] == [o.op for o in read_tflite(old).operators]
    # two names 32 B shorter plus the signature, which mcunas.cost.tflite_size takes 104 B off for
    assert len(old) - len(new) >= 32 + 104
    runs = [load_interpreter(new), load_interpreter(old)]
    io_names = {"image", "Identity", "serving_default_image:0", "StatefulPartitionedCall_1:0"}

    def tensors(interpreter, data: bytes):
        constants = {t.name for t in read_tflite(data).tensors if t.has_data}
        found = {}
        for d in interpreter.get_tensor_details():
            if d["name"] in io_names:
                continue
            q = d["quantization_parameters"]
            value = interpreter.get_tensor(d["index"]).tolist() if d["name"] in constants else None
            found[d["name"]] = (d["shape"].tolist(), str(d["dtype"]), q["scales"].tolist(),
                                q["zero_points"].tolist(), value)
        return found

    assert tensors(runs[0], new) == tensors(runs[1], old)
    fixed = fallback_images((32, 32, 3), n=20, seed=7)
    outputs = []
    for interpreter in runs:
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        assert inp["quantization"] == runs[1].get_input_details()[0]["quantization"]
        rows = []
        for image in fixed:
            interpreter.set_tensor(inp["index"], quantize_input(image[None], inp))
            interpreter.invoke()
            rows.append(interpreter.get_tensor(out["index"])[0].tolist())
        outputs.append(rows)
    assert outputs[0] == outputs[1]
    assert runs[0].get_signature_list() == {} and "serving_default" in runs[1].get_signature_list()
