"""Candidates trained one after another in a long-lived worker process: the job, the parent side, the child side.

Training never runs in the search's own process: a crash or abort inside TF
or TFLM must fail one trial, not the campaign.  Starting a fresh
``python -m`` child per candidate paid TensorFlow's import and first-use
costs every time, so one **warm worker** (:class:`TrainingWorker`) imports
TensorFlow once and trains the campaign's candidates in turn.

**Why a child process fed job paths on its stdin** (and not
``multiprocessing``): the child is started exactly like every other mcunas
child (``python -P -m ...`` with this checkout first on ``PYTHONPATH``, so a
``random.py`` in the working folder is never imported); the parent sees a
crash as plain process death, with no pickling or pipe to a half-dead child
in between; and everything else stays in files in the job's folder, where
a killed worker leaves nothing the parent could mistake for a result:

* the parent writes ``job.json`` (a :class:`TrainJob`) and sends its path,
  one line, to the child's stdin;
* the child appends ``started <pid> <unix time>`` and then one ``epoch <n>
  <val_accuracy>`` line per epoch (and ``stage <text>`` lines saying what
  starts next, for the live view) to ``progress.txt``, sends its output to
  the job's ``worker.log`` and finally writes ``result.json`` atomically; any
  exception becomes ``{"error": "<type>: <message>"}``;
* the parent relays each new epoch line and calls ``poll`` every half
  second (every :data:`SCORE_POLL_S` for a supernet score: that takes
  about a second, and half-second polling added 0.25 s to each on average).

**Stopping a candidate.**  When ``on_epoch`` or ``poll`` raises (a pruning
decision), the parent writes ``stop`` into the job's folder; the child
checks for it after every training batch and before the export, ends the
job and is ready for the next one.  That is far cheaper than a kill, which
costs a new worker's TensorFlow start (``mcunas bench worker`` measures
both).  A worker that has not ended the job :data:`STOP_GRACE_S` later, a
``KeyboardInterrupt``, a candidate past its wall-clock limit (``limit_s``,
timed from the moment the worker picks the job up) or a worker that dies
(segfault, ``os.abort``, the OOM killer) is killed with its process group
(TFLM's own child included); the trial fails with the reason and a fresh
worker starts at once, so its import overlaps the parent's bookkeeping.

**Memory.**  TensorFlow keeps memory after ``clear_session``; the worker is
replaced after :data:`RESTART_EVERY` trained candidates or once its
resident size passes :data:`RESTART_RSS_BYTES`.  Supernet scores (eager
forward passes, no Keras model) do not count toward ``RESTART_EVERY``: a
restart costs TensorFlow's import and the supernet's loading, several
scores' worth, and the resident-size check still follows every job.  It
dies with the parent (``PR_SET_PDEATHSIG``), so nothing trains on orphaned.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

POLL_S = 0.5
SCORE_POLL_S = 0.02
RESTART_EVERY = 20  # trained candidates per worker before it is replaced, so TF's leftovers are returned
RESTART_RSS_BYTES = 3 * 2**30  # or sooner, past this resident size (a warm worker measured ~1.5 GiB here)
STOP_GRACE_S = 30.0  # a stop asked between batches ends within one batch; past this the worker is killed


@dataclass(frozen=True)
class TrainJob:
    """Everything a worker needs to train, export and evaluate one architecture."""

    arch: str
    data: str
    eval_data: str | None  # the test set; None: the eval split of ``data`` (mcunas.data.split)
    epochs: int
    batch: int
    recipe: str
    seed: int
    out_dir: str
    qat_epochs: int = 0  # quantisation-aware fine-tuning epochs after training (mcunas.train.qat)
    split_seed: int = 0  # draws the validation set: the campaign's seed, the same for all its candidates
    kind: str = "train"  # or "score": the candidate's validation accuracy with weights from ``supernet``
    supernet: str | None = None  # a supernet file (mcunas.supernet): scored from it, or trained starting from it

    @classmethod
    def read(cls, path: Path) -> "TrainJob":
        return cls(**json.loads(Path(path).read_text()))


class TrainingWorker:
    """The parent's handle on one warm worker, replaced whenever it dies, is killed or has served enough.

    ``restart_every=1`` gives the old behaviour, a fresh process per
    candidate (``mcunas bench worker`` compares the two).
    """

    def __init__(self, restart_every: int = RESTART_EVERY, rss_limit_bytes: int = RESTART_RSS_BYTES):
        self.restart_every, self.rss_limit_bytes = restart_every, rss_limit_bytes
        self.proc: subprocess.Popen | None = None
        self.jobs_done = 0  # by the current process
        self.trainings_done = 0  # of them, trainings (what restart_every counts)
        self._startup_log = None  # the child's output outside any job (TF's import messages, a failed start)

    def start(self) -> None:
        """Start a worker unless one is running; it imports TensorFlow while the parent goes on."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self._startup_log = tempfile.TemporaryFile()
        from mcunas.child import python_child  # isolated import path: nothing from the working folder

        cmd, env = python_child("mcunas.train.worker")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=self._startup_log, stderr=subprocess.STDOUT,
            env=env, preexec_fn=_die_with_parent(os.getpid()), start_new_session=True)
        self.jobs_done = self.trainings_done = 0

    def run(self, job: TrainJob, on_epoch: Callable[[int, float], None],
            poll: Callable[[], None] = lambda: None, limit_s: float | None = None,
            on_stage: Callable[[str], None] = lambda text: None) -> dict:
        """Run ``job``; its result dict, or ``{"error": reason}``.  What ``on_epoch``/``poll`` raise stops it first."""
        job_dir = Path(job.out_dir)
        job_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("progress.txt", "result.json", "stop", "worker.log"):
            (job_dir / stale).unlink(missing_ok=True)
        (job_dir / "job.json").write_text(json.dumps(asdict(job), indent=2))
        self.start()
        try:
            self.proc.stdin.write(f"{job_dir / 'job.json'}\n".encode())
            self.proc.stdin.flush()
        except OSError:  # died before reading its first job: reported below like any death
            pass
        if self.jobs_done == 0:
            on_stage("waiting for the training worker to start (it imports TensorFlow once)")
        watch = _JobWatch(job_dir, on_epoch, on_stage)
        try:
            while not watch.result_file.exists() and self._wait(SCORE_POLL_S if job.kind == "score" else POLL_S):
                watch.relay()
                if limit_s is not None and watch.running_for_s() > limit_s:
                    self._kill()
                    from mcunas.output import format_duration

                    return {"error": f"exceeded the per-candidate limit of {format_duration(limit_s)} "
                                     f"(worker killed; see {job_dir / 'worker.log'})"}
                poll()
            watch.relay()
        except Exception:
            self._stop(watch, job)
            raise
        except BaseException:  # Ctrl-C, SystemExit: no waiting
            self._kill()
            raise
        if not watch.result_file.exists():
            return {"error": self._death_reason(job_dir)}
        self._job_ended(job)
        return json.loads(watch.result_file.read_text())

    def close(self) -> None:
        """Kill the worker: between jobs it holds nothing worth a graceful exit, and a kill is instant."""
        self._kill(restart=False)

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early if the worker dies; whether it is still alive."""
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return True
        return False

    def _stop(self, watch: "_JobWatch", job: TrainJob) -> None:
        """Ask the worker to end the job between batches; kill it if it has not within STOP_GRACE_S."""
        (watch.job_dir / "stop").touch()
        deadline = time.monotonic() + STOP_GRACE_S
        while not watch.result_file.exists() and time.monotonic() < deadline and self._wait(0.05):
            pass
        if watch.result_file.exists():
            self._job_ended(job)
        else:
            self._kill()

    def _job_ended(self, job: TrainJob) -> None:
        """Count the job; replace a worker that has trained enough candidates or grown too big."""
        self.jobs_done += 1
        self.trainings_done += job.kind != "score"
        if self.trainings_done >= self.restart_every or rss_bytes(self.proc.pid) > self.rss_limit_bytes:
            self.close()
            self.start()

    def _kill(self, restart: bool = True) -> None:
        """SIGKILL the worker's process group (a TFLM child with it); start a fresh one unless closing."""
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc = None
        if restart:
            self.start()

    def _death_reason(self, job_dir: Path) -> str:
        """Why the worker ended without a result; its start-up output goes to the job's log if the job wrote none."""
        code = self.proc.wait()
        log = job_dir / "worker.log"
        if not log.exists() or log.stat().st_size == 0:
            self._startup_log.seek(0)
            log.write_bytes(self._startup_log.read())
        how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with status {code}"
        self._kill()
        return f"worker {how} and left no result (see {log})"


