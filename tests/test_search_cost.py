"""The search loop without training: rejection before training, resume, and bad input.

Cost-only objectives (capacity, sram) exercise the real Optuna study on the
real default storage (a journal file) in a second or two.
"""

import pandas as pd
import pytest

from conftest import assert_one_line_error, cli_json, run_cli

COST_ONLY = ["--objectives", "capacity,sram", "--space", "mobilenet_v2"]


def _search(tmp_path, *extra):
    return run_cli("search", "--results-dir", tmp_path / "results", *COST_ONLY, *extra)


def test_rejected_candidates_are_recorded_infeasible_and_never_count(tmp_path):
    fig = cli_json("search", "--results-dir", tmp_path / "results", *COST_ONLY, "--study", "s",
                   "--n-trials", "40", "--sram", "120KB", "--seed", "1")
    assert fig["trained"] == 40 and fig["rejected"] > 0
    assert "scored" not in fig and "scored" not in fig["study_totals"]  # only supernet studies score
    trials = pd.read_csv(tmp_path / "results/s/trials.csv")
    rejected = trials[trials.status == "rejected"]
    fits = trials[trials.status == "trained"]
    assert len(fits) == 40 and len(rejected) == fig["rejected"]
    assert not rejected.feasible.any() and fits.feasible.all()
    # every rejection names the figure over budget, and really is over it
    over = rejected.apply(lambda r: r.sram_tflm_bytes > 120_000 or r.tflite_bytes > 250_000 or r.macs > 60e6, axis=1)
    assert over.all()
    assert (fits.sram_tflm_bytes <= 120_000).all() and (fits.tflite_bytes <= 250_000).all()
    assert rejected.reason.str.contains(">").all()
    pareto = pd.read_csv(tmp_path / "results/s/pareto.csv")
    assert 0 < len(pareto) <= 40


def test_rerunning_resumes_the_same_study(tmp_path):
    first = cli_json("search", "--results-dir", tmp_path / "results", *COST_ONLY, "--study", "r", "--n-trials", "5")
    second = cli_json("search", "--results-dir", tmp_path / "results", *COST_ONLY, "--study", "r", "--n-trials", "5")
    assert first["trained"] == second["trained"] == 5
    trials = pd.read_csv(tmp_path / "results/r/trials.csv")
    assert (trials.status == "trained").sum() == 10
    assert trials.number.is_unique


def test_a_study_with_other_objectives_is_refused_and_left_untouched(tmp_path):
    cli_json("search", "--results-dir", tmp_path / "results", *COST_ONLY, "--study", "m", "--n-trials", "3")
    before = len(pd.read_csv(tmp_path / "results/m/trials.csv"))
    proc = run_cli("search", "--results-dir", tmp_path / "results", "--objectives", "macs",
                   "--space", "mobilenet_v2", "--study", "m")
    assert_one_line_error(proc, "study 'm' exists with objectives")
    assert len(pd.read_csv(tmp_path / "results/m/trials.csv")) == before


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--space", "resnet"], "unknown search space 'resnet'"),
        (["--sram", "250"], "needs a unit"),
        (["--flash=-1KB"], "negative"),
        (["--sram", "1KB"], "no member of space 'mobilenet_v2' fits"),
        (["--board", "esp32"], "unknown board 'esp32'"),
        (["--storage", "postgresql://mcunas:secret@127.0.0.1:9/none"], "cannot reach storage"),
        (["--timeout", "soon"], "cannot read --timeout"),
        (["--objectives", "accuracy,speed"], "bad --objectives"),
        (["--data", "/nonexistent/vww"], "--data /nonexistent/vww does not exist"),
    ],
)
def test_bad_input_is_one_line(tmp_path, extra, fragment):
    args = ["--objectives", "accuracy,sram"] if "--data" in extra else []
    proc = _search(tmp_path, "--study", "bad", *extra, *args)
    assert_one_line_error(proc, fragment)
    assert "secret" not in proc.stderr


def test_config_file_supplies_flags_and_flags_win(tmp_path):
    cfg = tmp_path / "campaign.yaml"
    cfg.write_text("space: mobilenet_v1\nobjectives: capacity,sram\nn_trials: 7\nstudy: cfg\nsram: 200KB\n")
    fig = cli_json("search", "--config", cfg, "--results-dir", tmp_path / "results", "--n-trials", "3")
    assert fig["trained"] == 3
    trials = pd.read_csv(tmp_path / "results/cfg/trials.csv")
    assert trials.arch.str.contains("ds_").all()  # mobilenet_v1 from the file


@pytest.mark.parametrize(
    "text, fragment",
    [
        (b"epochs: three\n", "epochs in --config CFG must be a whole number, got 'three'"),
        (b"n_trials: 2.5\n", "n_trials in --config CFG must be a whole number, got 2.5"),
        (b"seed: true\n", "seed in --config CFG must be a whole number, got True"),
        (b"export_winner: maybe\n", "export_winner in --config CFG must be true or false, got 'maybe'"),
        (b"space: [mobilenet_v1, mnasnet]\n", "space in --config CFG must be one value"),
        (b"storage: {url: x}\n", "storage in --config CFG must be one value"),
        (b"sampler: annealing\n", "sampler in --config CFG must be one of tpe, nsga2, gp, random, got 'annealing'"),
        (b"pruner: x\n", "pruner in --config CFG must be one of none, hyperband, median"),
        (b"- epochs: 3\n", "--config CFG must map flag names to values"),
        (b"epochs: 3\n# caf\xe9\n", "--config CFG is not UTF-8 text (byte 15)"),
        (b"epochs: [3\n", "--config CFG is not valid YAML"),
    ],
)
def test_a_bad_config_file_is_one_line_and_writes_nothing(tmp_path, text, fragment):
    cfg = tmp_path / "campaign.yaml"
    cfg.write_bytes(text)
    proc = _search(tmp_path, "--config", cfg)
    assert_one_line_error(proc, fragment.replace("CFG", str(cfg)))
    assert not (tmp_path / "results").exists()


def test_a_pruner_on_a_multi_objective_study_is_refused_before_anything_is_written(tmp_path):
    proc = _search(tmp_path, "--study", "pruned", "--pruner", "hyperband")
    assert_one_line_error(proc, "--pruner hyperband needs --objectives accuracy alone")
    assert not (tmp_path / "results").exists()
