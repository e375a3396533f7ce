"""ShuffleNet supernet: do channels behind a unit's concat read the rows of the supernet channel they stand for
(``channel_ids``, the rule built), or simply the leading rows?

Usage: python tests/bench/supernet_channel_rule.py DATA EPOCHS RESOLUTION MEMBERS
Trains one shufflenet_v2 supernet per rule (same seed, data, EPOCHS at RESOLUTION), then scores the same
MEMBERS random members at RESOLUTION with each, exactly as a search scores them (BatchNorm recalibrated on
256 training images, float accuracy on the seed-0 validation share), and prints the mean score per rule and
in how many members each rule scored higher.  Both rules give every member exactly its own network (the
exactness test holds for any choice of rows); what differs is which trained weights a narrower member gets.
"""

import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's mcunas, not an installed one

from mcunas.spaces import RandomTrial, load_space, sample_arch
from mcunas.supernet import net
from mcunas.supernet.score import search_scores
from mcunas.supernet.train import train_supernet

data, epochs, resolution, count = sys.argv[1], *map(int, sys.argv[2:5])
space = load_space("shufflenet_v2")
members = [dataclasses.replace(sample_arch(space, RandomTrial(3000 + i)), resolution=resolution) for i in range(count)]
built = net.channel_ids
scores = {}
for rule, ids in (("identity", built), ("leading", lambda arch, slots, weights: {})):
    net.channel_ids = ids  # forward() looks it up in its module
    weights, meta = train_supernet(space, data, epochs, resolution)
    scores[rule] = search_scores(weights, space, members, data)
    print(json.dumps({"rule": rule, "train_s": meta["train_s"], "scores": scores[rule]}), flush=True)
net.channel_ids = built
pairs = list(zip(scores["identity"], scores["leading"]))
print(f"mean supernet accuracy over {count} members at {resolution} px: identity "
      f"{sum(scores['identity']) / count:.3f}, leading {sum(scores['leading']) / count:.3f}; identity higher in "
      f"{sum(a > b for a, b in pairs)}, leading higher in {sum(b > a for a, b in pairs)}, equal in "
      f"{sum(a == b for a, b in pairs)}")
