"""The benchmarks still run (tiny sizes); their figures are reported from real runs, not here."""

from conftest import cli_json


def test_bench_cost_reports_every_space():
    fig = cli_json("bench", "cost", "--n", "20", "--repeats", "1")
    assert set(fig) == {"mnasnet", "mobilenet_v1", "mobilenet_v2", "shufflenet_v2"}
    assert all(v > 0 for r in fig.values() for v in r.values())


def test_bench_search_compares_samplers_against_random():
    fig = cli_json("bench", "search", "--trials", "15", "--seeds", "1", "--samplers", "random,nsga2",
                   "--reject-n", "20")
    q = fig["sampler_quality"]
    assert q["random"]["ratio_vs_random"] == 1.0 and q["nsga2"]["hypervolume_median"] >= 0
    assert fig["rejected_per_s_journal"]["random"] > 0
