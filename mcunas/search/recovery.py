"""Crash safety: trials whose worker died are failed and retried, with Optuna's own parts.

* **RDB storages (SQLite, PostgreSQL)** with ``--heartbeat S``: Optuna's
  heartbeat marks a trial whose process stopped beating for 2×S as FAIL
  (``fail_stale_trials``, run by ``study.optimize`` before every trial) and
  calls :class:`optuna.storages.RetryFailedTrialCallback`, which enqueues the
  same parameters again, so another worker trains that candidate.
* **Journal files** have no heartbeat.  Every trial records the host and pid
  of the process that runs it; on start, a RUNNING trial owned by a process
  of *this host* that no longer exists is failed and handed to the same
  ``RetryFailedTrialCallback``.  (A journal file is for processes on one
  machine, so every owner is checkable.)
"""

from __future__ import annotations

import os
import socket
import warnings

MAX_RETRY = 3
OWNER_ATTR = "worker"


def owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def retry_callback():
    from optuna.storages import RetryFailedTrialCallback

    return RetryFailedTrialCallback(max_retry=MAX_RETRY)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def other_workers(study) -> list[str]:
    """``host:pid`` of other processes that hold RUNNING trials and may be alive."""
    from optuna.trial import TrialState

    here, me = socket.gethostname(), os.getpid()
    found = set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = t.user_attrs.get(OWNER_ATTR)
        if who and not (who.get("host") == here and (int(who["pid"]) == me or not _alive(int(who["pid"])))):
            found.add(f"{who['host']}:{who['pid']}")
    return sorted(found)


def recover_dead_trials(study) -> list[int]:
    """Fail (and re-enqueue) RUNNING trials whose owning process on this host is gone."""
    import optuna
    from optuna.trial import TrialState

    here = socket.gethostname()
    recovered = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = t.user_attrs.get(OWNER_ATTR)
        if not who or who.get("host") != here or _alive(int(who["pid"])):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # the reason first: a finished trial takes no more attributes
                study._storage.set_trial_user_attr(t._trial_id, "fail_reason",
                                                   f"worker {who['host']}:{who['pid']} died (found on restart)")
                study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another process recovered it first
        retry_callback()(study, study._storage.get_trial(t._trial_id))
        recovered.append(t.number)
    return recovered
