"""Export a trained trial of a study: the very files that were evaluated, ready for TFLM.

**Same bytes as the recorded accuracy.** A trained trial already has an int8
``.tflite`` — the file whose int8 accuracy the study records.  Converting its
Keras model again would calibrate on other images and give a different int8
model (different scales, possibly a different accuracy), so the export
copies the trial's ``model_int8.tflite`` and ``model.keras`` as they are,
measures the arena of that file in TFLM (child process, :mod:`mcunas.tflm`)
and writes the C array with :func:`mcunas.export.c_array.write_c_array`.
Only when the ``.tflite`` is gone but the Keras model is there does it fall
back to :func:`mcunas.export.bundle.export_arch` (a fresh conversion,
flagged in ``report.md``).

Which trial, and where its files now are, is :mod:`mcunas.query.pick`'s
business; this module only writes the folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mcunas.budget import board_budget
from mcunas.input_convention import DEVICE_INPUT


def export_trial(row: pd.Series, keras_src: Path | None, tflite_src: Path | None, out_dir: str | Path,
                 boards: dict, board=None, data: str | None = None, study_name: str = "",
                 target: str = "x86_64", memory_plan: str = "stock",
                 say: Callable[[str], None] = lambda text: None) -> dict:
    """Write the deployment folder of trial ``row`` from its model files; returns its figures.

    ``memory_plan="offline"`` embeds the offline memory plan in the trial's own int8 file (the
    same int8 model: only the metadata changes) and reports the arena with and without it.

    The folder is built beside ``out_dir`` and swapped in whole
    (:func:`mcunas.export.bundle.export_folder`): its ``.tflite``, C array and
    ``kTensorArenaSize`` always come from one trial.  ``say(text)`` is told each step as it starts.
    """
    from mcunas.export.bundle import export_folder

    with export_folder(out_dir) as tmp:
        figures = _write_trial_files(row, keras_src, tflite_src, tmp, boards, board, data, study_name, target,
                                     memory_plan, say)
    return {**figures, "out": str(out_dir)}


def _write_trial_files(row: pd.Series, keras_src: Path | None, tflite_src: Path | None, out: Path,
                       boards: dict, board, data: str | None, study_name: str, target: str,
                       memory_plan: str, say: Callable[[str], None]) -> dict:
    """The files of :func:`export_trial`, written into the existing (temporary) folder ``out``."""
    from mcunas.export.bundle import measure_with_plan
    from mcunas.export.c_array import write_c_array
    from mcunas.export.memory_plan import plan_note

    if tflite_src is not None:
        say(f"copying trial {row.number}'s model files")
        if keras_src is not None:
            shutil.copyfile(keras_src, out / "model.keras")
        shutil.copyfile(tflite_src, out / "model_int8.tflite")
        origin = f"copied from trial {row.number}: {tflite_src} (the file its int8 accuracy was measured on)"
    else:
        from mcunas.arch import parse_arch
        from mcunas.export.bundle import write_arch_files

        write_arch_files(parse_arch(row.arch), out, weights=keras_src, data=data, target=target, say=say)
        origin = (f"re-converted from {keras_src} ({'calibrated on ' + data if data else 'noise calibration'}): "
                  "the trial's own .tflite is gone, so its recorded int8 accuracy was measured on another file")
    measured, plan_figures = measure_with_plan(out / "model_int8.tflite", memory_plan, say)
    tflite = (out / "model_int8.tflite").read_bytes()
    (out / "arch.txt").write_text(f"{row.arch}\n")
    note = "\n" + plan_note(measured, plan_figures) if plan_figures else ""
    write_c_array(tflite, out, measured["tflm_arena_bytes"], target=target,
                  comment=f"arch: {row.arch}\nstudy {study_name}, trial {row.number}, int8 accuracy "
                  f"{row.int8_accuracy:.4f}\n{DEVICE_INPUT}{note}")
    figures = {
        "study": study_name, "trial": int(row.number), "arch": row.arch,
        "int8_accuracy": float(row.int8_accuracy),
        "float_accuracy": None if pd.isna(row.float_accuracy) else float(row.float_accuracy),
        "test_accuracy": None if pd.isna(row.get("test_accuracy")) else float(row.test_accuracy),
        "predicted": _predicted(row, memory_plan),
        "tflm_arena_bytes": measured["tflm_arena_bytes"],
        "tflm_head_bytes": measured["tflm_head_bytes"], "tflm_tail_bytes": measured["tflm_tail_bytes"],
        "k_tensor_arena_size": -(-measured["tflm_arena_bytes"] // 16) * 16,
        "tflite_bytes": len(tflite),
        **plan_figures,
        "tflm_arena_bytes_at_training": None if pd.isna(row.tflm_arena_bytes_measured)
        else int(row.tflm_arena_bytes_measured),
        "origin": origin,
        "ops": list(dict.fromkeys(measured["ops"])),
        "boards": board_fit(boards, measured["tflm_arena_bytes"], len(tflite)),
        "board": board.name if board else None,
        "files": sorted(p.name for p in out.iterdir()),
    }
    (out / "report.md").write_text(report_md(figures))
    figures["files"] = sorted(p.name for p in out.iterdir())
    return figures


def _predicted(row: pd.Series, memory_plan: str = "stock") -> dict:
    """The cost model's figures for the trial (stored ones first, re-costed where missing).

    With the offline plan, ``sram_tflm_bytes`` and ``tflite_bytes`` are those of the file with
    the plan embedded, the file the export writes and measures.
    """
    from mcunas.arch import parse_arch
    from mcunas.budget import Budget
    from mcunas.cost import estimate

    plan = Budget(memory_plan=memory_plan)
    keys = {"macs": "macs", "params": "params", "weight_bytes": "weight_bytes", "sram_paper_bytes": "sram_paper_bytes",
            "sram_tflm_bytes": plan.key("sram"), "tflite_bytes": plan.key("flash")}
    stored = {k: row.get(key) for k, key in keys.items()}
    if any(pd.isna(v) for v in stored.values()):
        fresh = estimate(parse_arch(row.arch))
        stored = {k: (fresh.get(keys[k]) if pd.isna(v) else v) for k, v in stored.items()}
    return {k: (None if v is None or pd.isna(v) else int(v)) for k, v in stored.items()}


def board_fit(boards: dict, arena_bytes: int, file_bytes: int) -> list[dict]:
    """Per board: does the measured arena fit its SRAM and the file its flash (code needs room too)."""
    judged = {"sram_bytes": arena_bytes, "flash_bytes": file_bytes, "macs": 0}
    return [{"board": b.name, "sram_bytes": b.sram_bytes, "flash_bytes": b.flash_bytes,
             "sram_left_bytes": b.sram_bytes - arena_bytes,
             "flash_left_bytes": None if b.flash_bytes is None else b.flash_bytes - file_bytes,
             "fits": bool(board_budget(b).fits(judged))} for b in boards.values()]


def _n(v) -> str:
    return "n/a" if v is None else f"{v:,}"


def _delta(predicted, measured) -> str:
    if predicted is None:
        return "n/a"
    return f"{predicted - measured:+,} ({(predicted - measured) / measured:+.2%})"


def resolver_method(op: str) -> str:
    """TFLM's ``MicroMutableOpResolver`` method for a builtin op: ``DEPTHWISE_CONV_2D`` -> ``AddDepthwiseConv2D``."""
    return "Add" + "".join(part if part[0].isdigit() else part.capitalize() for part in op.split("_"))


