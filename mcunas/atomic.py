"""Files and folders that readers see whole or not at all: write to a temporary name, then rename.

Campaigns are killed (SIGKILL, reboots) and resumed; a half-written
``.tflite``, CSV or PNG must never be picked up.  ``os.replace`` within one
folder is atomic on POSIX, so every product goes through :func:`atomic_path`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # <fcntl.h>, <linux/fs.h>


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path`` (same suffix); rename it over ``path`` on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it owner-only; give it a plain open()'s mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` (bytes, or text as UTF-8) so readers see either nothing or all of it."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


@contextmanager
def atomic_folder(path: Path):
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` whole.

    A reader of ``path`` sees the previous folder or the new one, never a mix:
    the temporary folder is swapped with the old one in one step
    (``renameat2(RENAME_EXCHANGE)``; see :func:`_swap`), and the old one is
    deleted only after that.  Writers of the same folder take turns: each
    holds an exclusive ``flock`` on ``.<name>.lock`` beside it for the whole
    write, so concurrent exports never interleave (the last one wins, whole),
    and a writer may delete temporary folders a killed one left behind, since
    nobody else can be writing them.  The lock file stays (it is empty).
    """
    import fcntl

    path = Path(path).absolute()
    if path.is_symlink():
        path = path.resolve()  # a link to a folder: replace the folder it names, keep the link
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _clean_leftovers(path)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
        try:
            yield tmp
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it owner-only
            _swap(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _swap(new: Path, path: Path) -> None:
    """Put folder ``new`` at ``path``; afterwards ``new`` holds the old folder (or nothing)."""
    try:
        os.rename(new, path)  # no folder there yet, or an empty one
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, "renameat2", None) is not None:
        if libc.renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(path), _RENAME_EXCHANGE) == 0:
            return
        if ctypes.get_errno() not in (errno.EINVAL, errno.ENOSYS):  # EINVAL: the file system cannot exchange
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(path))
    # Two renames (NFS and others): for a moment ``path`` is absent; the old folder waits in
    # ``.<name>.old-*`` and _clean_leftovers puts it back if we die in between.
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
    os.replace(path, old)
    os.rename(new, path)
    os.rename(old, new)


def _clean_leftovers(path: Path) -> None:
    """Delete a killed writer's temporary folders; restore an old folder it had moved aside."""
    for old in path.parent.glob(f".{path.name}.old-*"):
        if not path.exists():
            os.rename(old, path)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