class _JobWatch:
    """The parent's view of one job's progress file: when the worker took it up, and the epochs not yet relayed."""

    def __init__(self, job_dir: Path, on_epoch: Callable[[int, float], None],
                 on_stage: Callable[[str], None] = lambda text: None):
        self.job_dir, self.on_epoch, self.on_stage = job_dir, on_epoch, on_stage
        self.result_file = job_dir / "result.json"
        self.sent_at, self.started_at, self.relayed, self.stages_relayed = time.monotonic(), None, 0, 0

    def relay(self) -> None:
        path = self.job_dir / "progress.txt"
        if not path.exists():
            return
        lines = [ln.split() for ln in path.read_text().splitlines()]
        if self.started_at is None and any(ln[:1] == ["started"] for ln in lines):
            self.started_at = time.monotonic()
        epochs = [ln for ln in lines if ln[:1] == ["epoch"] and len(ln) == 3]
        for _, epoch, accuracy in epochs[self.relayed:]:
            self.relayed += 1
            self.on_epoch(int(epoch), float(accuracy))
        stages = [ln[1:] for ln in lines if ln[:1] == ["stage"]]
        for words in stages[self.stages_relayed:]:
            self.stages_relayed += 1
            self.on_stage(" ".join(words))

    def running_for_s(self) -> float:
        """Seconds since the worker took the job up (since it was sent, while a fresh worker still starts)."""
        return time.monotonic() - (self.started_at or self.sent_at)


