"""``mcunas query`` on real cost-only studies made by ``mcunas search`` (no training, seconds).

Every answer is checked against an independent reading of the study's own
``trials.csv``, which ``mcunas search`` writes from the same storage.
"""

import json

import pandas as pd
import pytest

from conftest import assert_one_line_error, run_cli

PAPER_BUDGET = {"sram": 250_000, "flash": 250_000, "macs": 60_000_000}


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """Two cost-only studies (MobileNetV1, MobileNetV2) in their default journals under ``results/``."""
    root = tmp_path_factory.mktemp("query")
    for name, space, seed in (("v1", "mobilenet_v1", 1), ("v2", "mobilenet_v2", 2)):
        proc = run_cli("search", "--study", name, "--space", space, "--objectives", "capacity,sram",
                       "--sampler", "random", "--seed", seed, "--n-trials", 20, "--budget-model", "paper",
                       cwd=root)
        assert proc.returncode == 0, proc.stderr
    return root


def query(root, *args):
    return run_cli("query", *args, cwd=root)


def query_json(root, *args):
    proc = query(root, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def costed(root, study):
    """Independent reading: every costed trial of the study, one row per architecture."""
    df = pd.read_csv(root / "results" / study / "trials.csv")
    return df[df.status.isin(["trained", "rejected"])].sort_values("number").drop_duplicates("arch")


def test_cost_only_ranking_matches_trials_csv(studies):
    sram = 100_000
    out = query_json(studies, "--study", "v1", "--sram", "100KB", "--budget-model", "paper", "--top", "5")
    s = out["studies"][0]
    assert "cost-only" in s["ranked_by"] and "capacity" in s["ranked_by"]
    df = costed(studies, "v1")
    inside = df[(df.sram_paper_bytes <= sram) & (df.weight_bytes <= PAPER_BUDGET["flash"])
                & (df.macs <= PAPER_BUDGET["macs"])]
    assert s["fitting"] == len(inside) > 0
    expected = inside.sort_values(["macs", "sram_paper_bytes", "number"], ascending=[False, True, True])
    assert [r["number"] for r in s["best"]] == expected.number.head(5).tolist()
    for r in s["best"]:
        assert r["sram_bytes"] <= sram and r["flash_bytes"] <= PAPER_BUDGET["flash"] and r["sram_figure"] == "paper"
    # The Pareto set (capacity up, SRAM down) holds no dominated member, and the best one is on it.
    front = s["pareto"]
    assert s["best"][0]["number"] in {r["number"] for r in front}
    for a in front:
        assert not any(b["macs"] >= a["macs"] and b["sram_bytes"] <= a["sram_bytes"] and
                       (b["macs"], b["sram_bytes"]) != (a["macs"], a["sram_bytes"]) for b in front)


def test_tightening_ladder_is_monotone_and_correct(studies):
    out = query_json(studies, "--study", "v1", "--budget-model", "paper")
    rows = out["tightening"]
    sram_rows = [r for r in rows if r["dimension"] == "sram"]
    # Starts at the campaign's own budget (250KB), then the documented ladder below it.
    assert [r["limit"] for r in sram_rows[:4]] == [250_000, 192_000, 128_000, 96_000]
    df = costed(studies, "v1")
    for r in rows:
        limits = {**PAPER_BUDGET, r["dimension"]: r["limit"]}
        inside = df[(df.sram_paper_bytes <= limits["sram"]) & (df.weight_bytes <= limits["flash"])
                    & (df.macs <= limits["macs"])]
        cell = r["studies"]["v1"]
        assert cell["fitting"] == len(inside)
        assert cell["score"] == (inside.macs.max() if len(inside) else None)
    for dim in ("sram", "flash", "macs"):
        scores = [r["studies"]["v1"]["score"] or 0 for r in rows if r["dimension"] == dim]
        assert scores == sorted(scores, reverse=True)
    for dim in ("sram", "flash", "macs"):  # the ladder stops at the first rung where nothing fits
        cells = [r["studies"]["v1"]["score"] for r in rows if r["dimension"] == dim]
        assert None not in cells[:-1]


def test_several_studies_in_one_table(studies):
    out = query_json(studies, "--study", "v1", "--study", "v2", "--sram", "128KB", "--budget-model", "paper")
    assert [s["study"] for s in out["studies"]] == ["v1", "v2"]
    for row in out["tightening"]:
        assert set(row["studies"]) == {"v1", "v2"}
    text = query(studies, "--study", "v1", "--study", "v2", "--sram", "128KB", "--budget-model", "paper")
    assert text.returncode == 0, text.stderr
    assert "studies compared" in text.stdout and "tightening" in text.stdout
    best_v2 = out["studies"][1]["best"][0]
    assert best_v2["macs"] == costed(studies, "v2").query(
        "sram_paper_bytes <= 128000 and weight_bytes <= 250000 and macs <= 60000000").macs.max()


def test_csv_lists_ranked_trials(studies):
    proc = query(studies, "--study", "v1", "--sram", "128KB", "--budget-model", "paper", "--top", "3", "--csv")
    assert proc.returncode == 0, proc.stderr
    from io import StringIO

    df = pd.read_csv(StringIO(proc.stdout))
    assert df["rank"].tolist() == [1, 2, 3]
    assert {"study", "number", "arch", "sram_bytes", "flash_bytes", "macs", "on_pareto"} <= set(df.columns)
    assert (df.sram_bytes <= 128_000).all()


def test_unmeetable_budget_shows_nearest_and_fails(studies):
    proc = query(studies, "--study", "v1", "--sram", "1KB", "--budget-model", "paper")
    assert_one_line_error(proc, "no trial of v1 meets SRAM ≤ 1,000 B")
    assert "nearest" in proc.stderr
    assert "nearest trials" in proc.stdout  # the table of the closest ones, by how far over
    smallest = costed(studies, "v1").sram_paper_bytes.min()
    assert f"sram +{smallest - 1000:,}" in proc.stdout


@pytest.mark.parametrize("args,fragment", [
    (("--study", "nope"), "no study storage at results/nope/study.journal"),
    (("--study", "nope", "--storage", "results/v1/study.journal"), "no study 'nope' in storage"),
    (("--study", "v1", "--storage", "sqlite:///missing.db"), "no study storage at missing.db"),
    (("--study", "v1", "--board", "nosuchboard"), "unknown board 'nosuchboard'"),
    (("--study", "v1", "--sram", "128"), "needs a unit"),
    (("--study", "v1", "--top", "0"), "--top must be at least 1"),
])
def test_bad_input_is_one_line(studies, args, fragment):
    assert_one_line_error(query(studies, *args, "--budget-model", "paper"), fragment)
    assert not (studies / "missing.db").exists()  # a query never creates a storage
