"""QAT benchmark: the int8 − float accuracy gap without and with quantisation-aware fine-tuning.

Run from the repository root::

    python tests/bench/qat.py [--preset mlperf-vww] [--epochs 3] [--qat-epochs 3] [--seeds 3] [--json]

For each data set (the generated demo set, ``mcunas data synth --n 2000``
made in a temporary folder; and ../shared/data/vww01_dev or ``--vww01`` when present: its
own 80/20 split, 400 train and 100 eval images) and each seed, one float
model is trained (``fast`` recipe, ``--epochs``) and exported (int8 accuracy
of the plain post-training export), then from the same weights:

* **QAT**: :func:`mcunas.train.qat.qat_finetune` for ``--qat-epochs``;
* **control**: the same optimiser and schedule for the same epochs without
  fake quantisation (BatchNorm frozen as in QAT), to tell what fake
  quantisation does from what a few more epochs at 1e-5 do.

Every gap is int8 accuracy minus the float accuracy of the trained model
*before* fine-tuning, in percentage points; the table gives medians over the
seeds and each seed's gap.  The eval sets are small (424 and 100 images:
one image is 0.24 and 1 point), so read differences below a few points as noise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VWW01_DEV = REPO.parent / "shared" / "data" / "vww01_dev"  # where CI puts shared/
sys.path.insert(0, str(REPO))  # this checkout's mcunas, not an installed one


def run_seed(arch, data: str, epochs: int, qat_epochs: int, seed: int, batch: int) -> dict:
    import keras
    import numpy as np

    from mcunas.data import evaluate_tflite, load_split, make_eval_dataset, make_train_dataset
    from mcunas.export.tflite import convert_int8
    from mcunas.keras_model import build_keras_model
    from mcunas.train import qat
    from mcunas.train.recipes import BN_MOMENTUM, compile_for_recipe

    x_train, y_train = load_split(data, "train", arch.resolution, arch.in_channels)
    x_eval, y_eval = load_split(data, "eval", arch.resolution, arch.in_channels)
    keras.utils.set_random_seed(seed)
    model = build_keras_model(arch, bn_momentum=BN_MOMENTUM["fast"], batch_size=None)
    steps = max(1, len(x_train) // batch)
    compile_for_recipe(model, "fast", steps, epochs)
    train_ds = make_train_dataset(x_train, y_train, batch, seed=seed)
    eval_ds = make_eval_dataset(x_eval, y_eval, batch)
    model.fit(train_ds, epochs=epochs, verbose=0)
    rng = np.random.default_rng(seed)
    calibration = x_train[np.sort(rng.choice(len(x_train), size=min(200, len(x_train)), replace=False))]
    deploy = build_keras_model(arch)

    def accuracies() -> tuple[float, float, int]:
        deploy.set_weights(model.get_weights())
        tflite = convert_int8(deploy, calibration)
        float_acc = float(model.evaluate(eval_ds, verbose=0, return_dict=True)["accuracy"])
        return float_acc, float(evaluate_tflite(tflite, x_eval, y_eval)["accuracy"]), len(tflite)

    trained = model.get_weights()
    float0, int8_0, bytes0 = accuracies()
    start = time.perf_counter()
    qat.qat_finetune(model, train_ds, calibration, qat_epochs, steps)
    qat_s = time.perf_counter() - start
    float_qat, int8_qat, bytes_qat = accuracies()

    model.set_weights(trained)
    batchnorms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in batchnorms:
        layer.trainable = False  # inference mode, as the QAT twin's frozen statistics
    schedule = keras.optimizers.schedules.ExponentialDecay(
        qat.QAT_LEARNING_RATE, decay_steps=steps, decay_rate=qat.QAT_DECAY_PER_EPOCH, staircase=True)
    model.compile(optimizer=keras.optimizers.RMSprop(schedule, rho=0.9, momentum=0.9, epsilon=qat.RMSPROP_EPSILON),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train_ds, epochs=qat_epochs, verbose=0)
    float_ctl, int8_ctl, _ = accuracies()
    return {"seed": seed, "float_accuracy": float0, "int8_accuracy_ptq": int8_0,
            "float_accuracy_after_qat": float_qat, "int8_accuracy_qat": int8_qat,
            "float_accuracy_after_control": float_ctl, "int8_accuracy_control": int8_ctl,
            "tflite_bytes_ptq": bytes0, "tflite_bytes_qat": bytes_qat,
            "qat_s_per_epoch": qat_s / qat_epochs, "eval_images": len(x_eval)}


def summarise(runs: list[dict]) -> dict:
    def gaps(key):
        return [round(100 * (r[key] - r["float_accuracy"]), 2) for r in runs]

    out = {"seeds": len(runs), "eval_images": runs[0]["eval_images"],
           "float_accuracy_median": statistics.median(r["float_accuracy"] for r in runs),
           "qat_s_per_epoch_median": round(statistics.median(r["qat_s_per_epoch"] for r in runs), 1),
           "tflite_bytes_equal": all(r["tflite_bytes_ptq"] == r["tflite_bytes_qat"] for r in runs)}
    for arm, key in (("ptq", "int8_accuracy_ptq"), ("qat", "int8_accuracy_qat"), ("control", "int8_accuracy_control")):
        out[f"gap_{arm}_pts"] = gaps(key)
        out[f"gap_{arm}_median_pts"] = statistics.median(out[f"gap_{arm}_pts"])
    out["float_change_qat_median_pts"] = statistics.median(gaps("float_accuracy_after_qat"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mlperf-vww")
    parser.add_argument("--epochs", type=int, default=3, help="float training epochs (default 3)")
    parser.add_argument("--qat-epochs", type=int, default=3, help="QAT / control epochs (default 3)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per data set (default 3)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--synth-images", type=int, default=2000)
    parser.add_argument("--vww01", type=Path, default=VWW01_DEV, help=f"vww01 folder (default {VWW01_DEV})")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from mcunas.data.synth import synthesize
    from mcunas.presets import preset_arch

    arch = preset_arch(args.preset)
    results = {"preset": args.preset, "epochs": args.epochs, "qat_epochs": args.qat_epochs}
    with tempfile.TemporaryDirectory() as tmp:
        sets = {f"synth_{args.synth_images}": str(Path(tmp) / "synth")}
        synthesize(sets[f"synth_{args.synth_images}"], n=args.synth_images)
        if args.vww01.is_dir():
            sets["vww01_dev"] = str(args.vww01)
        else:
            print(f"skipping vww01_dev: {args.vww01} is absent", file=sys.stderr)
        for name, path in sets.items():
            runs = []
            for seed in range(args.seeds):
                runs.append(run_seed(arch, path, args.epochs, args.qat_epochs, seed, args.batch))
                print(f"{name} seed {seed}: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
            results[name] = summarise(runs)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.preset}: {args.epochs} float epochs, then {args.qat_epochs} epochs QAT or control; "
          "int8 - float accuracy gap in points (median over seeds; per seed)")
    for name in sets:
        r = results[name]
        print(f"\n{name}  ({r['seeds']} seeds, {r['eval_images']} eval images, "
              f"float accuracy median {100 * r['float_accuracy_median']:.1f} %, "
              f"QAT {r['qat_s_per_epoch_median']} s/epoch, QAT file size equal: {r['tflite_bytes_equal']})")
        for arm, label in (("ptq", "no QAT (post-training)"), ("qat", f"QAT {args.qat_epochs} epochs"),
                           ("control", "control (no fake quant)")):
            print(f"  {label:26s} {r[f'gap_{arm}_median_pts']:+6.2f}   {r[f'gap_{arm}_pts']}")
        print(f"  float accuracy change by QAT  {r['float_change_qat_median_pts']:+6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
