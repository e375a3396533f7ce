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


def _unset_tf_logging(monkeypatch):
    """What mcunas does with no TF_CPP_MIN_LOG_LEVEL of the user's (a value set in this process would win)."""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)


@pytest.mark.slow
def test_export_prints_no_tensorflow_noise(tmp_path, monkeypatch):
    _unset_tf_logging(monkeypatch)
    proc = run_cli("export", SMALL_ARCH, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert_no_tf_noise(proc.stdout + proc.stderr)
    # only mcunas's own stage lines are left on stderr
    assert all(line.startswith("mcunas: ") for line in proc.stderr.splitlines()), proc.stderr
    assert "tflm_arena_bytes" in proc.stdout


@pytest.mark.slow
def test_train_prints_no_tensorflow_noise(tmp_path, synth_data, monkeypatch):
    _unset_tf_logging(monkeypatch)
    proc = run_cli("train", SMALL_ARCH, "--data", synth_data, "--out", tmp_path / "out", "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    assert_no_tf_noise(proc.stdout + proc.stderr)
    # mcunas's own lines are all that is left on stderr
    assert all(line.startswith("mcunas:") for line in proc.stderr.splitlines()), proc.stderr


def test_interrupted_demo_set_leaves_nothing_and_keeps_the_earlier_set(tmp_path, monkeypatch):
    import mcunas.data.synth as synth

    out = tmp_path / "demo"
    synth.synthesize(out, n=6, resolution=32, seed=0)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    real, drawn = synth.draw_image, []

    def ctrl_c_after_three(*a, **k):
        if len(drawn) == 3:
            raise KeyboardInterrupt
        drawn.append(1)
        return real(*a, **k)

    monkeypatch.setattr(synth, "draw_image", ctrl_c_after_three)
    with pytest.raises(KeyboardInterrupt):
        synth.synthesize(out, n=8, resolution=32, seed=1)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # the whole earlier set, nothing else
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".demo.tmp")]
    with pytest.raises(KeyboardInterrupt):
        synth.synthesize(tmp_path / "fresh", n=8, resolution=32, seed=1)
    assert not (tmp_path / "fresh").exists()


def _one_class_folder(tmp_path, synth_data):
    """An MLPerf-style folder with person/ images and an empty non_person/ (what Ctrl-C used to leave)."""
    import shutil

    folder = tmp_path / "half"
    shutil.copytree(synth_data / "person", folder / "person")
    (folder / "non_person").mkdir()
    return folder


@pytest.mark.parametrize("command", ["search", "train", "evaluate"])
def test_a_set_with_an_empty_class_is_refused(tmp_path, synth_data, shared_models, command):
    folder = _one_class_folder(tmp_path, synth_data)
    args = {"search": ["search", "--study", "half", "--data", folder, "--results-dir", tmp_path / "r"],
            "train": ["train", SMALL_ARCH, "--data", folder, "--out", tmp_path / "o"],
            "evaluate": ["evaluate", shared_models / "mlperf_vww_96_int8.tflite", "--data", folder]}[command]
    proc = run_cli(*args)
    assert_one_line_error(proc, f"--data {folder} has 80 person image(s) and no non_person ones: both classes")
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


def test_half_written_demo_set_from_before_is_regenerated(tmp_path, synth_data):
    """A demo folder without about.txt (an interrupted older run) is drawn again, not trained on."""
    from mcunas.cli.search import _demo_data
    from mcunas.data.formats import dataset_items

    folder = _one_class_folder(tmp_path, synth_data)
    _demo_data(folder, 10, 0)
    labels = dataset_items(folder)[1]
    assert (labels == 1).sum() == 5 and (labels == 0).sum() == 5


