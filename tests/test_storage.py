"""Study storages that survive crashes and damage: cut journal tails, damaged records, damaged SQLite files,
disk-full writes, passwords that never show, and ``--heartbeat`` checked before anything is written.

Every case runs the real CLI (or the real Optuna storage) on real files.
"""

import json
import subprocess
import sys

import optuna
import pytest

from conftest import REPO, assert_one_line_error, run_cli

COST_ONLY = ["--objectives", "capacity,sram", "--space", "mobilenet_v2", "--sram", "150KB"]


def _search(tmp_path, storage, study="s", n=6, *extra):
    return run_cli("search", "--storage", storage, "--study", study, *COST_ONLY, "--n-trials", n,
                   "--results-dir", tmp_path / "results", *extra)


def _query(storage, study="s"):
    return run_cli("query", "--study", study, "--storage", storage, "--sram", "150KB", "--json")


def _trials(storage, study="s"):
    from mcunas.search.storage import open_storage

    return optuna.load_study(study_name=study, storage=open_storage(storage)).get_trials(deepcopy=False)


def _summary(trials):
    return [(t.number, t.state.name, t.params, t.user_attrs.get("arch")) for t in trials]


@pytest.fixture
def journal(tmp_path):
    """A real study (6 costed candidates or more) in a journal file; returns (url, path, summary of its trials)."""
    path = tmp_path / "study.journal"
    proc = _search(tmp_path, f"journal:{path}")
    assert proc.returncode == 0, proc.stderr
    return f"journal:{path}", path, _summary(_trials(f"journal:{path}"))


