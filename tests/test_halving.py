"""Pareto-aware successive halving, honest splits, and the checks made before a study is touched."""

import csv
import json

import numpy as np
import optuna
import pandas as pd
import pytest

from conftest import REPO, assert_one_line_error, run_cli
from mcunas.errors import UserError
from mcunas.search.halving import derived_rungs, front_ranks, goes_on, parse_halving

TINY = str(REPO / "tests/spaces/tiny.yaml")
AS = ["accuracy", "sram"]


# ---- the rule, as pure functions ----

def test_rungs_derived_from_epochs_and_eta():
    assert derived_rungs(9, 3) == (1, 3)
    assert derived_rungs(3, 3) == (1,)
    assert derived_rungs(4, 2) == (1, 2)
    assert derived_rungs(27, 3) == (1, 3, 9)
    assert derived_rungs(2, 3) == ()
    assert parse_halving(None, "1,3,9", 9, AS, "none").rungs == (1, 3)  # 9 is the end of training
    assert parse_halving("2", None, 4, AS, "none").eta == 2


@pytest.mark.parametrize("eta, rungs, epochs, objectives, pruner, fragment", [
    ("1", None, 3, AS, "none", "--halving must be a whole number of at least 2"),
    ("x", None, 3, AS, "none", "--halving must be"),
    ("3", "3,1", 9, AS, "none", "--rungs must be increasing"),
    ("3", "1,1", 9, AS, "none", "--rungs must be increasing"),
    ("3", "1,10", 9, AS, "none", "goes beyond --epochs 9"),
    ("3", "0,2", 9, AS, "none", "--rungs must be whole epochs"),
    ("3", None, 1, AS, "none", "needs a rung before the last epoch"),
    ("3", None, 3, ["accuracy"], "none", "--pruner hyperband"),
    ("3", None, 3, AS, "median", "give one of them"),
])
def test_bad_halving_settings_are_refused(eta, rungs, epochs, objectives, pruner, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_halving(eta, rungs, epochs, objectives, pruner)


def test_front_ranks_sort_points_into_non_dominated_fronts():
    # (accuracy, -sram): larger is better in both
    pts = np.array([[0.9, -100], [0.8, -50], [0.85, -120], [0.7, -60], [0.6, -200]])
    assert list(front_ranks(pts)) == [0, 0, 1, 1, 2]


def test_the_best_third_goes_on_and_a_small_network_on_the_front_too():
    others = np.array([[0.90, -100], [0.88, -110], [0.86, -120], [0.84, -130], [0.82, -140]])
    # the others form a chain of fronts; n = 6 -> fewer than ceil(6/3) = 2 candidates may lie in better fronts
    assert goes_on(np.array([0.95, -90]), others, 3)        # dominates all
    assert goes_on(np.array([0.50, -10]), others, 3)        # worst accuracy, but smallest: on the front
    assert goes_on(np.array([0.89, -105]), others, 3)       # one candidate ahead
    assert not goes_on(np.array([0.87, -115]), others, 3)   # two ahead
    assert not goes_on(np.array([0.80, -150]), others, 3)   # five ahead
    # the first ETA candidates at a rung always go on, however bad
    assert goes_on(np.array([0.1, -1000]), others[:2], 3)
    assert not goes_on(np.array([0.1, -1000]), others[:3], 3)


# ---- several workers on one study: rung results go through the storage ----

def test_rung_results_written_by_other_workers_decide(tmp_path):
    from mcunas.budget import PAPER_BUDGET
    from mcunas.search.halving import Halving, stop_at_rung
    from mcunas.search.storage import open_storage

    url = f"journal:{tmp_path}/s.journal"
    other = optuna.create_study(study_name="s", storage=open_storage(url), directions=["maximize", "minimize"])
    for acc, sram in ((0.9, 50_000), (0.88, 60_000), (0.86, 70_000)):  # a worker elsewhere, at rung 1
        t = other.ask()
        t.set_user_attr("costs", {"sram_tflm_bytes": sram})
        t.set_user_attr("rung_accuracies", {"1": acc})
    mine = optuna.load_study(study_name="s", storage=open_storage(url))  # a second handle on the journal
    campaign = type("C", (), {"halving": Halving(3, (1,)), "objectives": AS, "budget": PAPER_BUDGET})()

    good, bad = mine.ask(), mine.ask()
    good.set_user_attr("costs", {"sram_tflm_bytes": 40_000})
    bad.set_user_attr("costs", {"sram_tflm_bytes": 90_000})
    assert not stop_at_rung(good, campaign, 2, 0.1, {})  # not a rung: nothing decided or recorded
    assert "rung_accuracies" not in good.user_attrs
    assert not stop_at_rung(good, campaign, 1, 0.95, {})
    assert stop_at_rung(bad, campaign, 1, 0.5, {})
    attrs = optuna.load_study(study_name="s", storage=open_storage(url)).trials[bad.number].user_attrs
    assert (attrs["rung"], attrs["rung_accuracy"], attrs["rung_peers"]) == (1, 0.5, 5)
    assert attrs["rung_accuracies"] == {"1": 0.5}


# ---- splits ----

def test_train_validation_test_are_disjoint_stratified_and_seeded(tmp_path):
    from mcunas.data import load_split, train_val_test
    from mcunas.data.check import check_search_data
    from mcunas.data.synth import synthesize

    synthesize(tmp_path / "d", n=200, resolution=32, seed=1)
    a = train_val_test(tmp_path / "d", None, 32, 3, seed=0)
    b = train_val_test(tmp_path / "d", None, 32, 3, seed=0)
    c = train_val_test(tmp_path / "d", None, 32, 3, seed=1)
    x_eval, y_eval = load_split(tmp_path / "d", "eval", 32, 3)
    assert np.array_equal(np.asarray(a["test"][0]), x_eval)  # test = the folder's fixed eval split
    assert np.array_equal(a["val"][0].index, b["val"][0].index)
    assert not np.array_equal(a["val"][0].index, c["val"][0].index)
    train_rows, val_rows = set(a["train"][0].index), set(a["val"][0].index)
    assert not train_rows & val_rows and len(train_rows) + len(val_rows) + len(y_eval) == 200
    y_pool = np.concatenate([a["train"][1], a["val"][1]])
    for label in (0, 1):  # each class keeps its 20 % share in validation (rounded)
        assert (a["val"][1] == label).sum() == round(0.2 * (y_pool == label).sum())
    figures = check_search_data(str(tmp_path / "d"), None, 0)
    share = np.bincount(y_eval, minlength=2).max() / len(y_eval)
    assert figures["majority_test_accuracy"] == round(share, 6) and figures["test_images"] == len(y_eval)
    assert figures["val_images"] == len(a["val"][1])
    # with --eval-data, that folder is the test set and validation comes from --data
    synthesize(tmp_path / "t", n=30, resolution=32, seed=2)
    d = train_val_test(tmp_path / "d", tmp_path / "t", 32, 3, seed=0)
    assert len(d["test"][1]) == 30 and len(d["train"][1]) + len(d["val"][1]) == 200


# ---- data checked once, before the study is touched ----

def _vww01(folder, labels, sizes=None):
    folder.mkdir()
    rng = np.random.default_rng(0)
    with open(folder / "y_labels.csv", "w", newline="") as f:
        for i, label in enumerate(labels):
            name = f"img{i:03d}.bin"
            rng.integers(0, 255, (sizes or {}).get(i, 96 * 96 * 3), dtype=np.uint8).tofile(folder / name)
            csv.writer(f).writerow([name, 2, label])
    return folder


def test_bad_data_is_one_line_and_no_study(tmp_path):
    labels = [0, 1] * 10
    cases = {
        "label7": (_vww01(tmp_path / "label7", labels[:5] + [7] + labels[6:]), "line 6 has label 7"),
        "short": (_vww01(tmp_path / "short", labels, sizes={3: 100}), "is 100 bytes"),
        "badrow": (_vww01(tmp_path / "badrow", labels), "expected file_name,2,label"),
        "missing": (_vww01(tmp_path / "missing", labels), "cannot be read"),
    }
    with open(tmp_path / "badrow" / "y_labels.csv", "a") as f:
        f.write("img999.bin,2\n")
    (tmp_path / "missing" / "img004.bin").unlink()
    for name, (folder, fragment) in cases.items():
        proc = run_cli("search", "--space", TINY, "--data", folder, "--study", name, "--results-dir",
                       tmp_path / "results", "--n-trials", "1")
        assert_one_line_error(proc, fragment)
        assert not (tmp_path / "results" / name).exists()


def test_evaluate_refuses_a_label_of_seven(tmp_path, shared_models):
    folder = _vww01(tmp_path / "v", [0, 1, 7, 0])
    proc = run_cli("evaluate", shared_models / "mlperf_vww_96_int8.tflite", "--data", folder)
    assert_one_line_error(proc, "has label 7; labels must be 0 (non-person) or 1 (person)")


# ---- a study is judged under one budget, one space file, one halving ----

def test_resume_with_another_budget_space_or_halving_is_refused(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text((REPO / "tests/spaces/tiny.yaml").read_text())
    base = ["search", "--space", space, "--objectives", "capacity,sram", "--study", "r", "--n-trials", "3",
            "--results-dir", tmp_path / "results", "--no-export-winner"]
    assert run_cli(*base).returncode == 0
    journal = tmp_path / "results/r/study.journal"
    before = journal.read_bytes()
    assert_one_line_error(run_cli(*base, "--sram", "100KB"), "was searched under SRAM ≤ 250,000 B")
    space.write_text(space.read_text().replace("width: [0.25, 0.5]", "width: [0.25, 0.75]"))
    assert_one_line_error(run_cli(*base), "changed since study 'r' began")
    assert journal.read_bytes() == before
    space.write_text(space.read_text().replace("width: [0.25, 0.75]", "width: [0.25, 0.5]") + "# a comment\n")
    assert run_cli(*base).returncode == 0  # layout and comments are not the space


@pytest.mark.slow
def test_halving_stops_a_dominated_candidate_and_records_it(tmp_path):
    """Three rung results from 'another worker' dominate everything: the first candidate stops at rung 1.

    ``--timeout 1s`` lets exactly one candidate start: with a longer one a fast machine went on to a
    later, smaller network that (rightly) reached the front at rung 1 and trained to the end.
    """
    from mcunas.data.synth import synthesize
    from mcunas.search.storage import open_storage

    synthesize(tmp_path / "d", n=120, resolution=32, seed=4)
    url = f"journal:{tmp_path}/h.journal"
    study = optuna.create_study(study_name="h", storage=open_storage(url), directions=["maximize", "minimize"])
    for acc in (0.99, 0.98, 0.97):
        study.add_trial(optuna.trial.create_trial(
            values=[acc, 1.0], user_attrs={"costs": {"sram_tflm_bytes": 1}, "rung_accuracies": {"1": acc}}))
    proc = run_cli("search", "--space", TINY, "--data", tmp_path / "d", "--study", "h", "--storage", url,
                   "--epochs", "2", "--halving", "2", "--batch", "16", "--n-trials", "1", "--timeout", "1s",
                   "--results-dir", tmp_path / "results", "--no-export-winner", "--json")
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert fig["trained"] == 0 and fig["pruned"] >= 1  # a stopped candidate is not counted as trained
    stopped = [t for t in optuna.load_study(study_name="h", storage=open_storage(url)).trials
               if t.state == optuna.trial.TrialState.PRUNED]
    assert stopped and all(t.user_attrs["rung"] == 1 and 0 <= t.user_attrs["rung_accuracy"] <= 1
                           and "costs" in t.user_attrs for t in stopped)
    recorded = optuna.load_study(study_name="h", storage=open_storage(url)).user_attrs
    assert recorded["halving"] == {"eta": 2, "rungs": [1]} and 0.4 < recorded["majority_test_accuracy"] < 1
    df = pd.read_csv(tmp_path / "results/h/trials.csv")
    rows = df[df.status == "pruned"]
    assert len(rows) == len(stopped) and (rows.rung == 1).all() and rows.reason.str.contains("rung 1").all()
    q = json.loads(run_cli("query", "--study", "h", "--storage", url, "--json").stdout)
    assert q["studies"][0]["status_counts"]["pruned"] == len(stopped)
    assert all(r["status"] == "trained" for r in q["studies"][0]["best"])


def test_negative_qat_epochs_on_search_is_one_line_and_writes_nothing(tmp_path):
    proc = run_cli("search", "--study", "q", "--qat-epochs", "-2", "--results-dir", tmp_path / "results")
    assert_one_line_error(proc, "--qat-epochs must be 0")
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_search_with_qat_records_int8_accuracy_before_and_after_and_both_splits(tmp_path):
    from mcunas.data.synth import synthesize
    from mcunas.search.storage import open_storage

    synthesize(tmp_path / "d", n=120, resolution=32, seed=5)
    url = f"journal:{tmp_path}/q.journal"
    proc = run_cli("search", "--space", TINY, "--data", tmp_path / "d", "--study", "q", "--storage", url,
                   "--epochs", "1", "--qat-epochs", "1", "--batch", "16", "--n-trials", "1",
                   "--results-dir", tmp_path / "results", "--no-export-winner", "--json")
    assert proc.returncode == 0, proc.stderr
    trained = [t for t in optuna.load_study(study_name="q", storage=open_storage(url)).trials
               if t.state == optuna.trial.TrialState.COMPLETE and "rejected" not in t.user_attrs]
    assert len(trained) == 1
    attrs = trained[0].user_attrs
    for key in ("int8_accuracy_before_qat", "int8_accuracy", "val_accuracy", "test_accuracy"):
        assert 0 <= attrs[key] <= 1, key
    assert attrs["int8_accuracy"] == attrs["val_accuracy"] and attrs["train_s"] > 0
    df = pd.read_csv(tmp_path / "results/q/trials.csv")
    assert df[df.status == "trained"].int8_accuracy_before_qat.notna().all()
