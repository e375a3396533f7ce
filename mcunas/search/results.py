"""A study's results as files: ``trials.csv``, ``pareto.csv``, PNGs, ``summary.md``.

Everything is derived from the Optuna storage, so the files can be rebuilt at
any time (``mcunas search`` rewrites them after every trained candidate) and
a crash never leaves them out of step with the study for long.  Files are
written to a temporary name and renamed, so a reader never sees half a CSV.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from mcunas.atomic import atomic_path, write_atomic

COST_COLUMNS = ["macs", "params", "weight_bytes", "tflite_bytes", "tflite_offline_bytes", "sram_paper_bytes",
                "sram_tflm_bytes", "sram_tflm_offline_bytes", "latency_ms", "latency_high_ms"]
# int8_accuracy is the int8 validation accuracy the search selected on (= val_accuracy); test_accuracy
# the same file's on the test set, reported only; rung/rung_accuracy: where --halving stopped a candidate
RESULT_COLUMNS = ["int8_accuracy", "val_accuracy", "test_accuracy", "float_accuracy", "int8_accuracy_before_qat",
                  "train_s",
                  "tflm_arena_bytes_measured", "tflite_bytes_measured", "keras_path", "tflite_path", "rung",
                  "rung_accuracy", "supernet_accuracy", "score_s", "finalist_of"]


def trials_frame(study) -> pd.DataFrame:
    """One row per trial: status, architecture, every cost, accuracies and artefacts."""
    rows = []
    trials = study.get_trials(deepcopy=False)
    # a trial failed because its worker died carries no reason of its own; its retry says why
    died = {t.user_attrs["retried_from"]: t.user_attrs.get("retry_reason") for t in trials
            if "retried_from" in t.user_attrs}
    for t in trials:
        attrs = t.user_attrs
        status = {"COMPLETE": "trained", "FAIL": "failed", "PRUNED": "pruned", "RUNNING": "running",
                  "WAITING": "waiting"}[t.state.name]
        if status == "trained" and "rejected" in attrs:
            status = "rejected"
        elif status == "trained" and "supernet_accuracy" in attrs and "int8_accuracy" not in attrs:
            status = "scored"  # weights from a supernet, never trained (its finalists are)
        row = {"study": study.study_name, "number": t.number, "status": status, "arch": attrs.get("arch")}
        row.update({k: attrs.get("costs", {}).get(k) for k in COST_COLUMNS})
        row.update({k: attrs.get(k) for k in RESULT_COLUMNS})
        row["feasible"] = "costs" in attrs and "rejected" not in attrs  # as judged when it was costed
        row["reason"] = attrs.get("rejected") or attrs.get("fail_reason") or died.get(t.number) or (
            f"stopped by --halving at rung {attrs['rung']} (epoch), validation accuracy {attrs['rung_accuracy']:.4f}"
            if status == "pruned" and "rung" in attrs else None)
        rows.append(row)
    return pd.DataFrame(rows, columns=["study", "number", "status", "arch", *COST_COLUMNS, *RESULT_COLUMNS,
                                       "feasible", "reason"])


def pareto_mask(df: pd.DataFrame, maximize: list[str], minimize: list[str]) -> np.ndarray:
    """True for rows no other row beats on every column (ties do not dominate)."""
    values = np.column_stack([df[c].to_numpy(float) for c in maximize] +
                             [-df[c].to_numpy(float) for c in minimize]) if len(df) else np.empty((0, 0))
    mask = np.ones(len(df), dtype=bool)
    for i in range(len(df)):
        better_eq = np.all(values >= values[i], axis=1)
        strictly = np.any(values > values[i], axis=1)
        mask[i] = not np.any(better_eq & strictly)
    return mask


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def x_view(kept: list[float], rejected: list[float], limit: float | None) -> tuple[float, float, bool]:
    """``(left, right, log)`` of a cost axis: the budget and every trained or stopped candidate in view.

    The axis ends 15 % past the largest of them; rejected candidates further
    out do not stretch it (they are drawn clipped).  Log scale when what is
    in view spans more than 30x.
    """
    right = max([*kept, *([limit] if limit else [])] or rejected or [1.0]) * 1.15
    inside = [v for v in (*kept, *rejected) if 0 < v <= right] or [right / 2]
    log = right / min(inside) > 30
    return (min(inside) / 1.3 if log else 0.0), right, log


def label_cost_axis(axis, unit: str, log: bool) -> None:
    """Ticks that carry their unit (``250 KB``, ``20M``); on a log axis also at 2 and 5 x each power of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    def text(v, _=None):
        return f"{v:,.0f}{unit}" if v >= 10 or v == 0 else f"{v:.2g}{unit}"

    def minor(v, _=None):  # 2 and 5 labelled only where they fit: 2.5 inches or more per power of ten
        low, high = axis.get_view_interval()
        box, fig = axis.axes.get_position(), axis.axes.figure
        inches = box.height * fig.get_figheight() if axis.axis_name == "y" else box.width * fig.get_figwidth()
        return text(v) if low > 0 and inches / math.log10(high / low) >= 2.5 else ""

    axis.set_major_formatter(FuncFormatter(text))
    if log:
        axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        axis.set_minor_formatter(FuncFormatter(minor))


