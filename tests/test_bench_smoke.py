"""The benchmarks still run (tiny sizes); their figures are reported from real runs, not here."""

import pytest

from conftest import assert_one_line_error, cli_json, run_cli


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


@pytest.mark.parametrize("args, fragment", [
    (("cost", "--n", "-1"), "--n must be at least 1, got -1"),
    (("cost", "--repeats", "0"), "--repeats must be at least 1, got 0"),
    (("fidelity", "--n", "-1", "--space", "mobilenet_v1"), "--n must be at least 1, got -1"),
    (("search", "--trials", "-1"), "--trials must be at least 1, got -1"),
    (("search", "--seeds", "0"), "--seeds must be at least 1, got 0"),
    (("search", "--reject-n", "-1"), "--reject-n must be at least 1, got -1"),
    (("data", "--rounds", "0"), "--rounds must be at least 1, got 0"),
])
def test_a_count_below_one_is_one_line_and_writes_nothing(tmp_path, args, fragment):
    """Today `bench cost --n -1` prints negative throughputs and `bench fidelity --n -1` an empty CSV."""
    assert_one_line_error(run_cli("bench", *args, cwd=tmp_path), fragment)
    assert list(tmp_path.iterdir()) == []
