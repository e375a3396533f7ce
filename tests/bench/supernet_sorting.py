"""Does sorting a block's inner channels by importance (mcunas/supernet/sort.py) give narrower members better
inherited weights than leaving the channels in their initial order?

Usage: python tests/bench/supernet_sorting.py DATA EPOCHS RESOLUTION MEMBERS [SEED ...]
Per training SEED (default 0), trains two mobilenet_v2 supernets, one sorting (``train_supernet(sort=True)``:
after every epoch but the last) and one not (same seed, data, EPOCHS at RESOLUTION), then scores the same
MEMBERS random members at RESOLUTION with each, exactly as a search with that --seed scores them (BatchNorm
recalibrated on 256 training images, float accuracy on the seed's validation share), and prints the mean score
per variant, in how many members each is higher, the seconds the sorts took and the share of channels each sort
moved.  With two seeds or more it also prints how far the same variant's mean moves from one seed to the next:
the noise a difference between the variants has to stand out of.
"""

import dataclasses
import json
import sys
from itertools import combinations
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's mcunas, not an installed one

import numpy as np

from mcunas.spaces import RandomTrial, load_space, sample_arch
from mcunas.supernet import sort, train
from mcunas.supernet.score import scoring_sets, search_scores

data, epochs, resolution, count = sys.argv[1], *map(int, sys.argv[2:5])
seeds = [int(s) for s in sys.argv[5:]] or [0]
space = load_space("mobilenet_v2")
members = [dataclasses.replace(sample_arch(space, RandomTrial(3000 + i)), resolution=resolution) for i in range(count)]
built = train.sort_channels
means, moved = {}, []


def sort_and_count(variables, space, optimizer):
    """The built sort, noting the share of sorted channels it moved (over all groups, those in order included)."""
    orders = built(variables, space, optimizer)
    total = sum(channels for _, _, channels, _ in sort.channel_groups(space))
    moved.append(round(sum(int((order != np.arange(len(order))).sum()) for order in orders.values()) / total, 3))
    return orders


train.sort_channels = sort_and_count  # train_supernet() looks it up in its module
for seed in seeds:
    scores = {}
    for variant in ("sorted", "unsorted"):
        moved.clear()
        weights, meta = train.train_supernet(space, data, epochs, resolution, seed=seed, sort=variant == "sorted")
        scores[variant] = search_scores(weights, space, members, data, seed)
        means[seed, variant] = mean(scores[variant])
        print(json.dumps({"seed": seed, "variant": variant, "train_s": meta["train_s"],
                          "sort_s": meta.get("sort_s", 0.0), "moved_share_per_sort": moved, "val_images": len(scoring_sets(data, None, resolution, 3, seed, seed)[2]),
                          "scores": scores[variant]}), flush=True)
    pairs = list(zip(scores["sorted"], scores["unsorted"]))
    print(f"seed {seed}: mean supernet accuracy over {count} members at {resolution} px: sorted "
          f"{means[seed, 'sorted']:.3f}, unsorted {means[seed, 'unsorted']:.3f} (difference "
          f"{means[seed, 'sorted'] - means[seed, 'unsorted']:+.3f}); sorted higher in {sum(a > b for a, b in pairs)}, "
          f"unsorted higher in {sum(b > a for a, b in pairs)}, equal in {sum(a == b for a, b in pairs)}", flush=True)
for one, two in combinations(seeds, 2):
    print(f"seeds {one} vs {two}, same variant: sorted mean moves {means[two, 'sorted'] - means[one, 'sorted']:+.3f}, "
          f"unsorted {means[two, 'unsorted'] - means[one, 'unsorted']:+.3f}")