def _plot(trained: pd.DataFrame, rejected: pd.DataFrame, stopped: pd.DataFrame, scored: pd.DataFrame, x: str,
          what: str, path: Path, limit: float | None, about: dict) -> None:
    """Accuracy against one cost, drawn so it can go in a paper (the VWW paper's Fig. 3 is the model).

    * the budget region stays in view: the x axis ends a little past the
      largest of the budget and the trained or stopped candidates; rejected
      candidates further out are clipped to the edge (a ``>`` and a count),
      so one 4 MB misfit cannot squeeze the interesting part into a strip;
    * rejected candidates have no accuracy, so none is invented: they are a
      rug in a strip under the plot, at their cost only;
    * candidates stopped by ``--halving`` are hollow, at their rung's
      validation accuracy; trained ones are filled, at their int8 validation
      accuracy; the Pareto front's test accuracy is shown beside it;
    * the majority-class line is the accuracy of always answering the
      commoner class: anything near it learnt nothing;
    * a log axis where the costs shown span more than 30x; ticks in KB (or M for MACs);
    * the legend sits under the plot, never on a point.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    scale, unit = (1e6, "M") if x == "macs" else (1000, " KB")
    xs = {name: pd.to_numeric(df[x], errors="coerce").dropna() / scale
          for name, df in (("trained", trained), ("stopped", stopped), ("scored", scored), ("rejected", rejected))}
    left, right, log = x_view([*xs["trained"], *xs["stopped"], *xs["scored"]], list(xs["rejected"]),
                              limit and limit / scale)

    fig = plt.figure(figsize=(7.2, 5.6), dpi=120)
    grid = fig.add_gridspec(2, 1, height_ratios=[6, 0.7], hspace=0.16, left=0.11, right=0.97, top=0.88, bottom=0.22)
    ax = fig.add_subplot(grid[0])
    rug = fig.add_subplot(grid[1], sharex=ax)
    if limit:
        for a in (ax, rug):
            a.axvspan(left, limit / scale, color="tab:green", alpha=0.06, lw=0)
            a.axvline(limit / scale, color="0.35", ls="--", lw=1)
        ax.plot([], [], color="0.35", ls="--", lw=1, label=f"budget ({limit / scale:,.4g}{unit}; shaded: fits)")
    if len(stopped):
        ax.scatter(xs["stopped"], pd.to_numeric(stopped["rung_accuracy"]).loc[xs["stopped"].index],
                   facecolors="none", edgecolors="tab:orange", s=30, lw=1.2,
                   label=f"stopped by --halving ({len(stopped)}): validation acc. at its rung")
    if len(scored):
        ax.scatter(xs["scored"], pd.to_numeric(scored["supernet_accuracy"]).loc[xs["scored"].index],
                   facecolors="none", edgecolors="slategray", s=14, lw=0.8, alpha=0.7,
                   label=f"supernet scores ({len(scored)}): float validation acc.")
    if len(trained):
        ax.scatter(xs["trained"], trained["int8_accuracy"].loc[xs["trained"].index], color="tab:blue", s=22,
                   label=f"trained ({len(trained)}): int8 validation accuracy")
        front = trained[pareto_mask(trained, ["int8_accuracy"], [x])].sort_values(x)
        ax.step(front[x] / scale, front["int8_accuracy"], where="post", color="tab:red", lw=1.5)
        ax.scatter(front[x] / scale, front["int8_accuracy"], color="tab:red", s=36, zorder=3,
                   label="Pareto front (validation)")
        test = pd.to_numeric(front["test_accuracy"])
        if test.notna().any():
            ax.scatter(front[x] / scale, test, marker="v", color="tab:green", s=30, zorder=3,
                       label="the front's int8 test accuracy")
    if about.get("majority") is not None:
        ax.axhline(about["majority"], color="tab:purple", ls=":", lw=1.5,
                   label=f"always the majority class: {about['majority']:.3f} on test")
    shown = [*trained["int8_accuracy"].dropna(), *pd.to_numeric(stopped["rung_accuracy"]).dropna(),
             *pd.to_numeric(scored["supernet_accuracy"]).dropna(),
             *pd.to_numeric(trained["test_accuracy"]).dropna(), *([about["majority"]] if about.get("majority") else [])]
    if shown:
        ax.set_ylim(max(0.0, min(shown) - 0.04), min(1.0, max(shown) + 0.04) + 0.005)
    near, far = xs["rejected"][xs["rejected"] <= right], xs["rejected"][xs["rejected"] > right]
    rug.scatter(near, np.full(len(near), 0.5), marker="|", s=120, color="0.45", alpha=0.6,
                label=f"rejected before training ({len(rejected)}): cost only, no accuracy")
    if len(far):  # clipped to the right edge: an arrow there, and how many and how far
        rug.scatter([1.0], [0.5], marker=">", s=60, color="0.3", clip_on=False, transform=rug.transAxes, zorder=3)
        rug.text(1.0, 1.04, f"{len(far)} beyond this axis, up to {far.max():,.0f}{unit} ▸", transform=rug.transAxes,
                 ha="right", va="bottom", fontsize=7, color="0.2")
    if log:
        ax.set_xscale("log")
    ax.set_xlim(left, right)
    label_cost_axis(rug.xaxis, unit, log)  # the axes share their x ticker: this labels the rug only
    ax.tick_params(axis="x", which="both", labelbottom=False)
    rug.set_yticks([])
    rug.set_ylim(0, 1)
    rug.set_ylabel("rejected", rotation=0, ha="right", va="center", fontsize=8)
    rug.set_xlabel(what)
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    rug.grid(alpha=0.3, axis="x")
    fig.suptitle(f"Study {about['study']} ({about['space']}): accuracy vs {what.split(' (')[0]}", fontsize=11)
    ax.set_title(about["subtitle"], fontsize=8, color="0.25")
    handles = [h for a in (ax, rug) for h in a.get_legend_handles_labels()[0]]
    labels = [lb for a in (ax, rug) for lb in a.get_legend_handles_labels()[1]]
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7.5, frameon=False)
    grid.update(bottom=0.11 + 0.034 * -(-len(labels) // 2))  # room for the legend's rows under the axis label
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def _about(study, campaign, df: pd.DataFrame) -> dict:
    """What a reader needs to know about a study's figures: its data, test size, baseline, training."""
    from mcunas.data.synth import generated_at

    attrs = {**campaign.data_figures, **study.user_attrs}
    data = campaign.data
    made = generated_at(data) if data else None
    label = "no data (cost only)" if not data else (
        f"generated demo set, drawn {made} (not photos)" if made else Path(data).name)
    test_images = attrs.get("test_images")
    epochs = f"{campaign.epochs} epoch{'s' if campaign.epochs != 1 else ''}"
    subtitle = f"data: {label}; test: {f'{test_images:,} images' if test_images else 'size not recorded'}; {epochs}"
    return {"study": campaign.study_name, "space": campaign.space.name, "data": label, "generated": made,
            "test_images": test_images, "majority": attrs.get("majority_test_accuracy"), "subtitle": subtitle}


