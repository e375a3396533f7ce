"""A real, throw-away PostgreSQL server for tests and benchmarks.

Debian's postgresql-15 is installed on these machines, but the server
refuses to run as root, so as root every step runs as the ``postgres`` user
(``runuser``).  The cluster lives in a temp directory, listens on a free
loopback port only, uses password (scram) authentication so wrong
credentials really fail, and is stopped and deleted afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PASSWORD = "mcunas-test"


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres_server():
    """Yield ``postgresql://postgres:PASSWORD@127.0.0.1:PORT/mcunas``; stop and delete after."""
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="mcunas-pg-"))
    data, pwfile = root / "data", root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    port = _free_port()
    run = lambda cmd: subprocess.run(_as_postgres(cmd), check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile),
             "-A", "scram-sha-256", "--no-sync"])
        run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60",
             "-o", f"-p {port} -h 127.0.0.1 -k {root} -c fsync=off -c max_connections=200", "start"])
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        subprocess.run(_as_postgres([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U",
                                     "postgres", "mcunas"]), check=True, capture_output=True, env=env)
        yield f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/mcunas"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
