"""Where a study lives: Optuna's own storages behind one ``--storage`` string.

* default: a journal file, ``results/<study>/study.journal`` — embedded, no
  server, safe for several processes on one machine, and about 8× faster than
  SQLite for the many tiny writes rejected candidates make;
* ``sqlite:///path.db``: an embedded database (locks under parallel workers);
* ``postgresql://user:pass@host/db`` (or any SQLAlchemy URL): a real server,
  for several machines on one study;
* ``journal:PATH`` or a path ending in ``.journal``: a journal file elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from mcunas.errors import UserError

RESULTS_DIR = Path("results")


def _journal_file_storage(path: Path):
    """Optuna's journal file storage, fsync'ed when a trained trial ends rather than after every write.

    Optuna's ``JournalFileBackend`` fsyncs each of the ~30 writes a candidate
    makes (one per sampled parameter, attribute and constraint); on these
    disks that capped rejection at ~10 candidates/s.  Here writes still go to
    the file at once, under Optuna's lock — so other processes see them and a
    killed process loses nothing — but the file is forced to disk only when a
    study is created or a trial that was not rejected ends.  That fsync covers
    every earlier write too, so after a power cut every trained trial is still
    there; what can be lost is a running trial (retried like any other) and
    the rejected candidates since the last trained one (recomputed in
    milliseconds).
    """
    import json
    import os

    import optuna
    from optuna.storages.journal import JournalFileBackend
    from optuna.storages.journal._file import get_lock_file
    from optuna.storages.journal._storage import JournalOperation as Op

    class FileBackendSyncedAtTrialEnd(JournalFileBackend):
        def __init__(self, file_path: str):
            super().__init__(file_path)
            self._rejected: set[int] = set()

        def _needs_sync(self, log: dict) -> bool:
            op = log.get("op_code")
            if op == Op.SET_TRIAL_USER_ATTR and "rejected" in log.get("user_attr", {}):
                self._rejected.add(log["trial_id"])
            if op == Op.SET_TRIAL_STATE_VALUES and log.get("datetime_complete"):
                return log["trial_id"] not in self._rejected
            return op in (Op.CREATE_STUDY, Op.DELETE_STUDY)

        def append_logs(self, logs: list[dict]) -> None:
            sync = [self._needs_sync(log) for log in logs]
            with get_lock_file(self._lock):
                with open(self._file_path, "ab") as f:
                    f.write(("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode())
                    f.flush()
                    if any(sync):
                        os.fsync(f.fileno())

    return optuna.storages.JournalStorage(FileBackendSyncedAtTrialEnd(str(path)))


def default_storage_url(study: str) -> str:
    return f"journal:{RESULTS_DIR / study / 'study.journal'}"


def redact(url: str) -> str:
    """The URL with any password replaced, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


def _rdb_storage(url: str, kwargs: dict, attempts: int = 5):
    """RDBStorage, retried when workers started together race to create Optuna's tables.

    On a fresh database every worker runs ``CREATE TABLE``; all but one can
    fail with a duplicate-key error from the catalogue.  The tables exist by
    then, so a short retry succeeds.
    """
    import random
    import time

    import optuna

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as exc:  # noqa: BLE001 - only the table-creation race is retried
            text = str(exc)
            if attempt == attempts - 1 or ("duplicate key" not in text and "already exists" not in text):
                raise
            time.sleep(0.2 + random.random())


def open_storage(url: str, heartbeat_s: int | None = None):
    """An Optuna storage for ``url``; unreachable databases become one clear line."""
    if url.startswith("journal:") or url.endswith(".journal"):
        path = Path(url.removeprefix("journal:"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return _journal_file_storage(path)
        except OSError as exc:
            raise UserError(f"cannot open journal storage {path}: {exc.strerror}") from None
    if "://" not in url:
        raise UserError(
            f"unrecognised storage '{url}': use sqlite:///FILE.db, postgresql://USER:PASS@HOST/DB, "
            "journal:FILE or a path ending in .journal"
        )
    kwargs = {}
    if heartbeat_s:
        from mcunas.search.recovery import retry_callback

        kwargs = {"heartbeat_interval": heartbeat_s, "grace_period": 2 * heartbeat_s,
                  "heartbeat_stale_trial_callback": retry_callback()}
    if url.startswith("postgresql"):
        kwargs["engine_kwargs"] = {"connect_args": {"connect_timeout": 10}}
    try:
        return _rdb_storage(url, kwargs)
    except ModuleNotFoundError as exc:
        raise UserError(
            f"storage {redact(url)} needs the '{exc.name}' driver: pip install 'mcunas[postgres]'"
        ) from None
    except Exception as exc:  # SQLAlchemy raises many types for one cause: we cannot reach it
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot reach storage {redact(url)}: {reason} "
                        "(check host, port, database name, user and password)") from None
