"""Names, paths and URLs a user or a stored study hands mcunas are never trusted as they are.

* a study name becomes ``results/<study>/``: anything that could leave
  ``results/`` is refused in one line before anything is written;
* artefact paths stored in trial attributes are data: export copies only
  files inside the study's own results folder;
* a PostgreSQL password is never printed, in text, JSON or errors.
"""

import json
import os

import pytest

from conftest import assert_one_line_error, run_cli

COST_ONLY = ["--objectives", "capacity,sram", "--space", "mobilenet_v2", "--sram", "150KB"]
ARCH = "in_r32_c1-cv_k3_s2_c8-ds_k3_s2_c8-gap-fc_c2"
BAD_NAMES = ["", "../escaped", "/tmp/abs", "a/b", "..", ".hidden", "-rf", "two\nlines", "tab\there", "x" * 101]


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("command, name", [
    *((["search", *COST_ONLY, "--n-trials", "1"], name) for name in BAD_NAMES),
    *((command, name) for command in (["query"], ["export", "--best", "--out", "out"])
      for name in ("", "../escaped", "two\nlines")),
])
def test_bad_study_names_are_refused_before_anything_is_written(tmp_path, command, name):
    work = tmp_path / "work"
    work.mkdir()
    proc = run_cli(*command, f"--study={name}", cwd=work)
    assert_one_line_error(proc, "is not allowed: use 1-100 letters, digits, '_', '.' or '-'")
    assert _tree(tmp_path) == ["work"]


def test_good_study_names_still_work(tmp_path):
    for name in ("v1", "mbv2_0.35-run.3", "_x"):
        proc = run_cli("search", *COST_ONLY, "--n-trials", "1", "--study", name, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / "results" / name / "study.journal").is_file()


def _study_with_paths(root, keras_path, tflite_path):
    """results/evil/study.journal: one trained-looking trial whose artefact paths are the given ones."""
    import optuna

    from mcunas.arch import parse_arch
    from mcunas.cost import estimate
    from mcunas.search.storage import open_storage

    storage = open_storage(f"journal:{root / 'results/evil/study.journal'}")
    study = optuna.create_study(study_name="evil", storage=storage, directions=["maximize", "minimize"])
    study.set_user_attr("objectives", ["accuracy", "sram"])
    trial = study.ask()
    costs = estimate(parse_arch(ARCH))
    for key, value in {"arch": ARCH, "costs": costs, "int8_accuracy": 0.9, "float_accuracy": 0.9,
                       "keras_path": str(keras_path), "tflite_path": str(tflite_path)}.items():
        trial.set_user_attr(key, value)
    study.tell(trial, [0.9, float(costs["sram_paper_bytes"])])


@pytest.mark.parametrize("layout", ["absolute", "dotdot", "symlink"])
def test_export_copies_no_artefact_from_outside_the_study_folder(tmp_path, layout):
    secret = tmp_path / "secret"
    secret.mkdir()
    for name in ("model.keras", "model_int8.tflite"):
        (secret / name).write_bytes(b"not yours to copy")
    root = tmp_path / "campaign"
    trial_dir = root / "results/evil/trials/00000"
    trial_dir.mkdir(parents=True)
    if layout == "absolute":
        keras, tflite = secret / "model.keras", secret / "model_int8.tflite"
    elif layout == "dotdot":
        keras, tflite = "results/evil/../../../secret/model.keras", "results/evil/../../../secret/model_int8.tflite"
    else:
        for name in ("model.keras", "model_int8.tflite"):
            os.symlink(secret / name, trial_dir / name)
        keras, tflite = trial_dir / "model.keras", trial_dir / "model_int8.tflite"
    _study_with_paths(root, keras, tflite)
    proc = run_cli("export", "--study", "evil", "--trial", "0", "--out", tmp_path / "out", cwd=root)
    assert_one_line_error(proc, "trial 0's keras_path ")
    assert f"resolves to {secret / 'model.keras'}, outside study 'evil''s results folder" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_storage_password_is_never_printed(tmp_path, postgres_url):
    from pg_server import PASSWORD

    proc = run_cli("search", "--storage", postgres_url, "--study", "pw", *COST_ONLY, "--n-trials", "3",
                   "--results-dir", tmp_path / "results")
    assert proc.returncode == 0, proc.stderr
    text = run_cli("query", "--storage", postgres_url, "--study", "pw", cwd=tmp_path)
    as_json = run_cli("query", "--storage", postgres_url, "--study", "pw", "--json", cwd=tmp_path)
    missing = run_cli("query", "--storage", postgres_url, "--study", "nope", cwd=tmp_path)
    typo = run_cli("query", "--storage", postgres_url.replace("://", ":"), "--study", "pw", cwd=tmp_path)
    for p in (proc, text, as_json, missing, typo):
        assert PASSWORD not in p.stdout + p.stderr
    assert text.returncode == 0, text.stderr
    assert ":***@127.0.0.1" in text.stdout
    assert json.loads(as_json.stdout)["studies"][0]["storage"].startswith("postgresql://postgres:***@")
    assert_one_line_error(missing, "no study 'nope' in storage postgresql://postgres:***@")
    assert_one_line_error(typo, "unrecognised storage (not shown")