STATUSES = ("trained", "scored", "rejected", "failed", "pruned", "running")


def _named(counts: dict) -> list[str]:
    """The statuses a tally names: all, 0 where none, except ``scored`` outside supernet studies and runs."""
    return [s for s in STATUSES if s != "scored" or s in counts]


def status_counts(df: pd.DataFrame) -> dict[str, int]:
    """Trials per status (:func:`_named`)."""
    counts = df.status.value_counts().to_dict()
    return {s: int(counts.get(s, 0)) for s in _named(counts)}


def run_counts_text(counts: dict) -> str:
    """``1 trained, 20 scored, 15 rejected, 0 failed, 0 pruned``: a run's tallies (:func:`_named`)."""
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in _named(counts) if s != "running")


def winner(trained: pd.DataFrame, sram_key: str, about: dict) -> dict | None:
    """The trial a search exports: best int8 validation accuracy, ties to the smaller SRAM, then the earlier.

    The same ranking as ``mcunas query`` and ``export --best``; with the test
    set's size, so a reader sees how many images a difference in accuracy is.
    """
    if not len(trained):
        return None
    r = trained.sort_values(["int8_accuracy", sram_key, "number"], ascending=[False, True, True]).iloc[0]
    out = {"number": int(r.number), "int8_val_accuracy": float(r.int8_accuracy), "arch": r.arch,
           "sram_bytes": int(r[sram_key]), "test_accuracy": None if pd.isna(r.test_accuracy) else float(r.test_accuracy)}
    n = about.get("test_images")
    if n and out["test_accuracy"] is not None:
        out.update(test_correct=int(round(out["test_accuracy"] * n)), test_images=int(n),
                   points_per_image=round(100 / n, 4))
    return out