@pytest.mark.parametrize("args, fragment", [
    (["serch"], "mcunas: error: unknown command 'serch' (did you mean 'search'?): choose one of estimate"),
    (["data", "biuld"], "unknown command 'biuld' (did you mean 'build'?)"),
    (["search", "--sampler", "tep"], "argument --sampler: invalid choice 'tep' (did you mean 'tpe'?)"),
    (["estimate", "--preset", "mlperf-vw"], "unknown preset 'mlperf-vw' (did you mean 'mlperf-vww'?)"),
    (["frontier", "--space", "mobilenetv2"], "unknown search space 'mobilenetv2' (did you mean 'mobilenet_v2'?)"),
    (["estimate", "--preset", "mlperf-vww", "--board", "stm32f72"], "unknown board 'stm32f72' (did you mean "
                                                                     "'stm32f723'?)"),
    (["search", "--sram", "-5KB"], "memory budget '-5KB' is negative"),
    (["frontier", "--space", "mobilenet_v1", "--macs", "-20M"], "MAC budget '-20M' is negative"),
    (["search", "--sram", "250Kb"], "'250Kb' ends in a small b, which means bits: budgets are bytes, written with "
                                    "a capital B, e.g. 250KB"),
    (["estimate", "--preset", "mlperf-vww", "--sram", "250KB"], "`mcunas estimate` has no option --sram; it is an "
                                                              "option of `mcunas export`, `mcunas frontier`, "
                                                              "`mcunas query`, `mcunas search`"),
    (["search", "--epochz", "3"], "`mcunas search` has no option --epochz (did you mean '--epochs'?)"),
    (["measure", "README.md"], "README.md is not a .tflite model: not a TensorFlow Lite flatbuffer (file "
                               "identifier 'TFL3' missing)"),
])
def test_errors_that_help(args, fragment):
    proc = run_cli(*args)
    assert_one_line_error(proc, fragment)
    assert "mcunas: error: mcunas" not in proc.stderr and "Traceback" not in proc.stderr and "File \"" not in \
        proc.stderr


def test_unambiguous_option_prefixes_stay_accepted():
    """argparse accepts ``--pres`` for ``--preset``; the unknown-option check must not refuse it."""
    proc = run_cli("estimate", "--pres", "mlperf-vww", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sram_tflm_bytes"] == 103_576


def test_an_unknown_class_gets_a_suggestion(tmp_path):
    annotations = tmp_path / "a.json"
    annotations.write_text(json.dumps({"images": [], "annotations": [], "categories": [
        {"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"}]}))
    (tmp_path / "img").mkdir()
    proc = run_cli("data", "build", "--images", tmp_path / "img", "--annotations", annotations,
                   "--class", "persn", "--out", tmp_path / "out")
    assert_one_line_error(proc, "unknown class 'persn' (did you mean 'person'?)")


def test_plural():
    from mcunas.output import plural

    assert [plural(1, "candidate"), plural(2, "candidate"), plural(1000, "image")] == [
        "1 candidate", "2 candidates", "1,000 images"]


def test_frontier_plot_goes_under_results_and_git_status_stays_clean(tmp_path):
    """The default plot lands in results/frontier/, which .gitignore covers (as results/<study>/)."""
    import shutil
    import subprocess

    from conftest import REPO

    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO / ".gitignore", repo / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    proc = run_cli("frontier", "--space", "mobilenet_v1", "--n", "50", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert (repo / "results" / "frontier" / "mobilenet_v1.png").stat().st_size > 10_000
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    assert status.split() == ["??", ".gitignore"], status
    assert "plot: results/frontier/mobilenet_v1.png" in proc.stdout


def test_committed_results_stay_tracked():
    """.gitignore hides run folders, not the result files the README cites."""
    import subprocess

    from conftest import REPO

    cited = ["results/README.md", "results/campaign_vww01_to_coco_tiny/summary.md", "results/tflite_fidelity.csv"]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *cited], cwd=REPO, capture_output=True, text=True).stdout
    assert ignored == ""


def test_durations_have_one_format():
    from mcunas.output import format_duration

    assert [format_duration(s) for s in (0, 45, 60, 65, 1200, 5400, 3605)] == [
        "0s", "45s", "1m", "1m05s", "20m", "1h30m", "1h00m05s"]


