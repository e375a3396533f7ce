"""A study's results as files: ``trials.csv``, ``pareto.csv``, PNGs, ``summary.md``.

Everything is derived from the Optuna storage, so the files can be rebuilt at
any time (``mcunas search`` rewrites them after every trained candidate) and
a crash never leaves them out of step with the study for long.  Files are
written to a temporary name and renamed, so a reader never sees half a CSV.
"""

from __future__ import annotations

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
                  "rung_accuracy"]


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


def _plot(trained: pd.DataFrame, rejected: pd.DataFrame, stopped: pd.DataFrame, x: str, label: str, path: Path,
          limit: float | None, majority: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 1e6 if x == "macs" else 1000
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    if len(rejected):
        ax.scatter(rejected[x] / scale, np.full(len(rejected), 0.5), marker="x", color="0.75", s=12,
                   label=f"rejected before training ({len(rejected)}, drawn at 0.5)")
    if len(stopped):
        ax.scatter(stopped[x] / scale, pd.to_numeric(stopped["rung_accuracy"]), facecolors="none", edgecolors="tab:orange", s=20,
                   label=f"stopped at a rung ({len(stopped)}; float val. acc. there)")
    if len(trained):
        ax.scatter(trained[x] / scale, trained["int8_accuracy"], color="tab:blue", s=22,
                   label=f"trained ({len(trained)}; int8 validation acc.)")
        front = trained[pareto_mask(trained, ["int8_accuracy"], [x])].sort_values(x)
        ax.step(front[x] / scale, front["int8_accuracy"], where="post", color="tab:red", lw=1.5)
        ax.scatter(front[x] / scale, front["int8_accuracy"], color="tab:red", s=34, label="Pareto front (validation)")
        test = pd.to_numeric(front["test_accuracy"])
        if test.notna().any():
            ax.scatter(front[x] / scale, test, marker="v", color="tab:green", s=30,
                       label="the front's int8 test accuracy")
    if majority is not None:
        ax.axhline(majority, color="tab:purple", ls=":", lw=1.5,
                   label=f"majority class on test ({majority:.3f})")
    if limit is not None:
        ax.axvline(limit / scale, color="0.4", ls="--", lw=1, label="budget")
    ax.set_xlabel(label)
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def write_results(study, campaign) -> dict:
    """(Re)write every result file of ``study`` under ``results/<study>/``."""
    out = campaign.out_dir
    out.mkdir(parents=True, exist_ok=True)
    df = trials_frame(study)
    _write_csv(df, out / "trials.csv")
    budget = campaign.budget
    trained = df[(df.status == "trained") & df.feasible & df.int8_accuracy.notna()]
    rejected = df[df.status == "rejected"]
    stopped = df[(df.status == "pruned") & df.rung_accuracy.notna()]
    majority = study.user_attrs.get("majority_test_accuracy")
    paths = {"trials_csv": str(out / "trials.csv")}
    sram_key, flash_key = budget.key("sram"), budget.key("flash")
    if campaign.needs_training:
        front = trained[pareto_mask(trained, ["int8_accuracy"], [sram_key])].sort_values(sram_key)
        _write_csv(front, out / "pareto.csv")
        paths["pareto_csv"] = str(out / "pareto.csv")
        for x, label, name, limit in (
                (sram_key, f"peak SRAM, KB ({sram_key})", "pareto_sram.png", budget.sram_bytes),
                (flash_key, f"flash, KB ({flash_key})", "pareto_flash.png", budget.flash_bytes),
                ("macs", "MACs (millions)", "pareto_macs.png", budget.macs)):
            _plot(trained, rejected, stopped, x, label, out / name, limit, majority)
            paths.setdefault("pngs", []).append(str(out / name))
    else:
        feasible = df[(df.status == "trained") & df.feasible]
        from mcunas.search.objectives import DIRECTIONS, objective_key

        cols = [(objective_key(o, budget), DIRECTIONS[o]) for o in campaign.objectives]
        front = feasible[pareto_mask(feasible, [c for c, d in cols if d == "maximize"],
                                     [c for c, d in cols if d == "minimize"])]
        _write_csv(front, out / "pareto.csv")
        paths["pareto_csv"] = str(out / "pareto.csv")
    _write_summary(df, front, campaign, out / "summary.md", majority)
    paths["summary_md"] = str(out / "summary.md")
    return paths


def _write_summary(df: pd.DataFrame, front: pd.DataFrame, campaign, path: Path, majority: float | None) -> None:
    counts = df.status.value_counts().to_dict()
    lines = [
        f"# Study `{campaign.study_name}`",
        "",
        f"- space: `{campaign.space.name}`; objectives: {', '.join(campaign.objectives)}; sampler: {campaign.sampler}",
        f"- budget: {campaign.budget.describe()}",
        f"- data: {campaign.data or 'generated demo data'}; test: {campaign.eval_data or 'eval split of the data'}; "
        "the search selects on a seeded, stratified validation share of the rest (int8_accuracy = val_accuracy); "
        "test_accuracy is reported only",
        "- baseline: always answering the test set's majority class scores "
        + (f"{majority:.4f}" if majority is not None else "(not recorded)"),
        f"- training: {campaign.epochs} epochs, batch {campaign.batch}, recipe {campaign.recipe}"
        + (f"; --halving {campaign.halving.eta} at epochs {', '.join(map(str, campaign.halving.rungs))}"
           if campaign.halving else ""),
        "- trials: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("trained", "rejected", "failed", "pruned", "running")),
        "",
        "## Pareto front",
        "",
    ]
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
