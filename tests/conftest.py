"""Shared fixtures: the CLI as a user runs it, and the shared real data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def run_cli(*args, timeout=600, env=None, cwd=None):
    """Run ``mcunas ARGS`` in a fresh process; returns the CompletedProcess.

    PYTHONPATH names this checkout, so a run from another folder (``cwd``) still
    tests this tree's ``mcunas`` and not whichever one is installed.
    """
    return subprocess.run(
        [sys.executable, "-m", "mcunas", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


def cli_json(*args, **kw):
    proc = run_cli(*args, "--json", **kw)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_one_line_error(proc, fragment):
    """Bad input: exit status 2, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mcunas: error:"), proc.stderr
    assert fragment in lines[0], proc.stderr


@pytest.fixture(autouse=True)
def user_cache_dir(tmp_path, monkeypatch):
    """Keep every test's MLPerf-folder caches out of ~/.cache/mcunas."""
    monkeypatch.setenv("MCUNAS_CACHE_DIR", str(tmp_path / "user-cache"))
    return tmp_path / "user-cache"


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    """160 generated 48-pixel person/not-person images (seed 3): a training set small enough for tests."""
    from mcunas.data.synth import synthesize

    out = tmp_path_factory.mktemp("synth") / "data"
    synthesize(out, n=160, resolution=48, seed=3)
    return out


@pytest.fixture
def shared_data():
    if not (SHARED / "data").is_dir():
        pytest.skip(f"real data folder {SHARED / 'data'} is absent (tests read ../shared/data beside the repo)")
    return SHARED / "data"


@pytest.fixture
def shared_models():
    if not (SHARED / "models").is_dir():
        pytest.skip(f"reference models folder {SHARED / 'models'} is absent (../shared/models beside the repo)")
    return SHARED / "models"


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the session (started as the postgres user, loopback only)."""
    from pg_server import pg_bin, postgres_server

    if pg_bin() is None:
        pytest.skip("PostgreSQL server binaries are not installed (.ci/run installs Debian's postgresql)")
    with postgres_server() as url:
        yield url
