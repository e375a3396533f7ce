"""Benchmark: how repeatable is the ground truth the supernet's Kendall tau is measured against?

Takes the JSON of ``mcunas bench supernet ... --json`` and trains each of
its members stand-alone once more, exactly as the bench did (same data,
epochs, validation images: ``split_seed`` unchanged) but with another
training ``--seed`` (initial weights, shuffling, augmentation).  Prints

* tau between the two stand-alone runs: how far one stand-alone training
  ranks the members as another does, the ceiling any score can reach
  against a single run;
* tau of the bench's supernet scores against each run and against the mean
  of the two (a less noisy ground truth);
* ``architecture_share``: the intraclass correlation ICC(1) of the two runs,
  the share of the accuracies' variance that comes from which member it is
  rather than from the training seed.  Near 0, the members' true accuracies
  differ by less than one training's noise, and no score can rank them.

Usage (from the repo root; the generated set is made again, it is deterministic)::

    python tests/bench/supernet_ground_truth.py bench.json --demo-images 2000 --seed 1

``--epochs N`` trains the second run longer (or shorter) than the bench did:
then the stand-alone-vs-stand-alone tau says how far the ranking after the
bench's epochs holds after N, and ``architecture_share`` is not printed (the
two runs no longer measure the same thing).

``--from-supernet FILE`` starts the second run from the weights each member
inherits from that supernet (the bench's ``--save-supernet`` file), as a
finalist does: with ``--epochs 1`` it measures whether a short fine-tune
ranks the members better than the score alone (``architecture_share`` is
not printed either).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # this checkout's mcunas, not an installed one


def architecture_share(first: list[float], second: list[float]) -> float:
    """ICC(1) for two runs per member: (MSB - MSW) / (MSB + MSW), between- and within-member mean squares."""
    import statistics

    means = [(x + y) / 2 for x, y in zip(first, second)]
    between = 2 * statistics.variance(means)
    within = statistics.fmean((x - y) ** 2 / 2 for x, y in zip(first, second))
    return (between - within) / (between + within) if between + within else 0.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bench_json", type=Path)
    p.add_argument("--data", help="the bench's --data (default: generate its demo set again)")
    p.add_argument("--demo-images", type=int, default=800)
    p.add_argument("--seed", type=int, default=1, help="training seed of the second run (default 1)")
    p.add_argument("--epochs", type=int, help="epochs of the second run (default: the bench's)")
    p.add_argument("--from-supernet", help="start the second run from the weights inherited from this supernet")
    p.add_argument("--split-seed", type=int, default=0, help="the bench's --seed (draws the validation share)")
    a = p.parse_args()

    from mcunas.bench.supernet import demo_set, kendall_tau
    from mcunas.train import train_candidate
    from mcunas.train.worker import TrainJob

    bench = json.loads(a.bench_json.read_text())
    rows = bench["rows"]
    epochs = a.epochs or bench["epochs"]
    again = []
    with tempfile.TemporaryDirectory() as tmp:
        data = a.data or demo_set(Path(tmp) / "demo", a.split_seed, a.demo_images)
        for i, r in enumerate(rows):
            done = train_candidate(TrainJob(arch=r["arch"], data=data, eval_data=None, epochs=epochs,
                                            batch=32, recipe="fast", seed=a.seed, out_dir=f"{tmp}/m{i}",
                                            split_seed=a.split_seed, supernet=a.from_supernet))
            again.append({"float_accuracy": done["float_accuracy"], "int8_accuracy": done["int8_accuracy"]})
            print(f"member {i + 1}/{len(rows)}: float {r['float_accuracy']:.3f} then {done['float_accuracy']:.3f}",
                  file=sys.stderr, flush=True)
    sup = [r["supernet_accuracy"] for r in rows]
    figures = {"bench": str(a.bench_json), "members": len(rows), "seed": a.seed,
               "bench_epochs": bench["epochs"], "epochs": epochs, "from_supernet": a.from_supernet}
    for kind in ("float", "int8"):
        first = [r[f"{kind}_accuracy"] for r in rows]
        second = [g[f"{kind}_accuracy"] for g in again]
        mean = [(x + y) / 2 for x, y in zip(first, second)]
        figures[f"tau_standalone_vs_standalone_{kind}"] = round(kendall_tau(first, second), 3)
        figures[f"tau_supernet_vs_first_{kind}"] = round(kendall_tau(sup, first), 3)
        figures[f"tau_supernet_vs_second_{kind}"] = round(kendall_tau(sup, second), 3)
        figures[f"tau_supernet_vs_mean_{kind}"] = round(kendall_tau(sup, mean), 3)
        if epochs == bench["epochs"] and not a.from_supernet:
            figures[f"architecture_share_{kind}"] = round(architecture_share(first, second), 3)
        figures[f"second_{kind}_accuracy"] = [round(x, 4) for x in second]
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
