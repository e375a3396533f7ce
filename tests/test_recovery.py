"""Dead workers' trials are failed and retried once, on real storages, without trusting a PID alone.

Each study is made by ``mcunas search``; trials "held by workers" are then
opened here exactly as a campaign opens them (``study.ask``, the candidate
costed, the lease written), with leases that describe a dead, replaced,
silent or live owner.  The next ``mcunas search`` must fail the dead ones,
queue each candidate again exactly once, leave the live ones alone and say
nothing but its own lines.
"""

import datetime
import os
import re
import subprocess
import time

import optuna
import pytest
from optuna.trial import TrialState

from conftest import run_cli

COST_ONLY = ["--objectives", "capacity,sram", "--space", "mobilenet_v2", "--sram", "150KB"]


def _search(tmp_path, storage, n):
    return run_cli("search", "--storage", storage, "--study", "r", *COST_ONLY, "--n-trials", n,
                   "--results-dir", tmp_path / "results")


def _open(storage):
    from mcunas.search.storage import open_storage

    return optuna.load_study(study_name="r", storage=open_storage(storage))


def _hold(study, lease=None, **attrs):
    """A RUNNING trial as a campaign leaves it mid-training: candidate costed, lease written (if any)."""
    from mcunas.budget import PAPER_BUDGET, parse_budget
    from mcunas.search.campaign import cost_candidate
    from mcunas.spaces import load_space

    trial = study.ask()
    cost_candidate(trial, load_space("mobilenet_v2"), parse_budget(sram="150KB", defaults=PAPER_BUDGET))
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if lease is not None:
        trial.set_user_attr("worker", lease)
    return trial.number


def _hold_without_owner_since(study, minutes):
    """A RUNNING trial with no lease that started ``minutes`` ago (its worker died before writing one)."""
    template = study.trials[0]
    frozen = optuna.trial.create_trial(state=TrialState.RUNNING, params=template.params,
                                       distributions=template.distributions)
    frozen.datetime_start = datetime.datetime.now() - datetime.timedelta(minutes=minutes)
    study.add_trial(frozen)
    return study.trials[-1].number