def describe_winner(w: dict) -> str:
    """``trial 7: int8 test 0.8125 = 130/160 images (one image = 0.62 points), validation 0.8300``."""
    test = "" if w["test_accuracy"] is None else f"int8 test {w['test_accuracy']:.4f}" + (
        f" = {w['test_correct']:,}/{w['test_images']:,} images (one image = {w['points_per_image']:.2g} points)"
        if "test_images" in w else "") + ", "
    return f"trial {w['number']}: {test}validation {w['int8_val_accuracy']:.4f}, {w['sram_bytes']:,} B SRAM; {w['arch']}"


def write_results(study, campaign, run_counts: dict | None = None, plots: bool = True) -> dict:
    """(Re)write every result file of ``study`` under ``results/<study>/``; ``run_counts``: this run's tallies.

    ``plots=False`` leaves the three PNGs as they are: drawing them takes
    ~0.9 s, more than a supernet score, so a run redraws them at most every
    :data:`mcunas.search.campaign.PLOTS_EVERY_S` and at its end.
    """
    out = campaign.out_dir
    out.mkdir(parents=True, exist_ok=True)
    df = trials_frame(study)
    _write_csv(df, out / "trials.csv")
    budget = campaign.budget
    trained = df[(df.status == "trained") & df.feasible & df.int8_accuracy.notna()]
    rejected = df[df.status == "rejected"]
    stopped = df[(df.status == "pruned") & df.rung_accuracy.notna()]
    scored = df[(df.status == "scored") & df.feasible]
    about = _about(study, campaign, df)
    paths = {"trials_csv": str(out / "trials.csv")}
    sram_key, flash_key = budget.key("sram"), budget.key("flash")
    if campaign.needs_training:
        front = trained[pareto_mask(trained, ["int8_accuracy"], [sram_key])].sort_values(sram_key)
        _write_csv(front, out / "pareto.csv")
        paths["pareto_csv"] = str(out / "pareto.csv")
        for x, label, name, limit in (
                (sram_key, f"peak SRAM ({sram_key}; 1 KB = 1000 B)", "pareto_sram.png", budget.sram_bytes),
                (flash_key, f"flash ({flash_key}; 1 KB = 1000 B)", "pareto_flash.png", budget.flash_bytes),
                ("macs", "MACs (M = million)", "pareto_macs.png", budget.macs)):
            if plots:
                _plot(trained, rejected, stopped, scored, x, label, out / name, limit, about)
                paths.setdefault("pngs", []).append(str(out / name))
    else:
        feasible = df[(df.status == "trained") & df.feasible]
        from mcunas.search.objectives import DIRECTIONS, objective_key

        cols = [(objective_key(o, budget), DIRECTIONS[o]) for o in campaign.objectives]
        front = feasible[pareto_mask(feasible, [c for c, d in cols if d == "maximize"],
                                     [c for c, d in cols if d == "minimize"])]
        _write_csv(front, out / "pareto.csv")
        paths["pareto_csv"] = str(out / "pareto.csv")
    best = winner(trained, sram_key, about) if campaign.needs_training else None
    _write_summary(df, front, campaign, out / "summary.md", about, best, run_counts)
    paths["summary_md"] = str(out / "summary.md")
    return {**paths, "study_totals": status_counts(df), **({"winner_trial": best} if best else {})}


