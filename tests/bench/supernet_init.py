"""Supernet initialisation: BigNAS's gamma 0 on every residual block's projection (the default) against
gamma 1 everywhere (the earlier default): which supernet gives its members better inherited weights?

Usage: python tests/bench/supernet_init.py DATA EPOCHS RESOLUTION MEMBERS
Trains one mobilenet_v2 supernet per initialisation (same seed, data, EPOCHS at RESOLUTION), then scores the
same MEMBERS members spread by MACs (as ``mcunas bench supernet --spread macs`` picks them) and the largest,
exactly as a search scores them (BatchNorm recalibrated on 256 training images, float accuracy on the seed-0
validation share), and prints each initialisation's scores, their mean over the members, and in how many
members the default scored higher.
"""

import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's mcunas

import numpy as np  # noqa: E402

from mcunas.arch import parse_arch  # noqa: E402
from mcunas.bench.supernet import bench_members  # noqa: E402
from mcunas.spaces import load_space  # noqa: E402
from mcunas.supernet import net  # noqa: E402
from mcunas.supernet.members import extreme_arch  # noqa: E402
from mcunas.supernet.score import search_scores  # noqa: E402
from mcunas.supernet.train import train_supernet  # noqa: E402

data, epochs, resolution, count = sys.argv[1], *map(int, sys.argv[2:5])
space = load_space("mobilenet_v2")
members = [parse_arch(a) for a in bench_members(space, count, resolution, "macs")]
members.append(dataclasses.replace(extreme_arch(space, True), resolution=resolution))
default = net.initial_weights


def gamma_one(shape, seed):
    """The earlier initialisation: every BatchNorm gamma 1."""
    return {k: np.ones_like(v) if k.endswith("/gamma") else v for k, v in default(shape, seed).items()}


scores = {}
for name, init in (("residual_gamma_0", default), ("gamma_1", gamma_one)):
    net.initial_weights = init  # train_supernet looks it up in its module
    import tensorflow as tf

    weights, meta = train_supernet(space, data, epochs, resolution)
    scores[name] = search_scores({k: tf.constant(v) for k, v in weights.items()}, space, members, data)
    print(json.dumps({"init": name, "train_s": meta["train_s"], "scores": scores[name]}), flush=True)
net.initial_weights = default
pairs = list(zip(scores["residual_gamma_0"][:-1], scores["gamma_1"][:-1]))
print(f"mean supernet accuracy over {count} members at {resolution} px: residual gamma 0 "
      f"{np.mean([a for a, _ in pairs]):.3f}, gamma 1 {np.mean([b for _, b in pairs]):.3f}; residual gamma 0 higher "
      f"in {sum(a > b for a, b in pairs)}, lower in {sum(a < b for a, b in pairs)}; largest member "
      f"{scores['residual_gamma_0'][-1]:.3f} vs {scores['gamma_1'][-1]:.3f}")
