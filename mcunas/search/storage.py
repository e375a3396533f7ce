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
    """Optuna's ``JournalStorage`` on our journal file backend (fsync at trial end, cut-tail repair).

    See :mod:`mcunas.search.journal` for why the backend is our own.
    """
    import optuna

    from mcunas.search.journal import SyncedJournalFile, repair_cut_tail

    backend = SyncedJournalFile(path)
    repair_cut_tail(path)
    return optuna.storages.JournalStorage(backend)


STUDY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
STUDY_NAME_RULE = "1-100 letters, digits, '_', '.' or '-', not starting with '.' or '-'"


def check_study_name(name) -> str:
    """``name`` if it is safe as a study name, else one line saying the rule.

    The name becomes the folder ``results/<study>/`` (and the default journal
    in it), so anything that could leave ``results/`` or hide there — a path
    separator, ``..``, an absolute path, a leading dot or dash, a newline or
    other control character, the empty name — is refused before anything is
    written.  Every command that takes a study name calls this.
    """
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
        raise UserError(f"study name {name!r} is not allowed: use {STUDY_NAME_RULE} "
                        "(it names the folder results/<study>/)")
    return name


def default_storage_url(study: str) -> str:
    return f"journal:{RESULTS_DIR / study / 'study.journal'}"


def _userinfo(url: str) -> tuple[str, str | None, str] | None:
    """``(before the password, password or None, after it)`` of a URL with a user, else None.

    The user part ends at the LAST ``@`` before any ``?``: people write
    ``@``, ``:`` and ``/`` unescaped in database passwords, and a host never
    holds an ``@``.
    """
    scheme, sep, tail = url.partition("://")
    head, q, query = tail.partition("?")
    if not sep or "@" not in head:
        return None
    userinfo, _, hostpart = head.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return f"{scheme}://{user}", (password if colon else None), f"@{hostpart}{q}{query}"


def redact(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) replaced by ``***``."""
    parts = _userinfo(url)
    if parts and parts[1] is not None:
        url = f"{parts[0]}:***{parts[2]}"
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)


def _shown(text: str) -> str:
    """A storage string that is no URL, quoted for an error line; not echoed when it may hold a password."""
    return "(not shown: it holds an '@', so perhaps a password)" if "@" in text else f"'{text}'"


def _quote_at_in_password(url: str) -> str:
    """``url`` with any ``@`` in its password written ``%40``, the only way SQLAlchemy reads it as part of it."""
    parts = _userinfo(url)
    if not parts or not parts[1] or "@" not in parts[1]:
        return url
    return f"{parts[0]}:{parts[1].replace('@', '%40')}{parts[2]}"


def _scrub(text: str, url: str) -> str:
    """``text`` (a driver's message) with the password of ``url`` in any spelling replaced by ``***``."""
    from urllib.parse import unquote

    parts = _userinfo(url)
    password = parts[1] if parts else None
    for spelling in sorted({password, password and unquote(password)} - {None, ""}, key=len, reverse=True):
        text = text.replace(spelling, "***")
    return text


def _rdb_storage(url: str, kwargs: dict, attempts: int = 5):
    """RDBStorage, retried when workers started together race to create Optuna's tables.

    On a fresh database every worker runs ``CREATE TABLE``; all but one can
    fail with a duplicate-key error from the catalogue.  The tables exist by
    then, so a short retry succeeds.
    """
    import random
    import time
    import warnings

    import optuna

    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is "experimental" since Optuna 2.9, still in 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as exc:  # noqa: BLE001 - only the table-creation race is retried
            text = str(exc)
            if attempt == attempts - 1 or ("duplicate key" not in text and "already exists" not in text):
                raise
            time.sleep(0.2 + random.random())


def check_sqlite_file(path: Path) -> None:
    """Refuse (one line) an SQLite file with damaged pages before Optuna trips over them mid-run.

    ``PRAGMA quick_check`` reads every page once (milliseconds for a study's
    few MB); a busy database is left to SQLAlchemy's own locking.
    """
    import contextlib
    import sqlite3

    if not path.is_file() or path.stat().st_size == 0:
        return
    fix = (f"restore it from a backup, or salvage what is readable with `sqlite3 {path} .recover | sqlite3 "
           f"NEW.db` and use --storage sqlite:///NEW.db")
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as db:
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return
        raise UserError(f"SQLite study file {path} is damaged ({exc}): {fix}") from None
    if problems != ["ok"]:
        raise UserError(f"SQLite study file {path} is damaged ({problems[0]}): {fix}")


def open_storage(url: str, heartbeat_s: int | None = None):
    """An Optuna storage for ``url``; unreachable or damaged storages become one clear line.

    ``heartbeat_s`` turns on Optuna's heartbeat on RDB storages (a trial
    whose worker stopped beating for ``2 * heartbeat_s`` is failed and its
    candidate queued again, :func:`mcunas.search.recovery.requeue_stale_trial`);
    journal files rely on the lease in :mod:`mcunas.search.recovery` instead.
    """
    if url.startswith("journal:") or url.endswith(".journal"):
        path = Path(url.removeprefix("journal:"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return _journal_file_storage(path)
        except OSError as exc:
            raise UserError(f"cannot open journal storage {path}: {exc.strerror}") from None
    if "://" not in url:
        raise UserError(
            f"unrecognised storage {_shown(url)}: use sqlite:///FILE.db, postgresql://USER:PASS@HOST/DB, "
            "journal:FILE or a path ending in .journal"
        )
    if url.startswith("sqlite:///"):
        check_sqlite_file(Path(url.removeprefix("sqlite:///")))
    kwargs = {}
    if heartbeat_s:
        from mcunas.search.recovery import requeue_stale_trial

        kwargs = {"heartbeat_interval": heartbeat_s, "grace_period": 2 * heartbeat_s,
                  "heartbeat_stale_trial_callback": requeue_stale_trial}
    if url.startswith("postgresql"):
        kwargs["engine_kwargs"] = {"connect_args": {"connect_timeout": 10}}
    try:
        return _rdb_storage(_quote_at_in_password(url), kwargs)
    except ModuleNotFoundError as exc:
        raise UserError(
            f"storage {redact(url)} needs the '{exc.name}' driver: pip install 'mcunas[postgres]'"
        ) from None
    except Exception as exc:  # SQLAlchemy raises many types for one cause: we cannot reach it
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot reach storage {redact(url)}: {_scrub(reason, url)} "
                        "(check host, port, database name, user and password)") from None