def report_md(f: dict) -> str:
    p = f["predicted"]
    lines = [
        f"# Trial {f['trial']} of study `{f['study']}`", "",
        f"`{f['arch']}`", "",
        f"- int8 accuracy (validation set, what the search selected on): **{f['int8_accuracy']:.4f}**"
        + (f"; float {f['float_accuracy']:.4f}" if f["float_accuracy"] is not None else "")
        + (f"; int8 test accuracy {f['test_accuracy']:.4f}" if f.get("test_accuracy") is not None else ""),
        f"- MACs per inference: {f['predicted']['macs']:,}; parameters (BatchNorm folded): {_n(p['params'])}",
        f"- model: {f['origin']}",
        "",
        "## Memory: predicted vs measured", "",
        "| figure | cost model (predicted) | measured | predicted − measured |",
        "|---|---:|---:|---:|",
        f"| TFLM arena, B | {_n(p['sram_tflm_bytes'])} | {f['tflm_arena_bytes']:,} "
        f"(head {_n(f['tflm_head_bytes'])} + tail {_n(f['tflm_tail_bytes'])}) | "
        f"{_delta(p['sram_tflm_bytes'], f['tflm_arena_bytes'])} |",
        f"| `.tflite` file (flash), B | {_n(p['tflite_bytes'])} | {f['tflite_bytes']:,} | "
        f"{_delta(p['tflite_bytes'], f['tflite_bytes'])} |",
        f"| paper's peak rule, B | {_n(p['sram_paper_bytes'])} | | |",
        f"| int8 weights (paper's flash), B | {_n(p['weight_bytes'])} | | |",
        "",
        *([(f"The `.tflite` carries an offline memory plan (`OfflineMemoryAllocation` metadata, same int8 model): "
            f"TFLM needs {f['tflm_arena_bytes']:,} B with it, {f['tflm_arena_stock_bytes']:,} B with its own planner "
            f"(both measured; {f['arena_saved_bytes']:,} B saved). The predictions above are for the file with the "
            "plan."), ""] if f.get("memory_plan") == "offline" else []),
        f"`kTensorArenaSize` in `model_data.h` = {f['k_tensor_arena_size']:,} B: the smallest arena this exact file "
        "allocates in (TFLM `tflite_micro` pip package, x86-64, binary search), rounded up to 16. On a 32-bit MCU "
        "pointers are 4 bytes, so the persistent tail there is somewhat smaller; this size is then a safe upper bound.",
        "",
        f"Register these {len(f['ops'])} ops in a `tflite::MicroMutableOpResolver<{len(f['ops'])}>`: "
        + ", ".join(f"`{resolver_method(op)}()`" for op in f["ops"]) + ".",
        "",
        "## Board fit (measured arena vs SRAM, file vs flash)", "",
        "Flash must also hold the application and TFLM itself (tens of KB), so leave room beyond the file.", "",
        "| board | SRAM | SRAM left | flash | flash left | fits |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for b in f["boards"]:
        mark = " (chosen)" if b["board"] == f["board"] else ""
        lines.append(f"| {b['board']}{mark} | {b['sram_bytes']:,} | {b['sram_left_bytes']:,} | "
                     f"{'external' if b['flash_bytes'] is None else format(b['flash_bytes'], ',')} | "
                     f"{'n/a' if b['flash_left_bytes'] is None else format(b['flash_left_bytes'], ',')} | "
                     f"{'yes' if b['fits'] else 'no'} |")
    lines += ["", "Files: `model.keras`, `model_int8.tflite`, `model_data.h`/`model_data.cc` "
              "(`alignas(16)` array, length, `kTensorArenaSize`), `arch.txt`, this report."]
    return "\n".join(lines) + "\n"