_shared: TrainingWorker | None = None


def shared_worker() -> TrainingWorker:
    """This process's warm worker (made on first use, closed at exit)."""
    global _shared
    if _shared is None:
        _shared = TrainingWorker()
        atexit.register(_shared.close)
    return _shared


def run_in_worker(job: TrainJob, on_epoch: Callable[[int, float], None],
                  poll: Callable[[], None] = lambda: None, limit_s: float | None = None,
                  on_stage: Callable[[str], None] = lambda text: None) -> dict:
    """Run ``job`` in this process's warm worker; its result dict, or ``{"error": reason}``."""
    return shared_worker().run(job, on_epoch, poll, limit_s, on_stage)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def rss_bytes(pid: int) -> int:
    """Resident size of ``pid`` (Linux /proc; 0 elsewhere, where only RESTART_EVERY applies)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """Linux: the worker gets SIGKILL when the search process dies, so none trains on orphaned."""

    def arm() -> None:
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            return
        if os.getppid() != parent_pid:  # the parent died before the line above took effect
            os._exit(1)

    return arm


# ---- the child ------------------------------------------------------------------------------------------


def main() -> int:
    """The worker: import TensorFlow once, then train every job whose path arrives on stdin, until EOF."""
    from mcunas.quiet import quiet_tensorflow

    quiet_tensorflow()
    between_jobs = os.dup(1)  # where output outside a job goes: the parent's start-up log
    import gc

    import keras

    import mcunas.data.evaluate  # LiteRT, for the int8 accuracy: imported once, before the first job
    import mcunas.data.pipeline
    import mcunas.export.tflite  # noqa: F401  (warm-up import, as the two above)
    from mcunas.train import run_job

    for line in iter(sys.stdin.readline, ""):
        job_file = Path(line.strip())
        _output_to(os.open(job_file.with_name("worker.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        try:
            _run_job(job_file, run_job)
        finally:
            _output_to(os.dup(between_jobs))
        keras.backend.clear_session()
        gc.collect()
    return 0


def _output_to(fd: int) -> None:
    """Point this process's stdout and stderr (C level too: TF logs there) at ``fd``."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _run_job(job_file: Path, run) -> None:
    """Run one job (train or score), reporting epochs to its progress file and ending with its result file."""
    from mcunas.atomic import write_atomic
    from mcunas.train import CandidateStopped

    progress = job_file.with_name("progress.txt")
    stop = job_file.with_name("stop")

    def report(line: str) -> None:
        with progress.open("a") as f:
            f.write(line + "\n")

    report(f"started {os.getpid()} {time.time():.3f}")
    try:
        result = run(TrainJob.read(job_file), lambda epoch, accuracy: report(
            f"epoch {epoch} {accuracy:.6f}"), should_stop=stop.exists, on_stage=lambda text: report(f"stage {text}"))
    except CandidateStopped as exc:
        result = {"error": f"stopped on request ({exc})", "stopped": True}
    except Exception as exc:  # reported to the search as a failed trial, with its reason
        traceback.print_exc()
        last = traceback.extract_tb(exc.__traceback__)[-1]
        result = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                  "where": f"{Path(last.filename).name}:{last.lineno}"}
    write_atomic(job_file.with_name("result.json"), json.dumps(result, indent=2).encode())


if __name__ == "__main__":
    sys.exit(main())
