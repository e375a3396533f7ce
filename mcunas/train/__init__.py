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


def train_candidate(job, on_epoch=None) -> dict:
    """Train, export and evaluate one architecture (a :class:`~mcunas.train.worker.TrainJob`).

    Returns the figures to record.  ``on_epoch(epoch, float_val_accuracy)``
    is called after every epoch.
    """
    from mcunas.arch import parse_arch

    arch = parse_arch(job.arch)
    out_dir = Path(job.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_eval, y_eval) = _splits(job, arch)
    model, train_s, float_accuracy = _fit(job, arch, x_train, y_train, x_eval, y_eval, on_epoch)
    exported = _export_and_measure(model, arch, job.seed, x_train, x_eval, y_eval, out_dir)
    return {"float_accuracy": float_accuracy, "int8_accuracy": exported.pop("int8_accuracy"),
            "eval_images": exported.pop("eval_images"), "train_s": round(train_s, 2), **exported}


def _splits(job, arch):
    """(train, eval) images and labels: with separate eval data all of ``data`` trains."""
    from mcunas.data import load_split

    size, channels = arch.resolution, arch.in_channels
    separate_eval = bool(job.eval_data)
    train = load_split(job.data, "all" if separate_eval else "train", size, channels)
    evaluation = load_split(job.eval_data or job.data, "all" if separate_eval else "eval", size, channels)
    return train, evaluation


def _fit(job, arch, x_train, y_train, x_eval, y_eval, on_epoch):
    """The open-batch Keras model trained with the job's recipe; (model, seconds, float eval accuracy)."""
    import keras

    from mcunas.data import make_eval_dataset, make_train_dataset
    from mcunas.keras_model import build_keras_model

    keras.utils.set_random_seed(int(job.seed))
    model = build_keras_model(arch, bn_momentum=BN_MOMENTUM[job.recipe], batch_size=None)
    compile_for_recipe(model, job.recipe, max(1, len(x_train) // job.batch), job.epochs)
    train_ds = make_train_dataset(x_train, y_train, job.batch, seed=int(job.seed))
    eval_ds = make_eval_dataset(x_eval, y_eval, job.batch)

    class _Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if on_epoch:
                on_epoch(epoch + 1, float(logs.get("val_accuracy", 0.0)))

    start = time.perf_counter()
    model.fit(train_ds, epochs=job.epochs, validation_data=eval_ds, verbose=0, callbacks=[_Report()])
    train_s = time.perf_counter() - start
    float_accuracy = float(model.evaluate(eval_ds, verbose=0, return_dict=True)["accuracy"])
    return model, train_s, float_accuracy


def _export_and_measure(model, arch, seed: int, x_train, x_eval, y_eval, out_dir: Path) -> dict:
    """Batch-1 twin saved as .keras, int8 .tflite calibrated on 200 training images, int8 accuracy, TFLM arena."""
    import numpy as np

    from mcunas.data import evaluate_tflite
    from mcunas.export.tflite import convert_int8
    from mcunas.keras_model import build_keras_model
    from mcunas.tflm import measure_arena

    deploy = build_keras_model(arch)
    deploy.set_weights(model.get_weights())
    with atomic_path(out_dir / "model.keras") as tmp:
        deploy.save(tmp)
    rng = np.random.default_rng(int(seed))
    calibration = x_train[np.sort(rng.choice(len(x_train), size=min(200, len(x_train)), replace=False))]
    tflite = convert_int8(deploy, np.asarray(calibration))
    tflite_path = out_dir / "model_int8.tflite"
    write_atomic(tflite_path, tflite)
    int8 = evaluate_tflite(tflite, x_eval, y_eval)
    measured = measure_arena(tflite_path)
    return {
        "int8_accuracy": float(int8["accuracy"]),
        "eval_images": int(int8["total"]),
        "tflm_arena_bytes_measured": measured["tflm_arena_bytes"],
        "tflite_bytes_measured": len(tflite),
        "keras_path": str(out_dir / "model.keras"),
        "tflite_path": str(tflite_path),
    }
