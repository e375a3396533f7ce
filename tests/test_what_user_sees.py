"""What a user sees (issue 18): quiet tools, one-line errors that help, honest summaries.

Each test runs the CLI as a user does and asserts on the text it prints.
"""

import json

import pytest

from conftest import assert_one_line_error, run_cli

# Lines TensorFlow, absl and the MLIR converter print on their own (seen in TF 2.21 before issue 18).
TF_NOISE = ("oneDNN", "cuda", "cuInit", "SavedModel", "MLIR", "absl::InitializeLog", "fully_quantize",
            "cpu_feature_guard", "Statistics for quantized inputs", "flatbuffer_export")


def assert_no_tf_noise(text: str) -> None:
    noisy = [line for line in text.splitlines() if any(n.lower() in line.lower() for n in TF_NOISE)]
    assert not noisy, "\n".join(noisy)


SMALL_ARCH = "in_r32_c3-cv_k3_s2_c8-ds_k3_s2_c16-gap-fc_c2"


@pytest.mark.slow
def test_export_prints_no_tensorflow_noise(tmp_path):
    proc = run_cli("export", SMALL_ARCH, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert_no_tf_noise(proc.stdout + proc.stderr)
    assert proc.stderr == "", proc.stderr
    assert "tflm_arena_bytes" in proc.stdout


@pytest.mark.slow
def test_train_prints_no_tensorflow_noise(tmp_path, synth_data):
    proc = run_cli("train", SMALL_ARCH, "--data", synth_data, "--out", tmp_path / "out", "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    assert_no_tf_noise(proc.stdout + proc.stderr)
    # mcunas's own lines are all that is left on stderr
    assert all(line.startswith("mcunas:") for line in proc.stderr.splitlines()), proc.stderr
