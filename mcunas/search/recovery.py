"""Crash safety: a trial whose worker died is failed and its candidate queued again, through Optuna's public API.

**A lease says who runs a trial.**  A campaign writes the trial user
attribute ``worker`` (:func:`owner`) as the first thing it does with a
trial: host name, boot id, pid, the process's start time (from
``/proc/<pid>/stat``, so a reused pid is told apart), when the lease was
last renewed and for how long it holds (:data:`LEASE_S`).  While a candidate
trains, the campaign calls :func:`renew_lease` from its polling loop; that
call rewrites the lease at most every :data:`RENEW_S` and, at the same pace,
fails other workers' dead trials.

**A RUNNING trial is dead** (:func:`recover_dead_trials`, run when a
campaign opens its study and from :func:`renew_lease`) when

* its owner ran on this machine (same host name and boot id) and that pid
  is gone, is a zombie, or now belongs to a process started at another time;
* its owner ran elsewhere — another machine, or this one before a reboot —
  and the lease was not renewed for its ``lease_s``: from here only the
  lease can tell (clocks must agree to well within ``LEASE_S - RENEW_S``,
  which NTP gives);
* it has no owner at all and started more than :data:`LEASE_S` ago (its
  worker was killed between ``study.ask`` and writing the lease, or another
  tool made it).

On this machine a live owner with the right start time keeps its trial
however long ago it renewed: a laptop waking from sleep finds every lease
lapsed, and its workers are still alive.

**RDB storages with ``--heartbeat S``** also use Optuna's public heartbeat
(``RDBStorage(heartbeat_interval=S, grace_period=2S,
heartbeat_stale_trial_callback=requeue_stale_trial)``): Optuna fails a trial
whose worker stopped beating before each new trial, and :func:`renew_lease`
asks it to check during long trainings too.

**One retry rule for both.**  The trial is failed with
``study.tell(number, state=FAIL)``; only the worker whose tell succeeds
queues it again, so several workers finding one dead trial retry it once.
The retry is ``study.enqueue_trial(same params, user_attrs={"retry": k,
"retried_from": number, "retry_reason": why})`` — the reason the failed
trial died is on its retry, and in the line the campaign prints — at most
:data:`MAX_RETRY` times per candidate.  Optuna's ``RetryFailedTrialCallback``
is not used: it is deprecated in Optuna 5, warns on every use and goes in 6.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
import time
import warnings
import weakref
from pathlib import Path

from mcunas.errors import UserError

MAX_RETRY = 3
OWNER_ATTR = "worker"
LEASE_S = 60  # a lease not renewed for this long is lapsed; also the grace for trials with no owner
RENEW_S = 15  # renew_lease writes (and checks others) at most this often


@functools.cache
def _boot_id() -> str | None:
    """This boot of this machine (Linux), so a reboot or a same-named machine is not taken for this one."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return None


def _started(pid: int) -> int | None:
    """Start time of live process ``pid`` in clock ticks since boot; None when there is none or it is a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])  # field 3 is the state, field 22 starttime


def _has_proc() -> bool:
    return Path("/proc/self/stat").is_file()


def owner() -> dict:
    """This process's lease on a trial, renewed now (the value of the ``worker`` user attribute)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid, "start": _started(pid),
            "renewed_at": round(time.time(), 1), "lease_s": LEASE_S}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _on_this_machine(lease: dict) -> bool:
    return lease.get("host") == socket.gethostname() and lease.get("boot") in (None, _boot_id())


def _gone(lease: dict) -> str | None:
    """Why the owner on this machine is no longer running, or None while it is."""
    pid = int(lease["pid"])
    if not _has_proc():
        return None if _alive(pid) else "is gone"
    started = _started(pid)
    if started is None:
        return "is gone"
    if lease.get("start") is not None and started != lease["start"]:
        return f"is gone (pid {pid} now belongs to another process)"
    return None


