"""Benchmark: what ranks the members — depth, MACs or parameters — in each accuracy of the tau bench?

The supernet's Kendall tau against stand-alone training says *whether* the
two rankings agree; this says *why not*.  For the supernet scores and the
stand-alone float accuracies of ``mcunas bench supernet ... --json``, and
for the second runs of any ``supernet_ground_truth.py`` outputs given after
it, it prints Kendall's tau-b against each member's

* depth: blocks of the body, repeats expanded (the stem conv included, a
  constant that does not change tau);
* MACs and parameters, from the cost model;

and the tau of every series against every other, with each series' range.
Nothing is trained; it reads the JSON files only (seconds).

Usage (from the repo root)::

    python tests/bench/supernet_rank_drivers.py bench.json gt5.json gt15.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # this checkout's mcunas, not an installed one


def member_traits(arch_text: str) -> dict[str, int]:
    """Depth (expanded blocks), MACs and parameters of one member, from the cost model."""
    from mcunas.arch import parse_arch
    from mcunas.cost import estimate

    arch = parse_arch(arch_text)
    est = estimate(arch, deployable=False)
    return {"depth": sum(b.repeats for b in arch.blocks), "macs": est["macs"], "params": est["params"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bench_json", type=Path)
    p.add_argument("ground_truth", type=Path, nargs="*", help="outputs of supernet_ground_truth.py on that bench")
    a = p.parse_args()

    from mcunas.bench.supernet import kendall_tau

    bench = json.loads(a.bench_json.read_text())
    rows = bench["rows"]
    traits = [member_traits(r["arch"]) for r in rows]
    series = {"supernet": [r["supernet_accuracy"] for r in rows],
              f"standalone_{bench['epochs']}ep_first": [r["float_accuracy"] for r in rows]}
    for path in a.ground_truth:
        gt = json.loads(path.read_text())
        start = "finetuned" if gt.get("from_supernet") else "standalone"
        series[f"{start}_{gt.get('epochs', bench['epochs'])}ep_seed{gt['seed']} ({path.name})"] = gt["second_float_accuracy"]
    out = {"members": len(rows), "depth": [t["depth"] for t in traits], "series": {}}
    for name, acc in series.items():
        out["series"][name] = {
            "range": [round(min(acc), 4), round(max(acc), 4)],
            **{f"tau_vs_{k}": round(kendall_tau(acc, [t[k] for t in traits]), 3) for k in ("depth", "macs", "params")},
            **{f"tau_vs_{other}": round(kendall_tau(acc, series[other]), 3) for other in series if other != name},
        }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
