"""Child processes (TFLM measurement, training workers) never import from the working folder.

``python -m`` puts the current folder first on a child's import path; a
campaign run from a folder holding a ``random.py`` or ``tflite_micro.py``
would import (execute) those instead of the real modules.  The parent here
runs as the installed console script does (``-P``: the working folder is not
on its path); every module below raises if anything imports it.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

TRAPS = ("random", "tflite_micro", "numpy")


@pytest.fixture
def trapped_folder(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    for name in TRAPS:
        (folder / f"{name}.py").write_text(f"raise RuntimeError('booby trap: {name}.py in the working folder was imported')\n")
    return folder


def run_like_console_script(*args, cwd):
    """``mcunas ARGS`` as the installed console script runs it: the working folder not on the path."""
    return subprocess.run([sys.executable, "-P", "-m", "mcunas", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_measure_ignores_modules_in_the_working_folder(trapped_folder, shared_models):
    proc = run_like_console_script("measure", shared_models / "mlperf_vww_96_int8.tflite", "--json", cwd=trapped_folder)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tflm_arena_bytes"] == 103_672  # the reference model's arena (MISSION.md)


@pytest.mark.slow
def test_training_worker_ignores_modules_in_the_working_folder(trapped_folder, tmp_path):
    from mcunas.data.synth import synthesize

    synthesize(tmp_path / "data", n=64, resolution=32, seed=1)
    proc = run_like_console_script(
        "search", "--space", REPO / "tests/spaces/tiny.yaml", "--data", tmp_path / "data", "--study", "t",
        "--epochs", "1", "--batch", "16", "--n-trials", "1", "--results-dir", tmp_path / "results", "--json",
        cwd=trapped_folder)
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(proc.stdout)
    assert fig["trained"] == 1 and fig["failed"] == 0
    assert (tmp_path / "results/t/winner/model_int8.tflite").is_file()
