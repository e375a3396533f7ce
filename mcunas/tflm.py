"""Ground truth from TensorFlow Lite Micro: the smallest arena a model loads in.

TFLM runs **only in a child process** (``python -m mcunas.tflm MODEL``): its
int8 kernels CHECK-fail with SIGABRT on some models (see
:mod:`mcunas.export.tflite`), which would kill a search or an export
outright.  :func:`measure_arena` starts the child, reads one JSON line from
its stdout and turns a crash into a :class:`UserError` naming the model.

The child binary-searches the arena size: ``Interpreter.from_bytes`` raises
``RuntimeError`` when the arena is too small, and success is monotonic in the
size.  At the smallest size that loads it calls ``print_allocations()``,
which writes the head/tail split and the tail's categories to the C-level
stderr (so fd 2 is redirected with ``os.dup2``; ``contextlib.redirect_stderr``
sees nothing), and invokes the model once on a zero input to show the arena
really runs it.  The figures are those of the tflite-micro pip package
(x86-64 build with its recording allocator): pointers there are 8 bytes, so
the persistent tail on a 32-bit Cortex-M is somewhat smaller.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from mcunas.errors import UserError

MAX_ARENA_BYTES = 1 << 28
_CATEGORY = re.compile(r"'(?P<name>[^']+)' used (?P<used>\d+) bytes with alignment overhead "
                       r"\(requested (?P<requested>\d+) bytes for (?P<count>\d+)")
_SPLIT = re.compile(r"Arena allocation (?P<part>total|head|tail) (?P<bytes>\d+) bytes")


def measure_arena(tflite_path: str | Path, timeout_s: float = 300) -> dict:
    """Measure ``tflite_path`` in TFLM in child processes.

    Returns ``tflm_arena_bytes``, ``tflm_head_bytes``, ``tflm_tail_bytes``,
    ``tail_categories`` (name -> used bytes and count, from
    ``print_allocations``), ``tflite_bytes`` and ``ops``.  Raises
    :class:`UserError` naming the model when TFLM aborts or cannot load it.

    TFLM itself segfaults on some arena sizes that are too small (an error
    path frees temp buffers twice: "All temp buffers must be freed before
    calling ResetTempAllocations()"), so a probe that kills the child after
    the model has loaded once counts as "too small" and the search resumes
    in a fresh child.  A crash before the model ever loaded (in a 256 MiB
    arena) is the model's fault and is reported.
    """
    path = Path(tflite_path)
    if not path.is_file():
        raise UserError(f"no such model file: {path}")
    from mcunas.cost.flatbuffer import read_tflite

    try:  # in this process, so a file that is no model is one plain line, not a child's traceback
        read_tflite(path.read_bytes())
    except UserError as exc:
        raise UserError(f"{path} is not a .tflite model: {exc}") from None
    lo, hi = 1, None  # smallest size that may load; smallest size known to load
    for _ in range(64):
        lines, proc = _run_child(path, lo, hi, timeout_s)
        for line in lines:
            if "ok" in line:
                if line["ok"]:
                    hi = line["probe"]
                else:
                    lo = line["probe"] + 1
            elif "result" in line:
                return line["result"]
        probing = [line["probe"] for line in lines if "ok" not in line and "probe" in line]
        if hi is None or not probing or proc.returncode >= 0:
            raise UserError(_failure(path, proc))
        lo = probing[-1] + 1  # crashed on a too-small arena: resume above it
    raise UserError(f"TFLM kept crashing while measuring {path}")


def _run_child(path: Path, lo: int, hi: int | None, timeout_s: float):
    from mcunas.child import python_child

    cmd, env = python_child("mcunas.tflm", path, lo, hi or 0)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise UserError(f"TFLM did not finish measuring {path} within {timeout_s:g} s") from None
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    return lines, proc


SOFTMAX_MIN_INPUT_SCALE = 2.0 ** -26
SOFTMAX_MAX_INT8_CLASSES = 511


def softmax_abort_reason(data: bytes) -> str | None:
    """Why TFLM's int8 SOFTMAX would abort on this model, or None.  Pure Python.

    Two aborts (SIGABRT, the whole process):

    * Prepare computes ``beta * input_scale * 2**26`` as a fixed-point multiplier and
      CHECK-fails unless that exceeds 1, i.e. unless the softmax input's scale is above
      2**-26 ≈ 1.49e-8 (an untrained classifier whose outputs span almost nothing).
    * Invoke (reference int8 kernel) sums ``exp(x - max)`` over a row in fixed point with 12
      integer bits; once that sum reaches 512 the reciprocal's shift exceeds 31 and
      gemmlowp's ``RoundingDivideByPOT`` asserts.  Each term is at most 1, so only a row of
      512 or more classes can get there — and it does whenever the scores are near-flat (an
      untrained model, or an input the model is unsure about).  Measured with the pip
      package: 512 near-equal scores run, 513 abort.  This is the ``gap-fc_c1000`` abort.
    """
    from mcunas.cost.flatbuffer import read_tflite

    model = read_tflite(data)
    for op in model.operators:
        if op.op != "SOFTMAX":
            continue
        tensor = model.tensors[op.inputs[0]]
        scale = tensor.scale
        beta = op.options.get("beta") or 1.0
        if scale and beta * scale[0] <= SOFTMAX_MIN_INPUT_SCALE:
            return (f"its softmax input scale {scale[0]:.3g} is at most 2^-26 = {SOFTMAX_MIN_INPUT_SCALE:.3g}, "
                    "which TFLM's int8 SOFTMAX aborts on (the classifier's outputs span almost nothing, "
                    "as in an untrained model)")
        classes = tensor.shape[-1] if tensor.shape else 0
        if tensor.dtype == "int8" and classes > SOFTMAX_MAX_INT8_CLASSES:
            return (f"its int8 softmax has {classes} classes; TFLM's int8 SOFTMAX aborts at run time "
                    f"(SIGABRT) whenever the exp-sum of a row reaches 512, which near-flat scores over "
                    f"{SOFTMAX_MAX_INT8_CLASSES + 1}+ classes do; use at most {SOFTMAX_MAX_INT8_CLASSES} classes")
    return None


def _failure(path: Path, proc) -> str:
    if proc.returncode < 0:
        import signal

        why = f"TFLM crashed with {signal.Signals(-proc.returncode).name}"
    else:
        why = f"TFLM could not load the model (exit {proc.returncode})"
    lines = [line.strip() for line in proc.stderr.strip().splitlines() if line.strip()]
    # a Python traceback: its last line says what went wrong; the frames above it are for developers
    tail = lines[-1] if any(line.startswith("Traceback") for line in lines) else " | ".join(lines[-3:])
    reason = softmax_abort_reason(path.read_bytes()) if proc.returncode < 0 else None
    return f"{why} on {path}" + (f": {reason}" if reason else f": {tail}" if tail else "")


def _loads(runtime, data: bytes, arena_bytes: int) -> bool:
    """One probe, announced on stdout first so the parent knows it if we crash."""
    print(json.dumps({"probe": arena_bytes}), flush=True)
    try:
        runtime.Interpreter.from_bytes(data, arena_size=arena_bytes)
        ok = True
    except RuntimeError:
        ok = False
    print(json.dumps({"probe": arena_bytes, "ok": ok}), flush=True)
    return ok


def _smallest_arena(runtime, data: bytes, lo: int, hi: int) -> int:
    """Binary search in [lo, hi]; ``hi`` is known to load."""
    while lo < hi:
        mid = (lo + hi) // 2
        if _loads(runtime, data, mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _with_stderr_captured(fn) -> str:
    """Run ``fn`` with the C-level stderr (fd 2) captured; return what it wrote."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode("utf-8", "replace")


def _child(path: str, lo: int, hi: int) -> dict:
    """The measurement itself; runs in a child process only."""
    import numpy as np
    from tflite_micro import runtime

    from mcunas.cost.flatbuffer import read_tflite

    data = Path(path).read_bytes()
    ops = [op.op for op in read_tflite(data).operators]
    if not hi:  # first child: one big probe, TFLM's own messages left on stderr
        if not _loads(runtime, data, MAX_ARENA_BYTES):
            sys.exit(1)
        hi = MAX_ARENA_BYTES
    box = {}
    # Failed allocations print to fd 2 on every probe; keep them out of the way.
    _with_stderr_captured(lambda: box.update(arena=_smallest_arena(runtime, data, lo, hi)))
    interpreter = runtime.Interpreter.from_bytes(data, arena_size=box["arena"])
    report = _with_stderr_captured(interpreter.print_allocations)
    split = {m["part"]: int(m["bytes"]) for m in _SPLIT.finditer(report)}
    categories = {m["name"]: {"bytes": int(m["used"]), "count": int(m["count"])}
                  for m in _CATEGORY.finditer(report)}
    detail = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(detail["shape"], dtype=detail["dtype"]), 0)
    interpreter.invoke()
    return {
        "model": path,
        "tflm_arena_bytes": box["arena"],
        "tflm_head_bytes": split.get("head"),
        "tflm_tail_bytes": split.get("tail"),
        "tail_categories": categories,
        "tflite_bytes": len(data),
        "ops": ops,
    }