def dead_reason(trial, now: float) -> str | None:
    """Why RUNNING ``trial`` (a FrozenTrial) has no live worker, or None while it may have one."""
    lease = trial.user_attrs.get(OWNER_ATTR)
    started_at = trial.datetime_start.timestamp() if trial.datetime_start else now
    if not lease:
        age = now - started_at
        return f"no worker recorded on it, started {age:.0f} s ago" if age > LEASE_S else None
    who = f"worker {lease.get('host')}:{lease.get('pid')}"
    if _on_this_machine(lease):
        gone = _gone(lease)
        return f"{who} {gone}" if gone else None
    silent_s = now - float(lease.get("renewed_at", started_at))
    if silent_s > float(lease.get("lease_s", LEASE_S)):
        return f"{who} last renewed its lease {silent_s:.0f} s ago"
    return None


def requeue(study, trial, reason: str) -> int | None:
    """Queue FAILED ``trial``'s parameters again (unless retried MAX_RETRY times); returns its retry count."""
    retry = int(trial.user_attrs.get("retry", 0)) + 1
    if retry > MAX_RETRY:
        print(f"mcunas: trial {trial.number} failed ({reason}); not queued again: its candidate was already "
              f"retried {MAX_RETRY} times", file=sys.stderr, flush=True)
        return None
    study.enqueue_trial(trial.params, user_attrs={"retry": retry, "retried_from": trial.number,
                                                  "retry_reason": reason})
    return retry


def requeue_stale_trial(study, trial) -> None:
    """Optuna's ``heartbeat_stale_trial_callback`` on RDB storages: Optuna failed ``trial``; queue it again."""
    lease = trial.user_attrs.get(OWNER_ATTR) or {}
    who = f"worker {lease['host']}:{lease['pid']}" if lease else "its worker"
    requeue(study, trial, f"{who} stopped sending heartbeats")


def _fail(study, number: int) -> bool:
    """Fail RUNNING trial ``number``; False when it finished meanwhile (another worker got there first)."""
    import optuna
    from optuna.trial import TrialState

    try:
        study.tell(number, state=TrialState.FAIL)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
        return False  # "Cannot tell a FAIL trial" / finished between our look and our write
    return True


def recover_dead_trials(study) -> list[int]:
    """Fail every RUNNING trial of ``study`` whose worker is dead and queue its candidate again; their numbers."""
    from optuna.trial import TrialState

    now, recovered = time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = dead_reason(t, now)
        if reason and _fail(study, t.number):
            requeue(study, t, reason)
            recovered.append(t.number)
    return recovered


def other_workers(study) -> list[str]:
    """``host:pid`` of other processes that hold RUNNING trials and may be alive."""
    from optuna.trial import TrialState

    now, found = time.time(), set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        lease = t.user_attrs.get(OWNER_ATTR)
        mine = lease and _on_this_machine(lease) and int(lease["pid"]) == os.getpid()
        if lease and not mine and not dead_reason(t, now):
            found.add(f"{lease['host']}:{lease['pid']}")
    return sorted(found)


_last_renewal: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def renew_lease(trial) -> list[int]:
    """Call often while ``trial`` trains (e.g. every poll); acts at most every RENEW_S.

    Renews this worker's lease on ``trial`` and fails other workers' dead
    trials — by lease and pid, and by Optuna's heartbeat on RDB storages
    with ``--heartbeat`` — so their candidates are queued again while this
    one trains.  Returns the numbers of the trials it failed (for a progress
    note).  Raises :class:`UserError` when another worker already failed
    ``trial`` because this process stopped renewing (suspended for over
    LEASE_S on another machine's watch).
    """
    import optuna

    now = time.monotonic()
    last = _last_renewal.setdefault(trial, now)  # the first call follows the lease's own first write
    if now - last < RENEW_S:
        return []
    _last_renewal[trial] = now
    try:
        trial.set_user_attr(OWNER_ATTR, owner())
    except optuna.exceptions.UpdateFinishedTrialError:
        raise UserError(f"trial {trial.number} was failed and queued again by another worker while this one was "
                        f"stopped for over {LEASE_S} s; rerun the same command to go on") from None
    with warnings.catch_warnings():  # fail_stale_trials is "experimental" since Optuna 2.9, still in 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(trial.study)
    return recover_dead_trials(trial.study)