def test_cut_last_record_is_repaired_with_a_backup_and_one_line(tmp_path, journal):
    url, path, before = journal
    whole = path.read_bytes()
    last = whole.splitlines(keepends=True)[-1]
    path.write_bytes(whole + last[: len(last) // 2])  # a power cut half-way through the next record
    query = _query(url)
    assert query.returncode == 0, query.stderr
    said = query.stderr.strip().splitlines()
    assert len(said) == 1 and "repaired journal" in said[0] and str(path) in said[0], query.stderr
    backups = list(tmp_path.glob("study.journal.cut-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == whole + last[: len(last) // 2]
    assert path.read_bytes() == whole  # exactly the fragment went
    assert json.loads(query.stdout)["studies"][0]["study"] == "s"
    # the search goes on from there: every earlier trial kept, six more trained, nothing said again
    again = _search(tmp_path, url)
    assert again.returncode == 0, again.stderr
    assert "repaired" not in again.stderr
    after = _trials(url)
    assert _summary(after)[: len(before)] == before
    assert sum(t.state.name == "COMPLETE" and "rejected" not in t.user_attrs for t in after) == 12
    assert _query(url).stderr == ""


def test_a_whole_last_record_missing_only_its_newline_is_kept(tmp_path, journal):
    url, path, before = journal
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines)[:-1])  # the last record's "\n" never reached the disk
    proc = _query(url)
    assert proc.returncode == 0 and "without its line end" in proc.stderr, proc.stderr
    assert path.read_bytes() == b"".join(lines)
    assert _summary(_trials(url)) == before


def test_damaged_middle_record_is_one_line_naming_file_and_line_and_nothing_is_touched(tmp_path, journal):
    url, path, _ = journal
    lines = path.read_bytes().splitlines(keepends=True)
    lines[6] = b'{"op_code":8,"worker_id":"x","trial_id":0,"user_att\n'
    path.write_bytes(b"".join(lines))
    for proc in (_search(tmp_path, url), _query(url)):
        assert_one_line_error(proc, f"journal {path} is damaged at line 7")
        assert f"head -n 6 {path}" in proc.stderr
        assert proc.returncode == 2
    assert path.read_bytes() == b"".join(lines)
    assert not list(tmp_path.glob("study.journal.cut-*"))


def test_plain_optuna_reads_our_journal(journal):
    """Our file is Optuna's format: its own JournalFileBackend (and so optuna-dashboard) reads the same trials."""
    from optuna.storages.journal import JournalFileBackend

    _, path, before = journal
    plain = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    assert _summary(optuna.load_study(study_name="s", storage=plain).get_trials(deepcopy=False)) == before


_FILL_DISK = """
import os, resource, signal, sys
import optuna
from mcunas.search.storage import open_storage
from mcunas.errors import UserError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
study = optuna.load_study(study_name="s", storage=open_storage(sys.argv[1]))
trial = study.ask()
limit = os.path.getsize(sys.argv[2]) + 40
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
try:
    trial.set_user_attr("arch", "x" * 200)
except UserError as exc:
    print(exc)
"""


def test_a_write_that_fills_the_disk_leaves_no_half_record(tmp_path, journal):
    url, path, before = journal
    proc = subprocess.run([sys.executable, "-c", _FILL_DISK, url, str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "cannot write journal" in proc.stdout and "File too large" in proc.stdout
    assert path.read_bytes().endswith(b"\n")
    query = _query(url)
    assert query.returncode == 0 and query.stderr == "", query.stderr  # nothing left to repair
    assert _summary(_trials(url))[: len(before)] == before


@pytest.mark.parametrize("damage", ["pages", "header"])
def test_damaged_sqlite_file_is_one_line(tmp_path, damage):
    db = tmp_path / "s.db"
    proc = _search(tmp_path, f"sqlite:///{db}", "s", 20)
    assert proc.returncode == 0, proc.stderr
    with open(db, "r+b") as f:
        f.seek(3 * 4096 if damage == "pages" else 0)
        f.write(b"\xde\xad" * 2048)
    before = db.read_bytes()
    for proc in (_search(tmp_path, f"sqlite:///{db}"), _query(f"sqlite:///{db}")):
        assert_one_line_error(proc, f"SQLite study file {db} is damaged")
        assert ".recover" in proc.stderr
    assert db.read_bytes() == before


@pytest.mark.parametrize("value", ["-1", "0", "abc", "2.5"])
def test_bad_heartbeat_is_one_line_and_writes_nothing(tmp_path, value):
    proc = _search(tmp_path, f"journal:{tmp_path}/h.journal", "s", 2, f"--heartbeat={value}")
    assert_one_line_error(proc, f"--heartbeat must be a whole number of seconds, at least 1 (e.g. 10), got '{value}'")
    assert not (tmp_path / "h.journal").exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://u:p@ss@db.example:5432/nas", "postgresql://u:***@db.example:5432/nas"),
        ("postgresql://u:a:b/c@db.example/nas", "postgresql://u:***@db.example/nas"),
        ("postgresql://u:p%40ss@db.example/nas", "postgresql://u:***@db.example/nas"),
        ("postgresql+psycopg://u:x@y@h/nas?sslmode=require", "postgresql+psycopg://u:***@h/nas?sslmode=require"),
        ("postgresql://db.example/nas?user=u&password=s3cr@t", "postgresql://db.example/nas?user=u&password=***"),
        ("postgresql://u@db.example/nas", "postgresql://u@db.example/nas"),
        ("sqlite:///runs/a@b.db", "sqlite:///runs/a@b.db"),
    ],
)
def test_redact_hides_every_password(url, shown):
    from mcunas.search.storage import redact

    assert redact(url) == shown


def test_password_with_at_colon_slash_connects_and_never_shows(tmp_path, postgres_url):
    """A real role whose password holds @, : and /: written raw in the URL it connects; wrong, it is one line."""
    import psycopg

    password = "p@ss:w/rd"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS atdb")
        conn.execute("DROP ROLE IF EXISTS at_user")
        conn.execute(f"CREATE ROLE at_user LOGIN PASSWORD '{password}'")
        conn.execute("CREATE DATABASE atdb OWNER at_user")
    host = postgres_url.rsplit("@", 1)[1].rsplit("/", 1)[0]
    good = f"postgresql://at_user:{password}@{host}/atdb"
    proc = _search(tmp_path, good, "at", 2)
    assert proc.returncode == 0, proc.stderr
    assert "p@ss" not in proc.stderr + proc.stdout
    bad = f"postgresql://at_user:wr@ng:pw/x@{host}/atdb"
    proc = _search(tmp_path, bad, "at", 2)
    assert_one_line_error(proc, "password authentication failed")
    assert "wr@ng" not in proc.stderr and "ng:pw" not in proc.stderr and "pw/x" not in proc.stderr
    assert f"at_user:***@{host}/atdb" in proc.stderr
