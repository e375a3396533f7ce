"""A space file with a missing key, a wrong type or bad bytes is one line at load time, never a traceback."""

import pytest

from conftest import REPO, assert_one_line_error, run_cli

from mcunas.errors import UserError
from mcunas.spaces import load_space

REFERENCE = (REPO / "search_spaces" / "mobilenet_v1.yaml").read_text()


def _edited(tmp_path, old: str, new: str):
    assert old in REFERENCE
    path = tmp_path / "edited.yaml"
    path.write_text(REFERENCE.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old, new, fragment", [
    ("stem: {k: 3, s: 2,", "stem: {s: 2,", "'k' is missing in stem"),
    ("{block: ds, c: 64, s: 1, n: 1,", "{block: ds, c: 64, s: 1,", "'n' is missing in stage 1"),
    ("head: {base_c: 1024, c: 0}", "tail: {}", "lacks the 'head' section"),
    ("n: [2, 1, 3], k: [3, 5]}", "n: [2, one], k: [3, 5]}", "'n' in stage 2 must be a whole number or a list of them, got 'one'"),
    ("width: [0.25,", "width: [wide,", "'width' must be a number or a list of them, got 'wide'"),
    ("stem: {k: 3,", "stem: {k: [3, 5],", "'k' in stem must be a whole number, got [3, 5]"),
    ("{block: ds, c: 64,", "{block: zz, c: 64,", "'block' in stage 1 must be one of cv, ds, ir, mp, sf, got 'zz'"),
    ("channel_divisor: 8", "channel_divisor: 0", "'channel_divisor' must be a whole number, at least 1, got 0"),
    ("head: {base_c: 1024, c: 0}", "head: 7", "head must be a mapping, got 7"),
    ("stages:\n", "stages: 5\nold_stages:\n", "'stages' must be a list of stages"),
    ("n: 1, k: [3, 5]}", "n: 1, k: []}", "'k' in stage 1 is an empty list"),
    ("input:\n", "input: [96]\nold_input:\n", "input must be a mapping, got [96]"),
])
def test_a_malformed_space_is_one_line_naming_the_key(tmp_path, old, new, fragment):
    path = _edited(tmp_path, old, new)
    with pytest.raises(UserError) as err:
        load_space(str(path))
    message = str(err.value)
    assert fragment in message and str(path) in message and "\n" not in message


def test_a_space_that_is_a_list_or_not_utf8_is_one_line_from_the_cli(tmp_path):
    listed = tmp_path / "listed.yaml"
    listed.write_text("- 1\n- 2\n")
    assert_one_line_error(run_cli("sample", "--space", listed, "--n", "1"), "must be a mapping of sections")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(REFERENCE.encode() + "# café\n".encode("latin-1"))
    assert_one_line_error(run_cli("sample", "--space", latin1, "--n", "1"), "is not UTF-8 text")


def test_a_space_beyond_the_arch_limits_is_one_line(tmp_path):
    """A typo such as n: 1000000000 is refused by the arch bounds, not built into a 10 GB network."""
    path = _edited(tmp_path, "{block: ds, c: 64, s: 1, n: 1,", "{block: ds, c: 64, s: 1, n: 1000000000,")
    proc = run_cli("sample", "--space", path, "--n", "1", timeout=60)
    assert_one_line_error(proc, "repeats must be 1..64, got 1000000000")
