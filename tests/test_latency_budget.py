"""A latency limit judged before training through the one budget: search, frontier, query, bad input."""

import pandas as pd
import pytest

from conftest import assert_one_line_error, cli_json, run_cli
from mcunas.budget import PAPER_BUDGET, parse_budget
from mcunas.cost.boards import get_board
from mcunas.errors import UserError
from mcunas.presets import preset_arch

BOARD = "disco-f746ng"


def test_latency_limit_reads_the_upper_band_on_the_budgets_board():
    budget = parse_budget(latency="150ms", board=get_board(BOARD), defaults=PAPER_BUDGET)
    costs = budget.estimate(preset_arch("mlperf-vww"))
    assert costs["latency_ms"] < costs["latency_high_ms"]
    assert budget.judged(costs)["latency_high_ms"] == costs["latency_high_ms"]
    assert budget.fits(budget.judged(costs)) == (costs["latency_high_ms"] <= 150)
    tight = budget.with_limit("latency", costs["latency_high_ms"] - 0.01)
    assert tight.violations(costs) == [f"latency_high_ms {costs['latency_high_ms']:,} > "
                                       f"{costs['latency_high_ms'] - 0.01:,}"]
    assert budget.with_limit("latency", costs["latency_high_ms"]).violations(costs) == []


def test_latency_limit_without_board_or_unit_is_refused():
    with pytest.raises(UserError, match="needs a board"):
        parse_budget(latency="100ms")
    assert_one_line_error(run_cli("frontier", "--space", "mobilenet_v1", "--latency", "100ms", "--n", "10"),
                          "needs a board")
    assert_one_line_error(run_cli("frontier", "--space", "mobilenet_v1", "--board", BOARD, "--latency", "100",
                                  "--n", "10"), "needs a unit")


def test_search_rejects_over_latency_before_training_and_query_ladders_it(tmp_path):
    results = tmp_path / "results"
    fig = cli_json("search", "--results-dir", results, "--objectives", "capacity,sram", "--space", "mobilenet_v1",
                   "--study", "lat", "--n-trials", "20", "--board", BOARD, "--latency", "60ms", "--seed", "2")
    assert fig["trained"] == 20 and fig["rejected"] > 0
    trials = pd.read_csv(results / "lat/trials.csv")
    fits, rejected = trials[trials.status == "trained"], trials[trials.status == "rejected"]
    assert (fits.latency_high_ms <= 60).all()
    assert rejected.reason.str.contains("latency_high_ms").any()
    answer = cli_json("query", "--study", "lat", "--storage", f"journal:{results}/lat/study.journal",
                      "--board", BOARD, "--latency", "30ms")
    study = answer["studies"][0]
    assert study["budget"]["latency_ms"] == 30
    assert all(row["latency_high_ms"] <= 30 for row in study["best"])
    assert "latency" in {row["dimension"] for row in answer["tightening"]}


def test_frontier_reports_the_share_within_the_latency_limit():
    out = cli_json("frontier", "--space", "mobilenet_v1", "--board", BOARD, "--latency", "80ms", "--n", "300",
                   "--no-plot")
    assert 0 < out["share_by_budget"]["latency"] < 1
    assert out["share"] <= out["share_by_budget"]["latency"]
