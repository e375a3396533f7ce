"""Benchmark: a supernet campaign vs a ``--halving`` campaign at equal wall-clock, same space, data and budget.

Both arms start together and run side by side (so they share the machine's
load equally), with the same seed, space, data, budget (``--extra``) and
``--epochs``:

* **supernet**: ``mcunas supernet train`` (``--supernet-epochs`` at the
  space's resolution), then ``mcunas search --supernet FILE --finalists K``
  with ``--timeout`` set to what is left of ``--minutes`` after the
  supernet's training and ``--finalist-reserve`` (the finalists are trained
  after the timeout, so their time is reserved up front);
* **halving**: ``mcunas search --halving ETA --timeout MINUTES``.

``--timeout`` stops *starting* candidates, so each arm's real wall-clock
(supernet training included) is measured and reported.  Then, from each
study (tests/bench/halving.py's ``read_arm``): ``scored`` (candidates given
a supernet score), ``evaluated`` (distinct networks given any training),
``trained`` (finished, exported, int8-tested), the hypervolume of the
trained ones' int8-validation-accuracy vs predicted-SRAM front, the best
test accuracy on that front and each trained network's int8 test accuracy.

Usage (from the repo root)::

    python tests/bench/supernet_vs_halving.py --data demo --demo-images 1000 --minutes 13 \\
        --supernet-epochs 4 --finalists 3 --out /tmp/bench_snh
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]  # this checkout
from halving import read_arm  # noqa: E402  (the same reading as the halving benchmark)

REPO = Path(__file__).resolve().parents[2]
SPACE = Path(__file__).resolve().parent / "mobilenet_v2_64.yaml"


def search_command(study: str, data: str, a, timeout_s: float) -> list[str]:
    return [sys.executable, "-m", "mcunas", "search", "--space", str(a.space), "--data", data, "--study", study,
            "--results-dir", str(a.out), "--epochs", str(a.epochs), "--n-trials", "100000",
            "--timeout", f"{max(1, int(timeout_s))}s", "--seed", str(a.seed), "--no-export-winner", "--json",
            *a.extra.split()]


def supernet_arm(data: str, a, log, said: dict) -> None:
    start = time.perf_counter()
    npz = a.out / "supernet.npz"
    train = subprocess.run([sys.executable, "-m", "mcunas", "supernet", "train", "--space", str(a.space), "--data",
                            data, "--epochs", str(a.supernet_epochs), "--out", str(npz), "--seed", str(a.seed)],
                           cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False)
    said["supernet_train_s"] = round(time.perf_counter() - start, 1)
    left_s = a.minutes * 60 - said["supernet_train_s"] - a.finalist_reserve * 60
    said["search_timeout_s"] = round(left_s, 1)
    if train.returncode or left_s < 10:
        said["exit"] = train.returncode or "no time left after the supernet"
        return
    search = subprocess.run(search_command("supernet", data, a, left_s)
                            + ["--supernet", str(npz), "--finalists", str(a.finalists)],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False)
    said["exit"] = search.returncode
    said["elapsed_s"] = round(time.perf_counter() - start, 1)


def halving_arm(data: str, a, log, said: dict) -> None:
    start = time.perf_counter()
    proc = subprocess.run(search_command("halving", data, a, a.minutes * 60) + ["--halving", str(a.eta)],
                          cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False)
    said["exit"] = proc.returncode
    said["elapsed_s"] = round(time.perf_counter() - start, 1)


def study_figures(study: str, a) -> dict:
    import optuna

    from mcunas.search.storage import open_storage

    s = optuna.load_study(study_name=study, storage=open_storage(f"journal:{a.out / study / 'study.journal'}"))
    done = [t for t in s.trials if t.state.name == "COMPLETE" and "rejected" not in t.user_attrs]
    trained = sorted((t for t in done if "int8_accuracy" in t.user_attrs), key=lambda t: -t.user_attrs["int8_accuracy"])
    return {"scored": sum("supernet_accuracy" in t.user_attrs for t in done),
            "trained_test_accuracy": [round(t.user_attrs.get("test_accuracy", float("nan")), 4) for t in trained],
            "trained_int8_val_accuracy": [round(t.user_attrs["int8_accuracy"], 4) for t in trained],
            **read_arm(study, a.out)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="'demo' (generated, --demo-images) or a dataset folder")
    p.add_argument("--demo-images", type=int, default=1000)
    p.add_argument("--space", type=Path, default=SPACE, help="space YAML (default: mobilenet_v2 at 64 px)")
    p.add_argument("--minutes", type=float, default=13, help="wall-clock per arm, supernet training included")
    p.add_argument("--epochs", type=int, default=3, help="training epochs per candidate and finalist (default 3)")
    p.add_argument("--eta", type=int, default=2)
    p.add_argument("--supernet-epochs", type=int, default=4)
    p.add_argument("--finalists", type=int, default=3)
    p.add_argument("--finalist-reserve", type=float, default=3, help="minutes reserved for the finalists")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--extra", default="", help="more `mcunas search` flags for both arms, e.g. '--sram 128KB'")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    a.out = a.out.resolve()
    a.out.mkdir(parents=True, exist_ok=True)
    data = a.data
    if data == "demo":
        from mcunas.bench.supernet import demo_set

        data = str(a.out / "demo")
        if not Path(data).exists():
            demo_set(Path(data), a.seed, a.demo_images)
    data = str(Path(data).resolve())
    said = {"supernet": {}, "halving": {}}
    arms = [threading.Thread(target=fn, args=(data, a, open(a.out / f"{name}.log", "w"), said[name]))
            for name, fn in (("supernet", supernet_arm), ("halving", halving_arm))]
    for arm in arms:
        arm.start()
    for arm in arms:
        arm.join()
    rows = [{"arm": name, **said[name], **study_figures(name, a)} for name in said if (a.out / name).exists()]
    print(json.dumps({"settings": {k: str(v) for k, v in vars(a).items()}, "arms": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
