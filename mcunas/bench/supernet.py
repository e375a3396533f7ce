"""``mcunas bench supernet``: is a supernet score worth having?  Speed, ranking, cost, memory.

Trains one supernet for ``--space`` on ``--data`` (``--supernet-epochs``,
at ``--resolution``), then takes ``--members`` random members of the space
(at that resolution when one is given, so the figures are about one size;
with ``--spread macs`` the members at evenly spaced MACs quantiles of a
1,000-member sample instead, from the smallest to the largest) and, for
each, times its supernet score (weights sliced, BatchNorm recalibrated
on 256 training images, float validation accuracy) against a
stand-alone training at the campaign's ``--epochs`` (the ordinary path:
train, int8 export, int8 accuracy, TFLM).  Prints the median seconds of
each and their ratio (goal: scoring at least 50x faster), Kendall's tau
between supernet accuracy and the stand-alone float and int8 validation
accuracy (goal >= 0.5 on the generated set), the supernet's training time
in stand-alone trainings (median), its file size and the training
process's peak resident size.  ``--memory`` instead trains each supported
space's supernet for a few steps at 96 and 160 px in a fresh process and
reports file size and peak resident size (what the README quotes).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("supernet", help="supernet scoring vs stand-alone training: speed, Kendall tau, cost, memory",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--space", default="mobilenet_v2", help="space (default mobilenet_v2)")
    p.add_argument("--data", metavar="DIR", help="dataset (default: a generated demo set of --demo-images)")
    p.add_argument("--demo-images", type=int, default=800,
                   help="images in the generated demo set when no --data is given (default 800: 128 validation "
                        "images; 2000 gives 316)")
    p.add_argument("--members", type=int, default=16, help="sub-networks compared (default 16)")
    p.add_argument("--supernet-epochs", type=int, default=3, help="supernet training epochs (default 3)")
    p.add_argument("--epochs", type=int, default=3, help="stand-alone epochs per member, the campaign's (default 3)")
    p.add_argument("--resolution", type=int, default=64, help="train and compare at this resolution (default 64)")
    p.add_argument("--spread", choices=("random", "macs"), default="random",
                   help="how members are picked: random draws, or macs: evenly spaced MACs quantiles of a "
                        "1000-member sample, smallest to largest (default random)")
    p.add_argument("--save-supernet", metavar="PATH",
                   help="also keep the trained supernet here (for tests/bench/supernet_rescore.py)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--memory", action="store_true", help="only the per-space file size and peak RAM at 96 and 160 px")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b (ties in either list counted as neither concordant nor discordant)."""
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)) ** 0.5
    return (concordant - discordant) / denominator if denominator else 0.0


def run(args) -> int:
    from mcunas.errors import UserError
    from mcunas.output import print_figures

    if min(args.members, args.supernet_epochs, args.epochs) < 1:
        raise UserError("--members, --supernet-epochs and --epochs must be at least 1")
    if args.demo_images < 40:
        raise UserError(f"--demo-images {args.demo_images}: give at least 40 (the validation share needs images)")
    if args.save_supernet and not Path(args.save_supernet).resolve().parent.is_dir():
        raise UserError(f"--save-supernet {args.save_supernet}: give a file in an existing folder")
    with tempfile.TemporaryDirectory() as tmp:
        if args.memory:  # peak memory depends on batch and resolution; a small set keeps the runs short
            figures = _memory(args.data or demo_set(Path(tmp) / "small", args.seed, 96), tmp)
        else:
            figures = _ranking(args, args.data or demo_set(Path(tmp) / "demo", args.seed, args.demo_images), tmp)
    print_figures(figures, args.json)
    return 0


def demo_set(folder: Path, seed: int, n: int) -> str:
    """A generated ``n``-image demo set in ``folder`` (the bench's data without ``--data``; the
    supernet bench scripts under tests/bench make the same images from the same seed and size)."""
    from mcunas.data.synth import synthesize

    synthesize(folder, n=n, seed=seed)
    return str(folder)


def bench_members(space, count: int, resolution: int, spread: str) -> list[str]:
    """``count`` members of ``space`` at ``resolution``: random draws (seeds 1000, 1001, ...), or with ``spread``
    ``macs`` the members at evenly spaced MACs quantiles (smallest and largest included) of 1,000 draws.

    Random members of a space mostly sit in its middle, where true accuracies
    differ by less than a small validation set can tell; a ranking figure
    over them measures noise.  Spread members are what a search must tell apart.
    """
    import dataclasses

    from mcunas.cost import estimate
    from mcunas.spaces import RandomTrial, sample_arch

    def draw(seed: int):
        return dataclasses.replace(sample_arch(space, RandomTrial(seed)), resolution=resolution)

    if spread == "random":
        return [str(draw(1000 + i)) for i in range(count)]
    pool = sorted({str(a): a for a in map(draw, range(1000, 2000))}.values(),
                  key=lambda a: estimate(a, deployable=False)["macs"])
    picks = [round(i * (len(pool) - 1) / max(1, count - 1)) for i in range(count)]
    return [str(pool[i]) for i in picks]


