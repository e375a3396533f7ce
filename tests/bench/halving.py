"""Benchmark: candidates evaluated and front hypervolume at equal wall-clock, with and without --halving.

For each data set, two ``mcunas search`` campaigns run side by side (so they
share the machine's load equally) with the same seed, space, epochs and
``--timeout``; one adds ``--halving ETA``.  ``--timeout`` stops *starting*
candidates, so each arm's real elapsed time is reported too.  Then, read from
each study:

* ``evaluated``: distinct networks that got any training (trained + stopped);
* ``trained``: finished to the last epoch (exported, int8-evaluated);
* ``hv``: hypervolume of the int8-validation-accuracy vs predicted TFLM SRAM
  front of the trained ones, against the reference point (accuracy 0, SRAM =
  the 250 KB budget), SRAM as a fraction of the budget — so 1.0 would be
  accuracy 1 at zero bytes;
* the best test accuracy on that front and the test set's majority share.

Usage (from the repo root)::

    python tests/bench/halving.py --minutes 7 --epochs 4 --eta 2 --demo-images 300 \\
        --data demo --data ../shared/data/vww01_dev --extra "--macs 10M" --out /tmp/bench_halving
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SRAM_REF_BYTES = 250_000


def hypervolume(acc: np.ndarray, sram: np.ndarray, ref_sram: float = SRAM_REF_BYTES) -> float:
    """Area dominated by the (max accuracy, min SRAM) points inside (0 accuracy, ``ref_sram``), SRAM / ref."""
    keep = sram <= ref_sram
    order = np.argsort(sram[keep], kind="stable")
    xs, ys = sram[keep][order] / ref_sram, acc[keep][order]
    area, best = 0.0, 0.0
    for i, (x, y) in enumerate(zip(xs, ys)):
        best = max(best, y)
        nxt = xs[i + 1] if i + 1 < len(xs) else 1.0
        area += best * (nxt - x)
    return float(area)


def arm_command(data: str, study: str, out: Path, a, halving: bool) -> list[str]:
    cmd = [sys.executable, "-m", "mcunas", "search", "--study", study, "--results-dir", str(out),
           "--epochs", str(a.epochs), "--n-trials", "1000", "--timeout", f"{a.minutes}m", "--seed", str(a.seed),
           "--no-export-winner", "--json"]
    cmd += ["--demo-images", str(a.demo_images)] if data == "demo" else ["--data", data]
    return cmd + a.extra.split() + (["--halving", str(a.eta)] if halving else [])


def read_arm(study: str, out: Path) -> dict:
    import optuna

    from mcunas.search.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    s = optuna.load_study(study_name=study, storage=open_storage(f"journal:{out / study / 'study.journal'}"))
    trials = [t for t in s.trials if "rejected" not in t.user_attrs and not t.user_attrs.get("duplicate_of_earlier_trial")]
    trained = [t for t in trials if t.state.name == "COMPLETE" and "int8_accuracy" in t.user_attrs]
    stopped = [t for t in trials if t.state.name == "PRUNED"]
    acc = np.array([t.user_attrs["int8_accuracy"] for t in trained])
    sram = np.array([t.user_attrs["costs"]["sram_tflm_bytes"] for t in trained], dtype=float)
    from mcunas.search.results import pareto_mask
    import pandas as pd

    df = pd.DataFrame({"acc": acc, "sram": sram, "test": [t.user_attrs.get("test_accuracy") for t in trained]})
    front = df[pareto_mask(df, ["acc"], ["sram"])] if len(df) else df
    return {"evaluated": len({t.user_attrs["arch"] for t in trained + stopped}), "trained": len(trained),
            "stopped": len(stopped), "rejected": sum("rejected" in t.user_attrs for t in s.trials),
            "hv": round(hypervolume(acc, sram), 4) if len(acc) else 0.0,
            "best_val": round(float(acc.max()), 4) if len(acc) else None,
            "front_best_test": round(float(front.test.max()), 4) if len(front) else None,
            "majority_test": s.user_attrs.get("majority_test_accuracy"),
            "stopped_at": sorted(t.user_attrs.get("rung") for t in stopped)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", action="append", required=True, help="'demo' (generated) or a dataset folder")
    p.add_argument("--minutes", type=float, default=7)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--eta", type=int, default=2)
    p.add_argument("--demo-images", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--extra", default="", help="more `mcunas search` flags for both arms, e.g. '--macs 10M'")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    procs = {}
    for i, data in enumerate(a.data):
        for halving in (False, True):
            study = f"d{i}_{'halving' if halving else 'plain'}"
            log = open(a.out / f"{study}.log", "w")
            procs[study] = (data, halving,
                            subprocess.Popen(arm_command(data, study, a.out, a, halving), cwd=REPO, stdout=log,
                                             stderr=subprocess.STDOUT))
    rows = []
    for study, (data, halving, proc) in procs.items():
        proc.wait()
        said = re.search(r'"elapsed_s": ([0-9.]+)', (a.out / f"{study}.log").read_text())
        rows.append({"data": data, "arm": f"halving {a.eta}" if halving else "plain", "study": study,
                     "exit": proc.returncode, "elapsed_s": float(said.group(1)) if said else None,
                     **read_arm(study, a.out)})
    print(json.dumps({"settings": vars(a) | {"out": str(a.out)}, "arms": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
