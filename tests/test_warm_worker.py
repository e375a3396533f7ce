"""The warm training worker: one process for many candidates, cooperative stops, and no hang or crash stalls a campaign.

The slow tests use the tiny test space on a small generated set; faults are
real: SIGKILL of the worker after its first epoch line (TensorFlow imported,
training under way) and SIGSTOP (a worker that hangs: it neither dies nor
answers), each found by the pid the worker writes on its ``started`` line.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from conftest import REPO, assert_one_line_error, run_cli

TINY = str(REPO / "tests/spaces/tiny.yaml")


@pytest.mark.parametrize("value, fragment", [("soon", "cannot read --candidate-timeout 'soon'"),
                                             ("0s", "--candidate-timeout must be longer than 0")])
def test_bad_candidate_timeout_is_one_line(tmp_path, value, fragment):
    proc = run_cli("search", "--space", TINY, "--study", "t", "--results-dir", tmp_path / "results",
                   "--candidate-timeout", value)
    assert_one_line_error(proc, fragment)
    assert not (tmp_path / "results").exists()


def test_default_limit_scales_with_epochs_images_and_macs_above_a_floor(synth_data):
    from mcunas.data.formats import count_images
    from mcunas.search.training import LIMIT_FLOOR_S, candidate_limit_s

    vww = str(synth_data)
    assert count_images(vww) == 160
    c = SimpleNamespace(candidate_timeout_s=None, data=vww, eval_data=None, epochs=5, qat_epochs=0)
    assert candidate_limit_s(c, 7_489_664) == LIMIT_FLOOR_S  # 5 epochs x 160 images: the floor
    long = candidate_limit_s(SimpleNamespace(**{**vars(c), "epochs": 5000}), 7_489_664)
    assert long > LIMIT_FLOOR_S
    assert candidate_limit_s(SimpleNamespace(**{**vars(c), "epochs": 10000}), 7_489_664) == pytest.approx(2 * long)
    assert candidate_limit_s(SimpleNamespace(**{**vars(c), "epochs": 5000}), 60_000_000) > long
    assert candidate_limit_s(SimpleNamespace(**{**vars(c), "eval_data": vww, "epochs": 5000}), 7_489_664) == \
        pytest.approx(2 * long)  # eval images count too
    assert candidate_limit_s(SimpleNamespace(**{**vars(c), "epochs": 2500, "qat_epochs": 2500}), 7_489_664) == \
        pytest.approx(long)  # QAT epochs cost like training epochs
    assert candidate_limit_s(SimpleNamespace(**{**vars(c), "candidate_timeout_s": 42.0}), 7_489_664) == 42.0


def _job(tmp_path, data, name, arch=None, epochs=2):
    from mcunas.train.worker import TrainJob

    arch = arch or "in_r32_c1-cv_k3_s2_c16-ds_k5_s1_c16-ds_k3_s2_c32-gap-fc_c2"
    return TrainJob(arch=arch, data=str(data), eval_data=None, epochs=epochs, batch=16, recipe="fast", seed=0,
                    out_dir=str(tmp_path / name))


def _started_pid(job_dir: Path) -> int:
    lines = [ln.split() for ln in (job_dir / "progress.txt").read_text().splitlines() if ln.startswith("started")]
    return int(lines[0][1])


class _Prune(Exception):
    pass


@pytest.mark.slow
def test_one_worker_serves_a_pruned_a_failed_and_a_trained_candidate(tmp_path, synth_data):
    from mcunas.train.worker import TrainingWorker

    worker = TrainingWorker()
    try:
        def prune(epoch, accuracy):
            raise _Prune

        with pytest.raises(_Prune):
            worker.run(_job(tmp_path, synth_data, "pruned", epochs=50), prune)
        stopped = json.loads((tmp_path / "pruned/result.json").read_text())
        assert stopped["stopped"] and stopped["error"].startswith("stopped on request (in epoch ")
        bad = worker.run(_job(tmp_path, synth_data, "bad", arch="in_r32_c1-zz_c8-gap-fc_c2"), lambda e, a: None)
        assert "error" in bad and "zz" in bad["error"]
        epochs = []
        good = worker.run(_job(tmp_path, synth_data, "good"), lambda e, a: epochs.append(e))
        assert epochs == [1, 2] and 0 <= good["int8_accuracy"] <= 1 and good["tflm_arena_bytes_measured"] > 0
        pids = {_started_pid(tmp_path / name) for name in ("pruned", "bad", "good")}
        assert pids == {worker.proc.pid} and worker.jobs_done == 3  # never restarted: TF imported once
        assert "Traceback" in (tmp_path / "bad/worker.log").read_text()  # each job's output in its own log
    finally:
        worker.close()


def _wait_for(predicate, proc, what, timeout_s=180):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc.poll() is None, f"campaign ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s"
        time.sleep(0.1)


@pytest.mark.slow
def test_killed_and_hung_workers_fail_one_trial_each_and_the_next_trains_on_a_fresh_worker(tmp_path, synth_data):
    results = tmp_path / "results"
    args = [sys.executable, "-m", "mcunas", "search", "--space", TINY, "--data", str(synth_data), "--study", "f",
            "--epochs", "2", "--batch", "16", "--results-dir", str(results), "--n-trials", "1",
            "--candidate-timeout", "60s", "--no-export-winner", "--json"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    trials = results / "f" / "trials"

    def progress(number: int) -> str:
        path = trials / f"{number:05d}" / "progress.txt"
        return path.read_text() if path.exists() else ""

    try:
        # trial 0: SIGKILL once it reported its first epoch (TensorFlow imported, training under way)
        _wait_for(lambda: "epoch 1 " in progress(0), proc, "epoch 1 of trial 0")
        killed = _started_pid(trials / "00000")
        os.kill(killed, signal.SIGKILL)
        # trial 1, on a fresh worker: SIGSTOP once it started, so it hangs until the per-candidate limit
        _wait_for(lambda: "started" in progress(1), proc, "trial 1 starting")
        hung = _started_pid(trials / "00001")
        assert hung != killed
        os.kill(hung, signal.SIGSTOP)
        out, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["trained"] == 1 and json.loads(out)["failed"] == 2
    assert _started_pid(trials / "00002") not in (killed, hung)

    from mcunas.search.storage import open_storage

    study = optuna.load_study(study_name="f", storage=open_storage(f"journal:{results}/f/study.journal"))
    by_number = {t.number: t for t in study.trials}
    assert by_number[0].state == optuna.trial.TrialState.FAIL
    assert by_number[0].user_attrs["fail_reason"].startswith("worker was killed by SIGKILL and left no result")
    assert by_number[1].state == optuna.trial.TrialState.FAIL
    assert by_number[1].user_attrs["fail_reason"].startswith("exceeded the per-candidate limit of 1m ")
    assert by_number[2].state == optuna.trial.TrialState.COMPLETE and "int8_accuracy" in by_number[2].user_attrs
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)  # the hung worker was killed, not left stopped
