"""Several workers on one study, on real storages: every trial recorded exactly once.

Cost-only objectives keep each worker fast while exercising the same
ask/cost/tell path, study creation race and storage writes as a campaign.
"""

import subprocess
import sys

import optuna
import pytest

from conftest import REPO, assert_one_line_error, run_cli

COST_ONLY = ["--objectives", "capacity,sram", "--space", "mobilenet_v2", "--sram", "150KB"]


def _start_worker(tmp_path, storage, study, n, seed):
    return subprocess.Popen(
        [sys.executable, "-m", "mcunas", "search", "--storage", storage, "--study", study, *COST_ONLY,
         "--n-trials", str(n), "--seed", str(seed), "--results-dir", str(tmp_path / "results"), "--json"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _two_workers_on_one_study(tmp_path, storage):
    import json

    workers = [_start_worker(tmp_path, storage, "shared", 25, seed) for seed in (1, 2)]
    figures = []
    for w in workers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
        figures.append(json.loads(out))
    from mcunas.search.storage import open_storage

    study = optuna.load_study(study_name="shared", storage=open_storage(storage))
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))  # every trial once, no gaps
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)  # none left RUNNING
    feasible = [t for t in trials if "rejected" not in t.user_attrs]
    assert len(feasible) == sum(f["trained"] for f in figures) == 50
    assert len(trials) == sum(f["trained"] + f["rejected"] for f in figures)
    owners = {t.user_attrs["worker"]["pid"] for t in trials if "worker" in t.user_attrs}
    assert len(owners) == 2  # both workers really took trials


def test_two_workers_share_one_postgres_study(tmp_path, postgres_url):
    _two_workers_on_one_study(tmp_path, postgres_url)


def test_two_workers_share_one_journal_file(tmp_path):
    _two_workers_on_one_study(tmp_path, f"journal:{tmp_path}/shared.journal")


def test_wrong_credentials_are_one_line_and_write_nothing(tmp_path, postgres_url):
    bad = postgres_url.replace(":mcunas-test@", ":wrong@")
    proc = run_cli("search", "--storage", bad, "--study", "x", *COST_ONLY, "--results-dir", tmp_path)
    assert_one_line_error(proc, "password authentication failed")
    assert "wrong" not in proc.stderr  # the password is never echoed
    assert "x" not in optuna.get_all_study_names(postgres_url)


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_same_seed_same_sequence_of_architectures(tmp_path, sampler):
    def archs(study):
        proc = run_cli("search", "--study", study, *COST_ONLY, "--sampler", sampler, "--n-trials", "15",
                       "--seed", "5", "--results-dir", tmp_path / "results")
        assert proc.returncode == 0, proc.stderr
        from mcunas.search.storage import default_storage_url, open_storage

        url = default_storage_url(study).replace("results/", f"{tmp_path}/results/", 1)
        return [t.user_attrs["arch"] for t in optuna.load_study(study_name=study, storage=open_storage(url)).trials]

    first, second = archs("a"), archs("b")
    assert len(first) >= 15 and first == second


def test_sqlite_with_another_live_worker_warns_and_names_the_alternatives(tmp_path):
    import os
    import socket

    url = f"sqlite:///{tmp_path}/s.db"
    first = run_cli("search", "--storage", url, "--study", "q", *COST_ONLY, "--n-trials", "2",
                    "--results-dir", tmp_path / "results")
    assert first.returncode == 0, first.stderr
    assert "SQLite locks" not in first.stderr
    study = optuna.load_study(study_name="q", storage=url)
    held = study.ask()  # a trial this (live) test process holds, as a parallel worker would
    held.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
    second = run_cli("search", "--storage", url, "--study", "q", *COST_ONLY, "--n-trials", "2",
                     "--results-dir", tmp_path / "results")
    assert second.returncode == 0, second.stderr
    assert f"{socket.gethostname()}:{os.getpid()} also work(s) on this SQLite study" in second.stderr
    assert "journal:FILE" in second.stderr and "postgresql://" in second.stderr
