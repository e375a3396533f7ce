"""Finalists from inherited weights or from scratch: which trains to the better int8 accuracy?

Usage: python tests/bench/supernet_finalist_init.py SUPERNET DATA MEMBERS EPOCHS RESOLUTION
Trains MEMBERS random members of the supernet's space (at RESOLUTION) for EPOCHS both ways through the
ordinary training path and prints each pair and the mean difference (int8 validation and test accuracy).
"""

import dataclasses
import json
import sys
import tempfile

from mcunas.spaces import RandomTrial, load_space, sample_arch
from mcunas.supernet.file import read_meta
from mcunas.train import train_candidate
from mcunas.train.worker import TrainJob

supernet, data, members, epochs, resolution = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
meta = read_meta(supernet)
space = load_space(meta.get("space_file", meta["space"]))
rows = []
with tempfile.TemporaryDirectory() as tmp:
    for i in range(members):
        arch = str(dataclasses.replace(sample_arch(space, RandomTrial(2000 + i)), resolution=resolution))
        row = {"arch": arch}
        for init in ("supernet", "scratch"):
            job = TrainJob(arch=arch, data=data, eval_data=None, epochs=epochs, batch=32, recipe="fast", seed=0,
                           out_dir=f"{tmp}/{i}{init}", supernet=supernet if init == "supernet" else None)
            result = train_candidate(job)
            row[f"{init}_val"], row[f"{init}_test"] = result["int8_accuracy"], result["test_accuracy"]
        rows.append(row)
        print(json.dumps(row), flush=True)
for key in ("val", "test"):
    diff = sum(r[f"supernet_{key}"] - r[f"scratch_{key}"] for r in rows) / len(rows)
    print(f"mean int8 {key} accuracy, inherited minus scratch: {diff:+.3f} over {len(rows)} members")
