"""Training one candidate: Keras fit, int8 export, int8 accuracy, TFLM arena.

:func:`train_candidate` is what the search runs for every candidate that fits
its budget.  It runs in a worker process (:mod:`mcunas.train.worker`), never
in the search's own process: TensorFlow's memory is returned to the system
after every candidate, a crash or abort inside TF or TFLM fails one trial
instead of the campaign, and a killed worker leaves no half-written files
(artefacts are written to a temporary name and renamed).

The accuracy a trial records is the **int8** accuracy of the exported
``.tflite`` on the eval split — what the device will see; the float accuracy
of the Keras model is recorded beside it.
"""

from __future__ import annotations

import time
from pathlib import Path

from mcunas.atomic import atomic_path, write_atomic
from mcunas.train.recipes import BN_MOMENTUM, compile_for_recipe


def train_candidate(job: dict, on_epoch=None) -> dict:
    """Train, export and evaluate one architecture; returns the figures to record.

    ``job`` keys: ``arch``, ``data``, ``eval_data`` (or None: the eval split of
    ``data``), ``epochs``, ``batch``, ``recipe``, ``seed``, ``out_dir``, and
    optionally ``qat_epochs``: that many epochs of quantisation-aware
    fine-tuning (:mod:`mcunas.train.qat`) after training; the int8 accuracy
    before it is then recorded as ``int8_accuracy_before_qat``, and the
    exported files are the fine-tuned model's.
    ``on_epoch(epoch, float_val_accuracy)`` is called after every (training) epoch.
    """
    import keras
    import numpy as np

    from mcunas.arch import parse_arch
    from mcunas.data import load_split, make_eval_dataset, make_train_dataset
    from mcunas.data import evaluate_tflite
    from mcunas.export.tflite import convert_int8
    from mcunas.keras_model import build_keras_model
    from mcunas.tflm import measure_arena

    arch = parse_arch(job["arch"])
    out_dir = Path(job["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    size, channels = arch.resolution, arch.in_channels
    # With separate eval data, all of --data trains; otherwise its own train/eval split is used.
    separate_eval = bool(job.get("eval_data"))
    x_train, y_train = load_split(job["data"], "all" if separate_eval else "train", size, channels)
    x_eval, y_eval = load_split(job["eval_data"] or job["data"], "all" if separate_eval else "eval", size, channels)

    keras.utils.set_random_seed(int(job["seed"]))
    model = build_keras_model(arch, bn_momentum=BN_MOMENTUM[job["recipe"]], batch_size=None)
    steps_per_epoch = max(1, len(x_train) // job["batch"])
    compile_for_recipe(model, job["recipe"], steps_per_epoch, job["epochs"])
    train_ds = make_train_dataset(x_train, y_train, job["batch"], seed=int(job["seed"]))
    eval_ds = make_eval_dataset(x_eval, y_eval, job["batch"])

    class _Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if on_epoch:
                on_epoch(epoch + 1, float(logs.get("val_accuracy", 0.0)))

    start = time.perf_counter()
    model.fit(train_ds, epochs=job["epochs"], validation_data=eval_ds, verbose=0, callbacks=[_Report()])
    train_s = time.perf_counter() - start
    float_accuracy = float(model.evaluate(eval_ds, verbose=0, return_dict=True)["accuracy"])

    rng = np.random.default_rng(int(job["seed"]))
    calibration = x_train[np.sort(rng.choice(len(x_train), size=min(200, len(x_train)), replace=False))]
    deploy = build_keras_model(arch)

    def export() -> bytes:
        deploy.set_weights(model.get_weights())
        return convert_int8(deploy, np.asarray(calibration))

    qat = {}
    if job.get("qat_epochs"):
        from mcunas.train.qat import qat_finetune

        qat["int8_accuracy_before_qat"] = float(evaluate_tflite(export(), x_eval, y_eval)["accuracy"])
        start = time.perf_counter()
        qat_finetune(model, train_ds, calibration, job["qat_epochs"], steps_per_epoch)
        qat["qat_s"] = round(time.perf_counter() - start, 2)
        qat["float_accuracy_after_qat"] = float(model.evaluate(eval_ds, verbose=0, return_dict=True)["accuracy"])
    tflite = export()
    with atomic_path(out_dir / "model.keras") as tmp:
        deploy.save(tmp)
    tflite_path = out_dir / "model_int8.tflite"
    write_atomic(tflite_path, tflite)
    int8 = evaluate_tflite(tflite, x_eval, y_eval)
    measured = measure_arena(tflite_path)
    return {
        "float_accuracy": float_accuracy,
        "int8_accuracy": float(int8["accuracy"]),
        "eval_images": int(int8["total"]),
        "train_s": round(train_s, 2),
        **qat,
        "tflm_arena_bytes_measured": measured["tflm_arena_bytes"],
        "tflite_bytes_measured": len(tflite),
        "keras_path": str(out_dir / "model.keras"),
        "tflite_path": str(tflite_path),
    }
