"""Quantisation-aware fine-tuning: the twin quantises as the converter does, and QAT exports the predicted graph."""

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from mcunas.arch import parse_arch
from mcunas.cost import estimate
from mcunas.cost.flatbuffer import read_tflite
from mcunas.cost.graph import build_graph

# Tiny but with every case the twin handles: ReLU6, a residual Add, linear projections, depthwise, head.
ARCH = "in_r32_c3_relu6-cv_k3_s2_c8-ir_k3_s1_e1_c8-ir_k3_s2_e3_c16-ir_k3_s1_e3_c16-gap-fc_c2"


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    from mcunas.data.synth import synthesize

    out = tmp_path_factory.mktemp("synth") / "data"
    synthesize(out, n=160, resolution=48, seed=5)
    return out


def test_negative_qat_epochs_is_a_one_line_error(tmp_path):
    proc = run_cli("train", ARCH, "--data", tmp_path, "--out", tmp_path / "out", "--qat-epochs", "-1")
    assert_one_line_error(proc, "--qat-epochs")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_train_with_qat_records_both_int8_accuracies_and_exports_the_predicted_graph(tmp_path, synth_data):
    proc = run_cli("train", ARCH, "--data", synth_data, "--out", tmp_path, "--epochs", "1", "--batch", "16",
                   "--qat-epochs", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["test_images"] == 32  # the 20 % hash split; validation is a 20 % share of the other 128
    n_val = result["val_images"]
    assert abs(n_val - 0.2 * 128) <= 2 and result["train_images"] == 128 - n_val
    for key in ("float_accuracy", "int8_accuracy_before_qat", "float_accuracy_after_qat", "int8_accuracy"):
        assert 0.0 <= result[key] <= 1.0 and (result[key] * n_val) % 1 < 1e-6, key  # a count of the val images
    assert (result["test_accuracy"] * 32) % 1 < 1e-6
    assert result["qat_s"] > 0

    # The QAT export is the normal export's graph, which the cost model predicts: same ops, size within 1 %.
    normal = run_cli("export", ARCH, "--out", tmp_path / "normal", "--json")
    assert normal.returncode == 0, normal.stderr
    normal_model = read_tflite((tmp_path / "normal" / "model_int8.tflite").read_bytes())
    model = read_tflite((tmp_path / "model_int8.tflite").read_bytes())
    ops = [o.op for o in model.operators]
    assert ops == [o.op for o in normal_model.operators]
    assert [model.tensors[o.outputs[0]].shape for o in model.operators] == \
        [normal_model.tensors[o.outputs[0]].shape for o in normal_model.operators]
    graph = build_graph(parse_arch(ARCH))
    assert [op for op in ops if op != "RESHAPE"] == [graph.nodes[n]["op"] for n in sorted(graph.nodes)]
    size = result["tflite_bytes_measured"]
    assert abs(size - normal_model.file_bytes) <= 0.01 * size
    costs = estimate(parse_arch(ARCH))
    assert abs(costs["tflite_bytes"] - size) <= 0.01 * size
    assert abs(costs["sram_tflm_bytes"] - result["tflm_arena_bytes_measured"]) <= 0.01 * result["tflm_arena_bytes_measured"]
    x = model.tensors[model.inputs[0]]
    assert x.dtype == "int8" and x.zero_point == [-128] and abs(x.scale[0] - 1 / 255) < 1e-9


@pytest.mark.slow
def test_twin_quantises_with_the_exports_scales_and_fine_tuning_moves_the_shared_weights(synth_data):
    """Every activation range and weight scale the twin trains against is the converter's, to 1e-5."""
    import keras

    from mcunas.data import load_split, make_train_dataset
    from mcunas.export.tflite import convert_int8
    from mcunas.keras_model import build_keras_model
    from mcunas.train.qat import build_qat_twin, calibrate, qat_finetune

    arch = parse_arch(ARCH)
    images, labels = load_split(synth_data, "train", 32, 3)
    keras.utils.set_random_seed(0)
    model = build_keras_model(arch, batch_size=None)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(make_train_dataset(images, labels, 16), epochs=1, verbose=0)  # trained BatchNorm statistics
    calibration = images[:64]
    twin, ranges = build_qat_twin(model)
    calibrate(model, ranges, calibration)
    deploy = build_keras_model(arch)
    deploy.set_weights(model.get_weights())
    tflite = read_tflite(convert_int8(deploy, calibration))

    consts = [t for t in tflite.tensors if t.has_data and t.dtype == "int8"]
    stored = {tflite.inputs[0], tflite.outputs[0]}  # fixed scales, not calibrated
    export_ranges = sorted(t.scale[0] for i, t in enumerate(tflite.tensors)
                           if not t.has_data and t.dtype == "int8" and i not in stored)
    twin_ranges = sorted((float(high) - float(low)) / 255 for low, high, _ in ranges.values())
    assert len(twin_ranges) == len(export_ranges) == len(tflite.operators) - 1
    np.testing.assert_allclose(twin_ranges, export_ranges, rtol=1e-5)

    twin_weight_scales = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            conv = next(c for c in model.layers if c.output is layer.input)
            gamma, beta, mean, var = (w.numpy() for w in layer.weights)
            kernel = conv.kernel.numpy()
            kernel = kernel.reshape(*kernel.shape[:2], -1) if kernel.shape[-1] == 1 else kernel
            folded = kernel * (gamma / np.sqrt(var + layer.epsilon))
            twin_weight_scales += list(np.abs(folded).reshape(-1, folded.shape[-1]).max(axis=0) / 127)
        elif isinstance(layer, keras.layers.Dense):
            twin_weight_scales += list(np.abs(layer.kernel.numpy()).max(axis=0) / 127)
    export_weight_scales = sorted(s for t in consts for s in t.scale)
    np.testing.assert_allclose(sorted(twin_weight_scales), export_weight_scales, rtol=1e-5)

    before = [w.numpy().copy() for w in model.trainable_weights]
    frozen = [w.numpy().copy() for w in model.non_trainable_weights]
    qat_finetune(model, make_train_dataset(images, labels, 16), calibration, epochs=1, steps_per_epoch=8)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(frozen, model.non_trainable_weights))  # BN frozen
    moved = [float(np.abs(a - w.numpy()).max()) for a, w in zip(before, model.trainable_weights)]
    assert all(m > 0 for m in moved) and max(moved) < 0.01  # every kernel, γ, β trained, at 1e-5 gently