def tflm_outputs(tflite_path: str | Path, inputs, timeout_s: float = 300):
    """The model's output for each of ``inputs`` (N × input shape, the input's dtype), run in
    TFLM in a child process with a 256 MiB arena; an N × output array.

    Why: an offline memory plan changes where TFLM puts every activation, so an export that
    embeds one is checked by running both files here on the same inputs.
    """
    import numpy as np

    from mcunas.child import python_child

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "inputs.npy", Path(tmp) / "outputs.npy"
        np.save(src, np.asarray(inputs))
        cmd, env = python_child("mcunas.tflm", "--outputs", tflite_path, src, dst)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        if proc.returncode:
            raise UserError(_failure(Path(tflite_path), proc))
        return np.load(dst)


def _child_outputs(path: str, src: str, dst: str) -> None:
    import numpy as np
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(Path(path).read_bytes(), arena_size=MAX_ARENA_BYTES)
    outputs = []
    for x in np.load(src):
        interpreter.set_input(x[None], 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0)[0].copy())
    np.save(dst, np.stack(outputs))


if __name__ == "__main__":
    if sys.argv[1] == "--outputs":
        _child_outputs(*sys.argv[2:5])
        sys.exit(0)
    result = _child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    print(json.dumps({"result": result}), flush=True)
