"""Benchmark: where a trained candidate's wall time outside ``model.fit`` goes, phase by phase.

Runs the steps of :func:`mcunas.train.train_candidate` one at a time in one
process (TensorFlow imported once, as in the warm worker) and times each:
data split, model build + compile (``fit`` minus ``train_s``), the batch-1
twin, saving ``model.keras``, the int8 conversion, int8 evaluation on
validation and test, and the TFLM measurement.  The first candidate warms
TensorFlow up and is not counted; the rest give medians.  ``mcunas bench
worker`` measures the total overhead through the real worker; this script
says which part of it to attack.

Usage (from the repo root)::

    python tests/bench/overhead_phases.py --data ../shared/data/vww01_dev --epochs 1 --candidates 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def one_candidate(arch_string: str, data: str, epochs: int, seed: int, out: Path) -> dict:
    from mcunas import train
    from mcunas.arch import parse_arch
    from mcunas.data import evaluate_tflite, train_val_test
    from mcunas.export.tflite import convert_int8
    from mcunas.tflm import measure_arena
    from mcunas.train.worker import TrainJob

    arch = parse_arch(arch_string)
    job = TrainJob(arch=arch_string, data=data, eval_data=None, epochs=epochs, batch=32, recipe="fast",
                   seed=seed, out_dir=str(out))
    seconds = {}

    def timed(name, fn):
        start = time.perf_counter()
        value = fn()
        seconds[name] = time.perf_counter() - start
        return value

    sets = timed("data_s", lambda: train_val_test(data, None, arch.resolution, arch.in_channels, 0))
    (x_train, y_train), val, test = sets["train"], sets["val"], sets["test"]
    fitted = timed("fit_s", lambda: train._fit(job, arch, x_train, y_train, *val, None))
    seconds["build_compile_s"] = seconds.pop("fit_s") - fitted.train_s
    calibration = train._calibration_images(x_train, seed)
    deploy = timed("batch1_twin_s", lambda: train._deployable(fitted.model, arch))
    timed("save_keras_s", lambda: deploy.save(out / "model.keras"))
    tflite = timed("convert_int8_s", lambda: convert_int8(deploy, calibration))
    (out / "model_int8.tflite").write_bytes(tflite)
    timed("int8_eval_s", lambda: (evaluate_tflite(tflite, *val), evaluate_tflite(tflite, *test)))
    timed("tflm_measure_s", lambda: measure_arena(out / "model_int8.tflite"))
    seconds["overhead_s"] = sum(seconds.values())
    seconds["train_s"] = fitted.train_s
    return seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="dataset folder (e.g. ../shared/data/vww01_dev)")
    p.add_argument("--preset", default="mlperf-vww")
    p.add_argument("--epochs", type=int, default=1, help="training epochs (the phases timed do not depend on it)")
    p.add_argument("--candidates", type=int, default=3, help="counted candidates, after one warm-up (default 3)")
    a = p.parse_args()
    from mcunas.presets import preset_arch

    arch = str(preset_arch(a.preset))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(a.candidates + 1):
            out = Path(tmp) / str(seed)
            out.mkdir()
            rows.append(one_candidate(arch, a.data, a.epochs, seed, out))
    counted = rows[1:]
    medians = {k: round(statistics.median(r[k] for r in counted), 2) for k in counted[0]}
    print(json.dumps({"preset": a.preset, "data": a.data, "epochs": a.epochs, "candidates": len(counted),
                      "median": medians, "warm_up": {k: round(v, 2) for k, v in rows[0].items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