def _write_summary(df: pd.DataFrame, front: pd.DataFrame, campaign, path: Path, about: dict, best: dict | None,
                   run_counts: dict | None) -> None:
    majority, n_test = about.get("majority"), about.get("test_images")
    totals = status_counts(df)
    lines = [
        f"# Study `{campaign.study_name}`",
        "",
        f"- space: `{campaign.space.name}`; objectives: {', '.join(campaign.objectives)}; sampler: {campaign.sampler}",
        f"- budget: {campaign.budget.describe()}",
    ]
    if campaign.needs_training:
        lines += [
            "- winner: " + (describe_winner(best) + " (the trial `winner/` holds unless --no-export-winner)"
                            if best else "none yet (no trained candidate)"),
            f"- data: {about['data']}; test: {campaign.eval_data or 'the eval split of the data'}"
            + (f", {n_test:,} images: one image is {100 / n_test:.2g} points of accuracy" if n_test else "")
            + "; the search selects on a seeded, stratified validation share of the rest "
            "(int8_accuracy = val_accuracy); test_accuracy is reported only",
            "- baseline: always answering the test set's majority class scores "
            + (f"{majority:.4f}" if majority is not None else "(not recorded)"),
            f"- training: {campaign.epochs} epoch{'s' if campaign.epochs != 1 else ''}, batch {campaign.batch}, "
            f"recipe {campaign.recipe}"
            + (f"; --halving {campaign.halving.eta} at epochs {', '.join(map(str, campaign.halving.rungs))}"
               if campaign.halving else ""),
        ]
    lines.append(f"- trials in the study, all runs ({len(df):,}): " + ", ".join(f"{n} {s}" for s, n in totals.items()))
    if run_counts is not None:
        lines.append("- this run: " + run_counts_text(run_counts))
    lines += ["", "## Pareto front", ""]
    show = [c for c in ["number", "int8_accuracy", "test_accuracy", "float_accuracy", campaign.budget.key("sram"),
                        campaign.budget.key("flash"), "macs", "arch"] if c in front.columns]
    if len(front):
        lines.append("| " + " | ".join(show) + " |")
        lines.append("|" + "---|" * len(show))
        for _, r in front[show].iterrows():
            lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) and v < 1.5 else
                                           (f"{int(v):,}" if isinstance(v, (int, float)) and v == v else
                                            f"`{v}`" if isinstance(v, str) else str(v)) for v in r) + " |")
    else:
        lines.append("No trained candidate yet.")
    if campaign.needs_training:
        lines += ["", "![accuracy vs SRAM](pareto_sram.png) ![accuracy vs flash](pareto_flash.png) "
                  "![accuracy vs MACs](pareto_macs.png)"]
    write_atomic(path, "\n".join(lines) + "\n")