def _ranking(args, data: str, tmp: str) -> dict:
    import dataclasses

    from mcunas.spaces import load_space
    from mcunas.supernet.file import save_supernet
    from mcunas.supernet.score import score_candidate
    from mcunas.supernet.train import train_supernet
    from mcunas.train import train_candidate
    from mcunas.train.worker import TrainJob

    space = load_space(args.space)
    weights, meta = train_supernet(space, str(Path(data).resolve()), args.supernet_epochs, args.resolution,
                                   seed=args.seed)
    path = Path(args.save_supernet or Path(tmp) / "supernet.npz")
    save_supernet(path, weights, meta)
    rows = []
    for i, arch in enumerate(bench_members(space, args.members, args.resolution, args.spread)):
        job = TrainJob(arch=arch, data=data, eval_data=None, epochs=args.epochs, batch=32, recipe="fast",
                       seed=args.seed, out_dir=f"{tmp}/m{i}", split_seed=args.seed, kind="score", supernet=str(path))
        start = time.perf_counter()
        score = score_candidate(job)
        score_s = time.perf_counter() - start
        start = time.perf_counter()
        trained = train_candidate(dataclasses.replace(job, kind="train", supernet=None))
        rows.append({"arch": arch, "supernet_accuracy": score["supernet_accuracy"], "score_s": score_s,
                     "train_s": trained["train_s"], "standalone_s": time.perf_counter() - start,
                     "float_accuracy": trained["float_accuracy"], "int8_accuracy": trained["int8_accuracy"]})
        print(f"mcunas: member {i + 1}/{args.members}: supernet {score['supernet_accuracy']:.3f} "
              f"({score_s:.1f}s), stand-alone float {trained['float_accuracy']:.3f} ({rows[-1]['standalone_s']:.0f}s)",
              file=sys.stderr, flush=True)
    score_s = statistics.median(r["score_s"] for r in rows)
    standalone_s = statistics.median(r["standalone_s"] for r in rows)
    sup = [r["supernet_accuracy"] for r in rows]
    return {
        "space": space.name, "data": data, "resolution": args.resolution, "members": args.members,
        "supernet_epochs": args.supernet_epochs, "epochs": args.epochs, "spread": args.spread,
        "median_score_s": round(score_s, 2), "median_standalone_s": round(standalone_s, 1),
        "median_standalone_fit_s": round(statistics.median(r["train_s"] for r in rows), 1),
        "standalone_over_score": round(standalone_s / score_s, 1),
        "kendall_tau_float": round(kendall_tau(sup, [r["float_accuracy"] for r in rows]), 3),
        "kendall_tau_int8": round(kendall_tau(sup, [r["int8_accuracy"] for r in rows]), 3),
        "supernet_train_s": meta["train_s"],
        "supernet_train_in_standalone_trainings": round(meta["train_s"] / standalone_s, 1),
        "supernet_file_bytes": path.stat().st_size, "supernet_peak_rss_bytes": meta["peak_rss_bytes"],
        "rows": rows,
    }


def _memory(data: str, tmp: str) -> dict:
    """Per supported space and resolution: a fresh ``mcunas supernet train`` process's file size and peak RSS."""
    import json
    import subprocess

    from mcunas.child import python_child

    figures = {"data": data}
    for space in ("mobilenet_v1", "mobilenet_v2", "mnasnet", "shufflenet_v2"):
        for resolution in (96, 160):
            out = Path(tmp) / f"{space}_{resolution}.npz"
            cmd, env = python_child("mcunas")
            proc = subprocess.run([*cmd, "supernet", "train", "--space", space, "--data", data, "--epochs", "1",
                                   "--resolution", str(resolution), "--out", str(out), "--json"],
                                  capture_output=True, text=True, env=env, check=False)
            if proc.returncode:
                raise RuntimeError(proc.stderr[-2000:])
            made = json.loads(proc.stdout)
            figures[f"{space}_{resolution}_file_bytes"] = made["file_bytes"]
            figures[f"{space}_{resolution}_peak_rss_bytes"] = made["peak_rss_bytes"]
    return figures
