"""--memory-plan offline in budgets: the judge, a cost-only search, resume, frontier, query and export refusals.

Cost-only searches (capacity,sram) run the real Optuna study on a journal file in seconds; the
figures asserted are the cost model's, checked against the file TFLM loads in tests/test_memory_plan.py.
"""

import pandas as pd
import pytest
from conftest import assert_one_line_error, cli_json, run_cli

from mcunas.budget import Budget, parse_budget
from mcunas.cost import estimate
from mcunas.errors import UserError
from mcunas.presets import preset_arch

# mobilenet_v1 with 95 KB of SRAM: the space's reference network the search queues first (α 0.25 at 96 px,
# wider later blocks) needs 99,360 B of arena with TFLM's planner and 80,928 B with the offline plan.
SEARCH = ["--space", "mobilenet_v1", "--objectives", "capacity,sram", "--sampler", "random", "--sram", "95KB"]


def test_offline_budget_reads_the_offline_arena_and_the_larger_file():
    costs = estimate(preset_arch("mlperf-vww"))
    stock, offline = parse_budget("95KB", "306500B"), parse_budget("95KB", "306500B", memory_plan="offline")
    assert stock.violations(costs) == ["sram_tflm_bytes 103,576 > 95,000"]
    # 85,144 B of arena fits, but the file with the plan (306,694 B predicted) no longer fits 306,500 B
    assert offline.violations(costs) == ["tflite_offline_bytes 306,694 > 306,500"]
    assert offline.judged(costs) == {"sram_bytes": 85_144, "flash_bytes": 306_694, "macs": 7_489_664}
    assert "offline memory plan" in offline.describe()
    with pytest.raises(UserError, match="needs --budget-model deployable"):
        Budget(model="paper", memory_plan="offline")
    # a budget stored before memory plans existed was judged with TFLM's own planner
    assert Budget.from_dict({"sram_bytes": 1, "model": "deployable"}).memory_plan == "stock"


def test_offline_search_judges_with_the_offline_figures_and_its_study_keeps_the_plan(tmp_path):
    results = tmp_path / "results"
    fig = cli_json("search", "--results-dir", results, *SEARCH, "--memory-plan", "offline", "--study", "o",
                   "--n-trials", "3")
    assert fig["trained"] == 3
    trials = pd.read_csv(results / "o/trials.csv")
    fits, rejected = trials[trials.status == "trained"], trials[trials.status == "rejected"]
    assert (fits.sram_tflm_offline_bytes <= 95_000).all() and (fits.tflite_offline_bytes <= 250_000).all()
    over = (rejected.sram_tflm_offline_bytes > 95_000) | (rejected.tflite_offline_bytes > 250_000) | (rejected.macs > 60e6)
    assert over.all() and rejected.reason.str.contains("_offline_bytes").all()
    # the queued reference network fits only with the plan
    assert ((fits.sram_tflm_bytes > 95_000) & (fits.sram_tflm_offline_bytes <= 95_000)).any()
    # the study recorded the plan: resuming with TFLM's planner is one line, and nothing is added
    proc = run_cli("search", "--results-dir", results, *SEARCH, "--study", "o", "--n-trials", "1")
    assert_one_line_error(proc, "offline memory plan")
    assert len(pd.read_csv(results / "o/trials.csv")) == len(trials)
    assert cli_json("search", "--results-dir", results, *SEARCH, "--memory-plan", "offline", "--study", "o",
                    "--n-trials", "1")["trained"] == 1
    # the same search with TFLM's planner never trains that network
    cli_json("search", "--results-dir", results, *SEARCH, "--study", "s", "--n-trials", "3")
    stock = pd.read_csv(results / "s/trials.csv")
    assert (stock[stock.status == "trained"].sram_tflm_bytes <= 95_000).all()

    # query: the campaign's plan by default, both arenas shown; --memory-plan stock asks the what-if
    storage = f"journal:{results / 'o/study.journal'}"
    own = cli_json("query", "--study", "o", "--storage", storage)["studies"][0]
    assert "offline memory plan" in own["budget"]["description"]
    assert all(r["sram_bytes"] == r["sram_tflm_offline_bytes"] for r in own["best"])
    assert any(r["sram_tflm_bytes"] > 95_000 for r in own["best"])
    what_if = cli_json("query", "--study", "o", "--storage", storage, "--memory-plan", "stock")["studies"][0]
    assert all(r["sram_bytes"] == r["sram_tflm_bytes"] <= 95_000 for r in what_if["best"])
    assert what_if["fitting"] < own["fitting"]
    # export --study: the campaign's plan; another named explicitly is one line
    proc = run_cli("export", "--study", "o", "--storage", storage, "--trial", "0", "--memory-plan", "stock",
                   "--out", tmp_path / "x")
    assert_one_line_error(proc, "was searched with --memory-plan offline, not stock")
    assert not (tmp_path / "x").exists()


def test_frontier_fits_more_of_the_space_with_the_offline_plan():
    args = ["frontier", "--space", "mobilenet_v1", "--sram", "100KB", "--flash", "1MB", "--n", "1000", "--no-plot"]
    stock, offline = cli_json(*args), cli_json(*args, "--memory-plan", "offline")
    # cost model, 1,000 seeded members: 276 fit with TFLM's planner, 285 with the offline plan
    assert (stock["fits"], offline["fits"]) == (276, 285)
    assert "offline memory plan" in offline["budget"]["description"]


def test_offline_plan_with_the_paper_budget_is_one_line(tmp_path):
    proc = run_cli("search", "--results-dir", tmp_path, *SEARCH, "--memory-plan", "offline", "--budget-model", "paper")
    assert_one_line_error(proc, "--memory-plan offline judges the TFLM arena")
