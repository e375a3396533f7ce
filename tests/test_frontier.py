"""``mcunas frontier``: shares and cost-Pareto checked against an independent recount."""

import json
from collections import Counter

import pytest

from conftest import assert_one_line_error, run_cli
from mcunas.arch import parse_arch
from mcunas.cost import estimate
from mcunas.budget import parse_budget
from mcunas.spaces import RandomTrial, RecordingTrial, load_space, sample_arch

N = 600  # above the parallel threshold, so the multi-process costing path is the one checked


@pytest.fixture(scope="module")
def v1(tmp_path_factory):
    plot = tmp_path_factory.mktemp("frontier") / "v1.png"
    proc = run_cli("frontier", "--space", "mobilenet_v1", "--sram", "128KB", "--flash", "300KB",
                   "--macs", "20M", "--n", N, "--seed", 3, "--plot", plot, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), plot


def recount(space_name, budget, n, seed):
    """The same seeded draw, costed here in this process, one candidate at a time."""
    space, trial = load_space(space_name), RandomTrial(seed)
    out = []
    for _ in range(n):
        rec = RecordingTrial(trial)
        costs = estimate(sample_arch(space, rec))
        out.append((rec.params, costs, not budget.violations(costs)))
    return out


def test_shares_match_an_independent_recount(v1):
    result, _ = v1
    budget = parse_budget("128KB", "300KB", "20M")
    rows = recount("mobilenet_v1", budget, N, 3)
    assert result["fits"] == sum(fit for _, _, fit in rows) > 0
    assert result["share"] == pytest.approx(result["fits"] / N)
    assert result["share_by_budget"]["sram"] == pytest.approx(
        sum(c["sram_tflm_bytes"] <= 128_000 for _, c, _ in rows) / N)
    for dim in ("resolution", "width", "s4_k"):
        n_by = Counter(str(p[dim]) for p, _, _ in rows)
        fit_by = Counter(str(p[dim]) for p, _, fit in rows if fit)
        assert {v: (s["n"], s["fit"]) for v, s in result["share_by_value"][dim].items()} == \
               {v: (n_by[v], fit_by[v]) for v in n_by}
    # Larger inputs and widths cost more memory, so fewer of them fit.
    res = result["share_by_value"]["resolution"]
    assert res["96"]["share"] > res["224"]["share"]
    width = result["share_by_value"]["width"]
    assert width["0.25"]["share"] > width["1.0"]["share"]
    assert result["candidates_per_s"] > 0


def test_cost_pareto_is_feasible_and_non_dominated(v1):
    result, plot = v1
    front = result["pareto"]
    assert front
    for p in front:
        assert p["sram_bytes"] <= 128_000 and p["flash_bytes"] <= 300_000 and p["macs"] <= 20_000_000
        assert estimate(parse_arch(p["arch"]))["macs"] == p["macs"]
        assert not any(q["macs"] >= p["macs"] and q["sram_bytes"] <= p["sram_bytes"] and
                       q["flash_bytes"] <= p["flash_bytes"] and q != p for q in front)
    # The largest feasible MAC count of the whole sample is on the front.
    budget = parse_budget("128KB", "300KB", "20M")
    best = max(c["macs"] for _, c, fit in recount("mobilenet_v1", budget, N, 3) if fit)
    assert max(p["macs"] for p in front) == best
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_board_sets_sram_and_flash(tmp_path):
    proc = run_cli("frontier", "--space", "mobilenet_v2", "--board", "stm32f723", "--n", 50, "--no-plot", "--json")
    assert proc.returncode == 0, proc.stderr
    budget = json.loads(proc.stdout)["budget"]
    assert (budget["sram_bytes"], budget["flash_bytes"], budget["macs"]) == (256_000, 512_000, 60_000_000)


def test_user_board_from_yaml(tmp_path):
    boards = tmp_path / "boards.yaml"
    boards.write_text("my-m33:\n  core: cortex-m33\n  clock_mhz: 160\n  sram: 192KiB\n  flash: 512KiB\n")
    proc = run_cli("frontier", "--space", "mobilenet_v1", "--board", "my-m33", "--boards-file", boards,
                   "--macs", "10M", "--n", 50, "--no-plot", "--json")
    assert proc.returncode == 0, proc.stderr
    budget = json.loads(proc.stdout)["budget"]
    assert (budget["sram_bytes"], budget["flash_bytes"], budget["macs"]) == (192 * 1024, 512 * 1024, 10_000_000)


def test_text_output_names_the_figures(tmp_path):
    proc = run_cli("frontier", "--space", "mnasnet", "--n", 100, "--plot", tmp_path / "m.png")
    assert proc.returncode == 0, proc.stderr
    for fragment in ("sampled candidates fit", "candidates/s", "resolution", "cost-Pareto", "plot:"):
        assert fragment in proc.stdout
    assert (tmp_path / "m.png").is_file()


@pytest.mark.parametrize("args,fragment", [
    (("--space", "nope"), "unknown search space 'nope'"),
    (("--space", "mobilenet_v1", "--n", "0"), "--n must be at least 1"),
    (("--space", "mobilenet_v1", "--board", "nosuch"), "unknown board 'nosuch'"),
    (("--space", "mobilenet_v1", "--sram", "100"), "needs a unit"),
    (("--space", "mobilenet_v1", "--plot", "x.jpg"), "must end in .png"),
])
def test_bad_input_is_one_line(args, fragment):
    assert_one_line_error(run_cli("frontier", *args), fragment)