def test_what_optuna_dashboard_shows_of_a_rejected_trial():
    """The README's optuna-dashboard paragraph, checked against optuna-dashboard's own serializer.

    Optuna 5 stores each constraint as its own system attribute (``constraints:sram``);
    optuna-dashboard 0.21 reads only the old list under ``constraints``, so its constraints field is
    empty. Feasibility shows as the ``rejected`` user attribute (the reason), and a rejected trial's
    values are the placeholder accuracy 0.0 and its SRAM.
    """
    serializer = pytest.importorskip("optuna_dashboard._serializer")
    import optuna

    from mcunas.budget import parse_budget
    from mcunas.search.campaign import cost_candidate
    from mcunas.search.objectives import objective_values
    from mcunas.spaces import load_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(directions=["maximize", "minimize"])
    budget = parse_budget("20KB", None, None, None, "deployable", None)
    trial = study.ask()
    arch, costs, reasons = cost_candidate(trial, load_space("mobilenet_v1"), budget)
    assert reasons  # 20 KB of SRAM: this candidate is rejected
    study.tell(trial, objective_values(["accuracy", "sram"], costs, budget, None))
    frozen = study.trials[0]
    shown = serializer.serialize_frozen_trial(0, frozen, {})
    assert shown["constraints"] == []
    assert frozen.constraints == {"sram": costs["sram_tflm_bytes"] - 20_000}  # stored as constraints:sram
    attrs = {a["key"]: a["value"] for a in shown["user_attrs"]}
    assert attrs["rejected"].startswith("sram_tflm_bytes") and attrs["arch"] == arch
    assert frozen.values == [0.0, costs["sram_tflm_bytes"]]


@pytest.mark.slow
def test_search_output_json_only_stages_summary_and_resume(tmp_path, monkeypatch):
    """Without --data: stdout holds JSON only; the live view says what runs; summary.md and the final lines
    name the winner, the test size and an image's worth; a rerun says it resumes."""
    from conftest import REPO

    _unset_tf_logging(monkeypatch)
    args = ["search", "--space", REPO / "tests/spaces/tiny.yaml", "--study", "ux", "--n-trials", "1", "--epochs", "1",
            "--batch", "16", "--demo-images", "64", "--results-dir", tmp_path / "results"]
    proc = run_cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)  # nothing but the JSON
    assert_no_tf_noise(proc.stderr)
    for stage in ("no --data given: generating 64 synthetic", "waiting for the training worker to start", "exporting the winner, trial",
                  "reading the data at", "training 1 epoch on", "int8 conversion, int8 accuracy"):
        assert stage in proc.stderr, proc.stderr
    winner, out = figures["winner_trial"], tmp_path / "results/ux"
    assert winner["test_images"] > 0 and winner["points_per_image"] == round(100 / winner["test_images"], 4)
    assert figures["study_totals"]["trained"] == 1 and figures["trained"] == 1
    summary = (out / "summary.md").read_text()
    assert f"- winner: trial {winner['number']}: int8 test " in summary
    assert f"/{winner['test_images']} images (one image = " in summary
    assert "generated demo set, drawn 20" in summary and "- this run: 1 trained" in summary
    assert "- trials in the study, all runs (" in summary

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert "mcunas: resuming study ux (" in again.stderr and "using the generated demo set" in again.stderr
    lines = again.stdout.splitlines()
    assert lines[0].startswith("this run: 1 trained, ") and lines[1].startswith("study ux, all runs: 2 trained, ")
    assert any(line.startswith("winner: trial ") for line in lines)
    pngs = next(line for line in lines if line.startswith("pngs: "))
    assert "[" not in pngs and pngs.count(".png") == 3 and ", " in pngs


def test_a_far_rejected_candidate_does_not_stretch_the_cost_axis():
    from mcunas.search.results import x_view

    # KB: trained 60-234, budget 250, rejected up to 4,520 (the campaign_vww01_to_coco_tiny flash plot)
    left, right, log = x_view([60.6, 215.7, 234.0], [37.0, 85.0, 1061.0, 4520.0], 250.0)
    assert (left, right, log) == (0.0, 250.0 * 1.15, False)
    # MACs in millions: 0.8 .. 15 trained/rejected under a 60M budget spans decades -> log
    left, right, log = x_view([3.8, 8.6, 14.5], [0.83, 272.0], 60.0)
    assert log and right == 60.0 * 1.15 and left == pytest.approx(0.83 / 1.3)
