"""The study journal file: Optuna's own file format, written and read by mcunas through Optuna's public API.

A journal is one JSON record per line, each an Optuna storage operation.
:class:`SyncedJournalFile` implements Optuna's public
``BaseJournalBackend`` (``read_logs``/``append_logs``) on such a file,
under Optuna's public ``JournalFileSymlinkLock`` — the lock that plain
``JournalFileBackend`` takes on the same path (``FILE.lock``) — so Optuna,
optuna-dashboard and mcunas processes can share one file.  It differs from
``JournalFileBackend`` in three ways, each for a reason:

* **fsync only when it matters.**  ``JournalFileBackend`` fsyncs each of the
  ~30 writes a candidate makes (one per sampled parameter, attribute and
  constraint); on these disks that capped rejection at ~10 candidates/s.
  Here writes still go to the file at once, under the lock — so other
  processes see them and a killed process loses nothing — but the file is
  forced to disk only when a study is created or deleted, or a trial that
  was not rejected ends.  That fsync covers every earlier write too, so
  after a power cut every trained trial is still there; what can be lost
  is a running trial (retried like any other) and the rejected candidates
  since the last trained one (recomputed in milliseconds).
* **A cut-off last record is repaired, not built upon.**  A full disk or a
  power cut can leave the file ending in half a record.  Appending to it
  would glue the next record onto the fragment and make the whole journal
  unreadable from then on.  :func:`repair_cut_tail` (run whenever mcunas
  opens a journal, under the lock, so never against a live writer) keeps a
  copy of the file, drops the fragment (or, when the fragment is a whole
  record short of its newline, ends it) and says so in one line.  A failed
  write (disk full) is rolled back to the last whole record at once.
* **A damaged record in the middle is one line**, naming the file, the line
  and the fix, instead of a ``JSONDecodeError`` traceback; the file is left
  as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optuna.storages.journal import BaseJournalBackend, JournalFileSymlinkLock

from mcunas.errors import UserError

# Operation codes of Optuna's journal format (the file format, stable across Optuna 3-5).
_CREATE_STUDY, _DELETE_STUDY, _SET_TRIAL_STATE_VALUES, _SET_TRIAL_USER_ATTR = 0, 1, 6, 8


class _Locked:
    """``with _Locked(lock):`` around Optuna's public journal lock (acquire/release)."""

    def __init__(self, lock: JournalFileSymlinkLock):
        self._lock = lock

    def __enter__(self):
        self._lock.acquire()

    def __exit__(self, *exc) -> None:
        self._lock.release()


def _damaged(path: Path, line: int) -> UserError:
    fix = "restore the file from a backup"
    if line > 1:
        fix += (f", or keep the {line - 1} records before it (`head -n {line - 1} {path} > {path}.fixed`, "
                "dropping what follows) and use that file")
    return UserError(f"journal {path} is damaged at line {line} (not a complete JSON record): {fix}")


class SyncedJournalFile(BaseJournalBackend):
    """Optuna journal backend on ``path``: fsync at trial end, cut-tail repair, damage as one line."""

    def __init__(self, path: Path):
        self._path = Path(path)
        self._lock = JournalFileSymlinkLock(str(self._path))
        self._path.touch(exist_ok=True)
        self._next_number, self._next_offset = 0, 0  # where the next unread record starts
        self._rejected: set[int] = set()  # trial ids with a "rejected" attribute, not yet finished

    # -- reading ---------------------------------------------------------------------------
    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        """Records from number ``log_number_from`` on; a last line still being written is left for later."""
        if log_number_from < self._next_number:  # a fresh reader on this backend: start over
            self._next_number, self._next_offset = 0, 0
        base = self._next_offset
        with open(self._path, "rb") as f:
            f.seek(base)
            data = f.read()
        end = data.rfind(b"\n") + 1  # whole lines only: a writer may be half-way through the last one
        pos = 0
        while pos < end:
            newline = data.index(b"\n", pos)
            try:
                log = json.loads(data[pos:newline])
            except ValueError:
                log = None
            if not isinstance(log, dict) or "op_code" not in log:
                raise _damaged(self._path, self._next_number + 1)
            pos = newline + 1
            number = self._next_number
            self._next_number, self._next_offset = number + 1, base + pos
            if number >= log_number_from:
                yield log

    # -- writing ---------------------------------------------------------------------------
    def _needs_sync(self, log: dict) -> bool:
        op = log.get("op_code")
        if op == _SET_TRIAL_USER_ATTR and "rejected" in log.get("user_attr", {}):
            self._rejected.add(log["trial_id"])
        if op == _SET_TRIAL_STATE_VALUES and log.get("datetime_complete"):
            rejected = log["trial_id"] in self._rejected
            self._rejected.discard(log["trial_id"])
            return not rejected
        return op in (_CREATE_STUDY, _DELETE_STUDY)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        sync = any([self._needs_sync(log) for log in logs])
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        with _Locked(self._lock):
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
            try:
                start = os.fstat(fd).st_size
                written = 0
                while written < len(text):
                    written += os.write(fd, text[written:])
                if sync:
                    os.fsync(fd)
            except OSError as exc:  # disk full: leave no half record behind
                os.ftruncate(fd, start)
                raise UserError(f"cannot write journal {self._path}: {exc.strerror}: free space and rerun "
                                "the same command to resume (every recorded trial is kept)") from None
            finally:
                os.close(fd)


def repair_cut_tail(path: Path) -> Path | None:
    """End ``path`` at its last whole record if a crash cut its last one; returns the backup copy made.

    Runs under the journal lock, so a record a live writer is still writing
    is never mistaken for a cut one.  A fragment that is a complete record
    short only of its newline is kept (newline added); anything else after
    the last newline is dropped.  Nothing is touched when the file ends
    cleanly.
    """
    path = Path(path)
    with _Locked(JournalFileSymlinkLock(str(path))), open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return None
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return None
        keep = _last_newline_end(f, size)
        f.seek(keep)
        fragment = f.read()
        backup = path.with_name(f"{path.name}.cut-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copyfile(path, backup)
        try:
            record = json.loads(fragment)
        except ValueError:
            record = None
        whole = isinstance(record, dict) and "op_code" in record
        if whole:
            f.seek(size)
            f.write(b"\n")
            what = "a last record without its line end: ended it"
        else:
            f.truncate(keep)
            what = f"a last record cut off by a crash or a full disk: removed its {len(fragment)} bytes"
        f.flush()
        os.fsync(f.fileno())
    print(f"mcunas: repaired journal {path}: {what} (every complete record is kept; the file as it was is "
          f"in {backup})", file=sys.stderr, flush=True)
    return backup


def _last_newline_end(f, size: int, chunk: int = 1 << 16) -> int:
    """Offset just after the last b"\\n" in open file ``f`` of ``size`` bytes (0 when there is none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        f.seek(start)
        found = f.read(end - start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0
