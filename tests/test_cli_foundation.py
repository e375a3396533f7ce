"""The foundation's commands as a user runs them: figures, reproducibility, one-line errors."""

import pytest

from conftest import assert_one_line_error, cli_json, run_cli
from mcunas.errors import UserError
from mcunas.units import parse_bytes, parse_count


def test_estimate_mlperf_preset_json():
    fig = cli_json("estimate", "--preset", "mlperf-vww")
    assert fig["macs"] == 7_489_664
    assert fig["sram_paper_bytes"] == 55_296
    assert fig["weight_bytes"] == 210_850


def test_estimate_accepts_a_pasted_string_and_a_board():
    arch = cli_json("estimate", "--preset", "mnasnet-a1-0.35-96")["arch"]
    fig = cli_json("estimate", arch, "--board", "stm32f723")
    assert fig["arch"] == arch and fig["board"] == "stm32f723" and fig["latency_ms"] > 0


def test_sample_is_reproducible_and_seed_dependent():
    a = run_cli("sample", "--space", "mobilenet_v2", "--n", "5", "--seed", "7").stdout.split()
    b = run_cli("sample", "--space", "mobilenet_v2", "--n", "5", "--seed", "7").stdout.split()
    c = run_cli("sample", "--space", "mobilenet_v2", "--n", "5", "--seed", "8").stdout.split()
    assert len(a) == 5 and a == b and a != c


def test_sample_accepts_a_space_file_path(tmp_path):
    proc = run_cli("sample", "--space", "search_spaces/mnasnet.yaml", "--n", "2")
    assert proc.returncode == 0 and len(proc.stdout.split()) == 2


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["estimate", "--preset", "nope"], "unknown preset 'nope'"),
        (["estimate", "in_r96_c3-cv_k3_s2_c8-gap"], "malformed architecture"),
        (["estimate", "in_r96_c3-cv_k3_s2_c0-gap-fc_c2"], "zero output channels"),
        (["estimate", "--preset", "mlperf-vww", "--board", "arduino"], "unknown board 'arduino'"),
        (["sample", "--space", "resnet"], "unknown search space 'resnet'"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, fragment):
    assert_one_line_error(run_cli(*args), fragment)


def test_budget_units():
    assert parse_bytes("250KB") == 250_000
    assert parse_bytes("0.25MB") == 250_000
    assert parse_bytes("256KiB") == 262_144
    assert parse_count("60M") == 60_000_000
    with pytest.raises(UserError, match="needs a unit"):
        parse_bytes("250")
    with pytest.raises(UserError, match="negative"):
        parse_bytes("-5KB")
    with pytest.raises(UserError, match="needs a unit"):
        parse_count("60MB")


def test_boards_lists_the_paper_table_and_user_boards(tmp_path):
    extra = tmp_path / "boards.yaml"
    extra.write_text("my-board: {core: cortex-m4, clock_mhz: 64, sram: 128KB, flash: 512KB}\n")
    boards = {b["name"]: b for b in cli_json("boards", "--boards-file", extra)}
    assert boards["nucleo-f746zg"]["sram_bytes"] == 320_000
    assert boards["imxrt1060"]["flash_bytes"] is None
    assert boards["my-board"]["sram_bytes"] == 128_000


@pytest.mark.parametrize("content, fragment", [
    ("my-board: {core: cortex-m4, clock_mhz: 64, sram: 128KB, flash: 512KB, source: \xe9}\n".encode("latin-1"),
     "boards file {extra} is not UTF-8 text (byte 78): save it as UTF-8"),
    (b"my-board: {core: cortex-m4, clock_mhz: [64], sram: 128KB, flash: 512KB}\n", "has clock_mhz '[64]'"),
    (b"my-board: {core: cortex-m4, clock_mhz: -64, sram: 128KB, flash: 512KB}\n", "has clock_mhz '-64'"),
])
def test_a_bad_boards_file_is_one_line(tmp_path, content, fragment):
    extra = tmp_path / "boards.yaml"
    extra.write_bytes(content)
    assert_one_line_error(run_cli("estimate", "--preset", "mlperf-vww", "--board", "my-board", "--boards-file", extra),
                          fragment.format(extra=extra))
