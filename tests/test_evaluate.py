"""``mcunas evaluate``: the MLPerf Tiny reference model reproduces its published 428/500 with LiteRT."""

import pytest

from conftest import assert_one_line_error, cli_json, run_cli



@pytest.fixture
def mlperf_model(shared_models):
    model = shared_models / "mlperf_vww_96_int8.tflite"
    if not model.is_file():
        pytest.skip(f"{model} is absent")
    return model


def test_mlperf_reference_model_on_vww01_dev(mlperf_model, shared_data):
    fig = cli_json("evaluate", mlperf_model, "--data", shared_data / "vww01_dev")
    assert (fig["correct"], fig["total"]) == (428, 500)
    assert fig["accuracy"] == pytest.approx(0.856)
    assert fig["split"] == "all"
    assert fig["person_total"] == fig["non_person_total"] == 250
    assert fig["person_correct"] + fig["non_person_correct"] == 428


def test_split_option_and_resize_to_the_model_input(mlperf_model, shared_data):
    fig = cli_json("evaluate", mlperf_model, "--data", shared_data / "vww01_dev", "--split", "eval")
    assert fig["split"] == "eval" and 70 <= fig["total"] <= 130 and 0.6 < fig["accuracy"] <= 1
    # 128-pixel arrays are refitted to the model's 96 (two resamplings, so not required to be 428)
    from mcunas.data import evaluate_tflite, load_split

    images, labels = load_split(shared_data / "vww01_dev", "all", 128, 3)
    fig = evaluate_tflite(mlperf_model, images, labels)
    assert fig["total"] == 500 and 0.75 < fig["accuracy"] < 0.95


def test_built_set_defaults_to_its_eval_split(mlperf_model, shared_data, tmp_path):
    coco = shared_data / "coco_tiny"
    out = tmp_path / "vww"
    built = cli_json("data", "build", "--images", coco / "val2017", "--annotations",
                     coco / "annotations" / "instances_val2017.json", "--out", out)
    fig = cli_json("evaluate", mlperf_model, "--data", out)
    assert fig["split"] == "eval" and fig["total"] == built["eval"]
    assert fig["person_total"] + fig["non_person_total"] == built["eval"]


def test_bad_model_and_data_are_one_line(tmp_path, shared_data, mlperf_model):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 10)
    assert_one_line_error(run_cli("evaluate", junk, "--data", shared_data / "vww01_dev"), "cannot load")
    assert_one_line_error(run_cli("evaluate", tmp_path / "none.tflite", "--data", shared_data / "vww01_dev"),
                          "does not exist")
    assert_one_line_error(run_cli("evaluate", mlperf_model, "--data", tmp_path), "is not a dataset folder")