def _proc_start(pid):
    """Process start time in clock ticks since boot, read here independently of mcunas (field 22 of stat)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def _dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture(params=["journal", "postgres"])
def storage(request, tmp_path):
    if request.param == "journal":
        return f"journal:{tmp_path}/r.journal"
    import psycopg

    url = request.getfixturevalue("postgres_url")
    with psycopg.connect(url, autocommit=True) as conn:  # a fresh database per test
        name = f"rec{time.monotonic_ns()}"
        conn.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"


def test_dead_workers_trials_are_failed_and_retried_once_live_ones_kept(tmp_path, storage):
    from mcunas.search.recovery import MAX_RETRY, owner

    first = _search(tmp_path, storage, 3)
    assert first.returncode == 0, first.stderr
    study = _open(storage)
    me = {**owner(), "start": _proc_start(os.getpid())}  # this live process, as a lease names it
    dead = {
        "pid reused": _hold(study, {**me, "start": me["start"] - 1}),  # this live pid, another start time
        "pid gone": _hold(study, {**me, "pid": _dead_pid()}),
        "lease lapsed": _hold(study, {**me, "host": "other-machine", "renewed_at": time.time() - 300}),
        "no owner": _hold_without_owner_since(study, minutes=5),
    }
    exhausted = _hold(study, {**me, "pid": _dead_pid()}, retry=MAX_RETRY)
    held_at = time.monotonic()  # before the live trials start: their age is at most the time since then
    live = {
        "this process": _hold(study, me),
        "other machine, fresh lease": _hold(study, {**me, "host": "other-machine"}),
        "no owner yet": _hold(study),
    }
    ownerless = live["no owner yet"]
    proc = _search(tmp_path, storage, 8)
    assert proc.returncode == 0, proc.stderr
    from mcunas.search.recovery import LEASE_S

    if time.monotonic() - held_at > LEASE_S:  # a loaded machine: the ownerless trial may have come of age
        live.pop("no owner yet")
    # no deprecation or experimental warnings, no Optuna log lines: only mcunas's own lines
    assert all(line.startswith("mcunas: ") for line in proc.stderr.splitlines()), proc.stderr
    assert "Warning" not in proc.stderr and "deprecated" not in proc.stderr.lower()
    assert f"trial {exhausted} failed" in proc.stderr and "not queued again" in proc.stderr
    recovered_line = [ln for ln in proc.stdout.splitlines() + proc.stderr.splitlines() if "dead worker" in ln]
    assert recovered_line and all(str(n) in recovered_line[0] for n in [*dead.values(), exhausted])

    trials = {t.number: t for t in _open(storage).get_trials(deepcopy=False)}
    for why, number in dead.items():
        assert trials[number].state == TrialState.FAIL, why
        retries = [t for t in trials.values() if t.user_attrs.get("retried_from") == number]
        assert len(retries) == 1, why
        retry = retries[0]
        assert retry.state == TrialState.COMPLETE and retry.params == trials[number].params, why
        assert retry.user_attrs["retry"] == 1, why
        reason = retry.user_attrs["retry_reason"]
        assert {"pid reused": "now belongs to another process", "pid gone": "is gone",
                "lease lapsed": "last renewed its lease", "no owner": "no worker recorded"}[why] in reason, reason
    assert trials[exhausted].state == TrialState.FAIL
    assert not [t for t in trials.values() if t.user_attrs.get("retried_from") == exhausted]
    for why, number in live.items():
        assert trials[number].state == TrialState.RUNNING, why
        assert not [t for t in trials.values() if t.user_attrs.get("retried_from") == number], why
    assert not [t for t in trials.values() if t.state == TrialState.WAITING]

    # a second look (another worker starting) finds nothing more to do: every retry happened once.  Only the
    # live trial that never got an owner may go now, once it is LEASE_S old (a busy machine gets there).
    again = _search(tmp_path, storage, 1)
    assert again.returncode == 0, again.stderr
    lines = [ln for ln in (again.stdout + again.stderr).splitlines() if "dead worker" in ln]
    if lines:
        assert time.monotonic() - held_at > LEASE_S, lines
        numbers = {int(n) for ln in lines for n in re.findall(r"\d+", ln.split("dead worker")[0])}
        assert numbers == {ownerless}, lines


def test_renew_lease_renews_and_recovers_while_training(tmp_path, monkeypatch):
    from mcunas.errors import UserError
    from mcunas.search import recovery

    storage = f"journal:{tmp_path}/r.journal"
    assert _search(tmp_path, storage, 2).returncode == 0
    study = _open(storage)
    trial = study.ask()
    trial.set_user_attr("worker", {**recovery.owner(), "renewed_at": 0.0})
    victim = _hold(study, {**recovery.owner(), "pid": _dead_pid()})
    assert recovery.renew_lease(trial) == []  # the first call only starts the clock
    monkeypatch.setattr(recovery, "RENEW_S", 0)
    assert recovery.renew_lease(trial) == [victim]
    fresh = study.trials[trial.number].user_attrs["worker"]["renewed_at"]
    assert time.time() - fresh < 5
    assert study.trials[victim].state == TrialState.FAIL
    # a worker whose trial another worker failed (it was stopped too long) is told, in one line
    study.tell(trial.number, state=TrialState.FAIL)
    with pytest.raises(UserError, match=f"trial {trial.number} was failed and queued again by another worker"):
        recovery.renew_lease(trial)


def test_process_start_time_tells_a_reused_pid_apart():
    from mcunas.search.recovery import owner

    me = owner()
    assert me["pid"] == os.getpid() and isinstance(me["start"], int) and me["boot"]
    child = subprocess.Popen(["sleep", "5"])
    try:
        from mcunas.search.recovery import _started

        assert _started(child.pid) is not None and _started(child.pid) >= me["start"]
    finally:
        child.kill()
        child.wait()
    assert _started(child.pid) is None
