"""Training one candidate: Keras fit, int8 export, int8 accuracy, TFLM arena.

:func:`train_candidate` is what the search runs for every candidate that fits
its budget.  It runs in a warm worker process (:mod:`mcunas.train.worker`),
one candidate after another, never in the search's own process: a crash or
abort inside TF or TFLM fails one trial instead of the campaign, and a
killed worker leaves no half-written files (artefacts are written to a
temporary name and renamed).

The data is split three ways (:func:`mcunas.data.train_val_test`): the model
trains on ``train``, the search selects on ``val``, and ``test`` is only
reported.  ``int8_accuracy`` (the accuracy objective, the key queries rank
by) is the **int8** accuracy of the exported ``.tflite`` on the validation
set — what the device will see — and equals ``val_accuracy``;
``test_accuracy`` is the same file's int8 accuracy on the test set, which
nothing selects on.  ``float_accuracy`` is the Keras model's on validation.  With ``qat_epochs`` the trained
model is fine-tuned quantisation-aware (:mod:`mcunas.train.qat`) before the
export, and the int8 accuracy before that is recorded too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from mcunas.atomic import atomic_path, write_atomic
from mcunas.train.recipes import BN_MOMENTUM, compile_for_recipe


class CandidateStopped(Exception):
    """``should_stop`` said yes: the worker ends this candidate and takes the next."""


def run_job(job, on_epoch=None, should_stop=None, on_stage=None) -> dict:
    """What a warm worker runs: a training job, or a ``score`` job (:mod:`mcunas.supernet.score`)."""
    if job.kind == "score":
        from mcunas.supernet.score import score_candidate

        return score_candidate(job)
    return train_candidate(job, on_epoch, should_stop, on_stage)


def train_candidate(job, on_epoch=None, should_stop=None, on_stage=None) -> dict:
    """Train, export and evaluate one architecture (a :class:`~mcunas.train.worker.TrainJob`).

    Returns the figures to record.  ``on_epoch(epoch, float_val_accuracy)``
    is called after every training epoch (not after QAT epochs, so a pruner
    sees training epochs only).  ``should_stop()`` is asked after every
    training batch and before the export; when it says yes,
    :class:`CandidateStopped` is raised (a pruned candidate ends within one
    batch, and its worker stays warm).  ``on_stage(text)`` is told what
    starts next (reading data, training, export and measurement), so the
    live view is never silent for a minute.
    """
    from mcunas.arch import parse_arch

    say = on_stage or (lambda text: None)

    arch = parse_arch(job.arch)
    out_dir = Path(job.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from mcunas.data import train_val_test

    say(f"reading the data at {arch.resolution}x{arch.resolution}x{arch.in_channels} (a first use builds its "
        "image cache)")
    sets = train_val_test(job.data, job.eval_data, arch.resolution, arch.in_channels, job.split_seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = sets["train"], sets["val"], sets["test"]
    say(f"training {job.epochs} epoch{'s' if job.epochs != 1 else ''} on {len(y_train):,} images (the first epoch "
        "also traces the model)")
    fitted = _fit(job, arch, x_train, y_train, x_val, y_val, on_epoch, should_stop)
    if should_stop and should_stop():
        raise CandidateStopped(f"after epoch {job.epochs}")
    calibration = _calibration_images(x_train, job.seed)
    if job.qat_epochs:
        say(f"quantisation-aware fine-tuning, {job.qat_epochs} epoch(s)")
    qat = _fine_tune(job, arch, fitted, calibration, x_val, y_val) if job.qat_epochs else {}
    say("int8 conversion, int8 accuracy on validation and test, TFLM arena measurement")
    exported = _export_and_measure(fitted.model, arch, calibration, (x_val, y_val), (x_test, y_test), out_dir)
    return {"float_accuracy": fitted.float_accuracy, **exported, "train_images": len(y_train),
            "train_s": round(fitted.train_s, 2), **qat}


@dataclass
class _Fitted:
    model: object  # the open-batch Keras model
    train_ds: object
    eval_ds: object
    steps_per_epoch: int
    train_s: float
    float_accuracy: float


def _fit(job, arch, x_train, y_train, x_val, y_val, on_epoch, should_stop=None) -> _Fitted:
    """The open-batch Keras model trained with the job's recipe, its datasets, seconds and float validation accuracy."""
    import keras

    from mcunas.data import make_eval_dataset, make_train_dataset
    from mcunas.keras_model import build_keras_model

    keras.utils.set_random_seed(int(job.seed))
    model = build_keras_model(arch, bn_momentum=BN_MOMENTUM[job.recipe], batch_size=None)
    if job.supernet:  # fine-tuned from the weights it inherits (BatchNorm statistics recalibrated)
        from mcunas.supernet.score import copy_into_keras, prepared_member

        copy_into_keras(model, *prepared_member(job)[1:3])
    steps_per_epoch = max(1, len(x_train) // job.batch)
    compile_for_recipe(model, job.recipe, steps_per_epoch, job.epochs)
    train_ds = make_train_dataset(x_train, y_train, job.batch, seed=int(job.seed))
    eval_ds = make_eval_dataset(x_val, y_val, job.batch)

    class _Report(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if should_stop and should_stop():
                raise CandidateStopped(f"in epoch {self.epoch + 1}, batch {batch + 1}")

        def on_epoch_end(self, epoch, logs=None):
            if on_epoch:
                on_epoch(epoch + 1, float(logs.get("val_accuracy", 0.0)))

    start = time.perf_counter()
    # shuffle=False: the dataset shuffles itself (keras would ignore True, with a warning)
    history = model.fit(train_ds, epochs=job.epochs, validation_data=eval_ds, verbose=0, callbacks=[_Report()],
                        shuffle=False)
    train_s = time.perf_counter() - start
    # fit validated the final weights after the last epoch: evaluating again would give the same number
    float_accuracy = float(history.history["val_accuracy"][-1])
    return _Fitted(model, train_ds, eval_ds, steps_per_epoch, train_s, float_accuracy)


def _calibration_images(x_train, seed: int):
    """The 200 training images (seeded) that set the int8 ranges; QAT trains against the same ranges."""
    import numpy as np

    rng = np.random.default_rng(int(seed))
    return np.asarray(x_train[np.sort(rng.choice(len(x_train), size=min(200, len(x_train)), replace=False))])


def _deployable(model, arch):
    """The batch-1 model the exports convert, carrying ``model``'s weights."""
    from mcunas.keras_model import build_keras_model

    deploy = build_keras_model(arch)
    deploy.set_weights(model.get_weights())
    return deploy


def _fine_tune(job, arch, fitted: _Fitted, calibration, x_val, y_val) -> dict:
    """Quantisation-aware fine-tuning of ``fitted.model`` in place; int8 accuracy before it and float after."""
    from mcunas.data import evaluate_tflite
    from mcunas.export.tflite import convert_int8
    from mcunas.train.qat import qat_finetune

    before = convert_int8(_deployable(fitted.model, arch), calibration)
    figures = {"int8_accuracy_before_qat": float(evaluate_tflite(before, x_val, y_val)["accuracy"])}
    start = time.perf_counter()
    qat_finetune(fitted.model, fitted.train_ds, calibration, job.qat_epochs, fitted.steps_per_epoch)
    figures["qat_s"] = round(time.perf_counter() - start, 2)
    figures["float_accuracy_after_qat"] = float(
        fitted.model.evaluate(fitted.eval_ds, verbose=0, return_dict=True)["accuracy"])
    return figures


def _export_and_measure(model, arch, calibration, val, test, out_dir: Path) -> dict:
    """Batch-1 twin saved as .keras, int8 .tflite calibrated on ``calibration``, its int8 validation and test
    accuracy, TFLM arena."""
    from mcunas.data import evaluate_tflite
    from mcunas.export.tflite import convert_int8
    from mcunas.tflm import measure_arena

    deploy = _deployable(model, arch)
    with atomic_path(out_dir / "model.keras") as tmp:
        deploy.save(tmp)
    tflite = convert_int8(deploy, calibration)
    tflite_path = out_dir / "model_int8.tflite"
    write_atomic(tflite_path, tflite)
    on_val, on_test = evaluate_tflite(tflite, *val), evaluate_tflite(tflite, *test)
    measured = measure_arena(tflite_path)
    return {
        "int8_accuracy": float(on_val["accuracy"]),
        "val_accuracy": float(on_val["accuracy"]),
        "test_accuracy": float(on_test["accuracy"]),
        "val_images": int(on_val["total"]),
        "test_images": int(on_test["total"]),
        "tflm_arena_bytes_measured": measured["tflm_arena_bytes"],
        "tflite_bytes_measured": len(tflite),
        "keras_path": str(out_dir / "model.keras"),
        "tflite_path": str(tflite_path),
    }
