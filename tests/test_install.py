"""Install like a user: the wheel carries every file the package reads at run time.

The end-to-end check (a fresh venv, the console script run outside the checkout) is
``.ci/wheel``; this test is the quick half that says which file is missing.
"""

import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO

from mcunas.spaces import SPACES_DIR, available_spaces


def test_the_package_reads_the_one_copy_of_the_spaces():
    """mcunas/spaces/search_spaces is the link to search_spaces/, not a second copy that could drift."""
    assert (REPO / "mcunas" / "spaces" / "search_spaces").is_symlink()
    assert SPACES_DIR.resolve() == (REPO / "search_spaces").resolve()
    assert available_spaces() == sorted(p.stem for p in (REPO / "search_spaces").glob("*.yaml"))


@pytest.mark.slow
def test_the_wheel_holds_every_package_file_and_every_space(tmp_path):
    # A clean copy: setuptools reuses build/lib, where a stale file would hide one missing here.
    src = tmp_path / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "results", "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("mcunas-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = {name: zf.read(name) for name in zf.namelist() if name.startswith("mcunas/")}

    spaces = sorted((REPO / "search_spaces").glob("*.yaml"))
    assert len(spaces) >= 3
    for space in spaces:
        assert shipped.get(f"mcunas/spaces/search_spaces/{space.name}") == space.read_bytes(), space.name
    package = REPO / "mcunas"
    wanted = sorted(p.relative_to(REPO).as_posix() for p in package.rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts)
    assert "mcunas/cost/data/latency_measurements.csv" in wanted
    assert [name for name in wanted if name not in shipped] == []
