"""What could fit on a board, from a space alone: no study, no training.

``N`` candidates are drawn uniformly (no storage round trips: the figure of
merit here is candidates per second) and costed with the pure-Python model by
:func:`mcunas.budget.share_that_fits`, each distinct architecture once, on
all cores.  The answer is

* the share that fits the budget, overall and per budget dimension;
* for every searched dimension value (``resolution`` 96, ``s3_k`` 5 ...), the
  share of candidates *with that value* that fit — which values the budget
  rules out, and which it barely touches;
* the cost-Pareto of the feasible candidates: for each SRAM/flash level the
  largest MACs reachable (MACs stand in for capacity: with no training data
  there is no accuracy to show), as a table and a PNG.

Uniform sampling over-represents nothing in particular, so shares are shares
of the space's *choices*, not of its architectures: a dimension with a
choice that changes nothing (e.g. ``skip`` at stride 2) counts both ways.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mcunas.budget import Budget, share_that_fits
from mcunas.spaces import Space

PLOT_MAX_POINTS = 4000  # infeasible points drawn (a random subset beyond this keeps the PNG light)


def share_by_value(df: pd.DataFrame) -> dict[str, dict[str, dict]]:
    """Dimension -> value -> {n, fit, share}: how each searched choice fares."""
    params = pd.DataFrame(list(df["choices"]), index=df.index)
    out = {}
    for dim in params.columns:
        groups = df["fits"].groupby(params[dim].astype(str), sort=False)
        counts, fit = groups.size(), groups.sum()
        order = sorted(counts.index, key=_value_order)
        out[dim] = {v: {"n": int(counts[v]), "fit": int(fit[v]), "share": float(fit[v] / counts[v])} for v in order}
    return out


def _value_order(v: str):
    try:
        return (0, float(v), "")
    except ValueError:
        return (1, 0.0, v)


def cost_pareto(feasible: pd.DataFrame) -> pd.DataFrame:
    """Feasible candidates no other beats on MACs (more), SRAM and flash (less); sorted by SRAM.

    Equal cost triples keep one representative.  A sweep in falling MACs
    compares each point with the front found so far only, so it stays fast
    on tens of thousands of candidates (the front is small).
    """
    cols = ["macs", "sram_bytes", "flash_bytes"]
    unique = feasible.drop_duplicates(cols).sort_values(["macs", "sram_bytes", "flash_bytes"],
                                                        ascending=[False, True, True])
    front_idx, front = [], np.empty((0, 3))
    for idx, macs, sram, flash in unique[cols].itertuples():
        if len(front) and np.any((front[:, 1] <= sram) & (front[:, 2] <= flash)):
            continue  # an earlier point has at least as many MACs and no more memory (and differs)
        front_idx.append(idx)
        front = np.vstack([front, [macs, sram, flash]])
    return unique.loc[front_idx].sort_values(["sram_bytes", "flash_bytes"])


def staircase(feasible: pd.DataFrame, x: str) -> pd.DataFrame:
    """Largest MACs at or below each level of ``x`` (the 2-D front drawn in the plot)."""
    d = feasible.sort_values([x, "macs"], ascending=[True, False])
    best = d["macs"].cummax()
    return d[d["macs"].to_numpy() >= best.to_numpy()].drop_duplicates("macs")


def plot(df: pd.DataFrame, budget: Budget, space_name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mcunas.search.results import label_cost_axis

    feasible, infeasible = df[df.fits], df[~df.fits]
    if len(infeasible) > PLOT_MAX_POINTS:
        infeasible = infeasible.sample(PLOT_MAX_POINTS, random_state=0)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=110, sharey=True)
    panels = [("sram_bytes", budget.sram_bytes, f"peak SRAM ({budget.key('sram')}; 1 KB = 1000 B)"),
              ("flash_bytes", budget.flash_bytes, f"flash ({budget.key('flash')}; 1 KB = 1000 B)")]
    for ax, (x, limit, label) in zip(axes, panels):
        ax.scatter(infeasible[x] / 1000, infeasible["macs"] / 1e6, s=5, color="0.8", label="over budget")
        ax.scatter(feasible[x] / 1000, feasible["macs"] / 1e6, s=7, color="tab:blue", label=f"fits ({len(feasible):,})")
        if len(feasible):
            st = staircase(feasible, x)
            ax.step(st[x] / 1000, st["macs"] / 1e6, where="post", color="tab:red", lw=1.5, label="largest MACs")
        if limit is not None:
            ax.axvline(limit / 1000, color="k", ls="--", lw=0.8)
        if budget.macs is not None:
            ax.axhline(budget.macs / 1e6, color="k", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        label_cost_axis(ax.xaxis, " KB", log=True)
        label_cost_axis(ax.yaxis, "M", log=True)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("MACs per inference (M = million)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)  # under the plots, off the points
    fig.suptitle(f"{space_name}: {df.fits.mean():.1%} of {len(df):,} sampled candidates fit "
                 f"({budget.describe()})", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    from mcunas.atomic import atomic_path

    with atomic_path(path) as tmp:  # a reader never sees half a PNG
        fig.savefig(tmp)
    plt.close(fig)


def explore(space: Space, budget: Budget, n: int, seed: int, plot_path: Path | None) -> dict:
    """The whole frontier answer for ``mcunas frontier`` (plain types, JSON-ready)."""
    df, elapsed_s = share_that_fits(space, budget, n, seed)
    feasible = df[df.fits]
    front = cost_pareto(feasible)
    if plot_path is not None:
        plot(df, budget, space.name, plot_path)
    return {
        "space": space.name,
        "budget": {**budget.as_dict(), "description": budget.describe()},
        "n": n, "seed": seed,
        "fits": int(df.fits.sum()), "share": float(df.fits.mean()),
        "unique_archs": int(df.arch.nunique()), "unique_fitting_archs": int(feasible.arch.nunique()),
        "share_by_budget": {d: float(df[f"fits_{d}"].mean()) for d in budget.limits()},
        "share_by_value": share_by_value(df),
        "pareto": [{"arch": r.arch, "macs": int(r.macs), "sram_bytes": int(r.sram_bytes),
                    "flash_bytes": int(r.flash_bytes)} for r in front.itertuples()],
        "elapsed_s": round(elapsed_s, 3),
        "candidates_per_s": round(n / elapsed_s, 1),
        "plot": str(plot_path) if plot_path is not None else None,
    }
