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

Artefact paths are stored as the campaign wrote them (relative to the
directory it ran in); they are looked up from the current directory and
then from the directories above the study's journal file, so a study can
be exported from wherever its ``results/`` folder now lives.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from mcunas.errors import UserError
from mcunas.query.studies import StudyTrials, _local_file
from mcunas.query.whatif import Limits, study_answer

WHY_NO_MODEL = {
    "rejected": "was rejected before training ({reason}): it has no model",
    "failed": "failed ({reason}): it has no model",
    "pruned": "was pruned during training: it has no model",
    "running": "is still running: it has no model yet",
    "waiting": "is waiting to run: it has no model yet",
}


def pick_trial(study: StudyTrials, number: int) -> pd.Series:
    """Trial ``number`` of ``study`` if it has a trained model; otherwise why not, in one line."""
    df = study.frame
    match = df[df.number == number]
    if match.empty:
        span = f"0..{int(df.number.max())}" if len(df) else "none"
        raise UserError(f"study '{study.name}' has no trial {number} (trials: {span})")
    row = match.iloc[0]
    if row.status in WHY_NO_MODEL:
        reason = row.reason if isinstance(row.reason, str) and row.reason else "no reason recorded"
        raise UserError(f"trial {number} of study '{study.name}' "
                        + WHY_NO_MODEL[row.status].format(reason=reason))
    if not study.needs_training or pd.isna(row.keras_path):
        raise UserError(f"trial {number} of study '{study.name}' was never trained (objectives "
                        f"{','.join(study.objectives)}): it has no model; `mcunas export '{row.arch}' --out DIR` "
                        "exports its architecture untrained")
    return row


def pick_best(study: StudyTrials, limits: Limits) -> pd.Series:
    """The top trained trial under ``limits`` (the same ranking as ``mcunas query``)."""
    if not study.needs_training:
        raise UserError(f"study '{study.name}' is cost-only (objectives {','.join(study.objectives)}): "
                        "no trial was trained, so there is no model to export")
    answer = study_answer(study, limits, top=1)
    if not answer["candidates"]:
        counts = ", ".join(f"{v} {k}" for k, v in answer["status_counts"].items()) or "no trials"
        raise UserError(f"study '{study.name}' has no trained trial yet ({counts}): nothing to export")
    if not answer["best"]:
        near = ", ".join(f"#{r['number']} ({r['over_by']})" for r in answer.get("nearest", [])[:3])
        raise UserError(f"no trained trial of study '{study.name}' meets {answer['budget']['description']}"
                        + (f"; nearest: {near}" if near else ""))
    return pick_trial(study, answer["best"][0]["number"])


def find_artefact(stored: str, study: StudyTrials) -> Path | None:
    """Where a stored artefact path now is (see module doc), or None."""
    path = Path(stored)
    if path.is_absolute():
        return path if path.is_file() else None
    bases = [Path.cwd()]
    journal = _local_file(study.storage_url)
    if journal is not None:
        bases += list(journal.resolve().parents)
    for base in bases:
        if (base / path).is_file():
            return base / path
    return None


def _predicted(row: pd.Series) -> dict:
    """The cost model's figures for the trial (stored ones first, re-costed where missing)."""
    from mcunas.arch import parse_arch
    from mcunas.cost import estimate

    stored = {k: row.get(k) for k in ("macs", "params", "weight_bytes", "sram_paper_bytes",
                                      "sram_tflm_bytes", "tflite_bytes")}
    if any(pd.isna(v) for v in stored.values()):
        fresh = estimate(parse_arch(row.arch))
        stored = {k: (fresh.get(k) if pd.isna(v) else v) for k, v in stored.items()}
    return {k: (None if v is None or pd.isna(v) else int(v)) for k, v in stored.items()}


def export_trial(study: StudyTrials, row: pd.Series, out_dir: str | Path, boards: dict, board=None,
                 data: str | None = None, target: str = "x86_64") -> dict:
    """Write the trial's deployment folder (see module doc); returns its figures."""
    from mcunas.export.c_array import write_c_array
    from mcunas.tflm import measure_arena

    out = Path(out_dir)
    keras_src = find_artefact(row.keras_path, study)
    tflite_src = find_artefact(row.tflite_path, study) if isinstance(row.tflite_path, str) else None
    if keras_src is None and tflite_src is None:
        raise UserError(f"the model files of trial {row.number} of study '{study.name}' are gone "
                        f"({row.keras_path}, {row.tflite_path}): run the export where the study's results/ folder is")
    out.mkdir(parents=True, exist_ok=True)
    if tflite_src is not None:
        if keras_src is not None:
            shutil.copyfile(keras_src, out / "model.keras")
        shutil.copyfile(tflite_src, out / "model_int8.tflite")
        origin = f"copied from trial {row.number}: {tflite_src} (the file its int8 accuracy was measured on)"
    else:
        from mcunas.arch import parse_arch
        from mcunas.export.bundle import export_arch

        export_arch(parse_arch(row.arch), out, weights=keras_src, data=data)
        origin = (f"re-converted from {keras_src} ({'calibrated on ' + data if data else 'noise calibration'}): "
                  "the trial's own .tflite is gone, so its recorded int8 accuracy was measured on another file")
    tflite = (out / "model_int8.tflite").read_bytes()
    measured = measure_arena(out / "model_int8.tflite")
    (out / "arch.txt").write_text(f"{row.arch}\n")
    write_c_array(tflite, out, measured["tflm_arena_bytes"], target=target,
                  comment=f"arch: {row.arch}\nstudy {study.name}, trial {row.number}, int8 accuracy "
                  f"{row.int8_accuracy:.4f}\nint8 input = pixel - 128 (scale 1/255, zero point -128)")
    figures = {
        "study": study.name, "trial": int(row.number), "arch": row.arch, "out": str(out),
        "int8_accuracy": float(row.int8_accuracy),
        "float_accuracy": None if pd.isna(row.float_accuracy) else float(row.float_accuracy),
        "predicted": _predicted(row),
        "tflm_arena_bytes": measured["tflm_arena_bytes"],
        "tflm_head_bytes": measured["tflm_head_bytes"], "tflm_tail_bytes": measured["tflm_tail_bytes"],
        "k_tensor_arena_size": -(-measured["tflm_arena_bytes"] // 16) * 16,
        "tflite_bytes": len(tflite),
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


def board_fit(boards: dict, arena_bytes: int, file_bytes: int) -> list[dict]:
    """Per board: does the measured arena fit its SRAM and the file its flash (code needs room too)."""
    out = []
    for b in boards.values():
        flash_ok = b.flash_bytes is None or file_bytes <= b.flash_bytes
        out.append({"board": b.name, "sram_bytes": b.sram_bytes, "flash_bytes": b.flash_bytes,
                    "sram_left_bytes": b.sram_bytes - arena_bytes,
                    "flash_left_bytes": None if b.flash_bytes is None else b.flash_bytes - file_bytes,
                    "fits": arena_bytes <= b.sram_bytes and flash_ok})
    return out


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
        f"- int8 accuracy (eval split, recorded by the search): **{f['int8_accuracy']:.4f}**"
        + (f"; float {f['float_accuracy']:.4f}" if f["float_accuracy"] is not None else ""),
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


def export_study_best(study_name: str, storage_url: str | None, out_dir: str | Path,
                      budget_model: str = "deployable") -> dict:
    """The campaign's own winner export: best trained trial under the campaign's budget."""
    from mcunas.cost.boards import load_boards
    from mcunas.query.studies import load_study

    study = load_study(study_name, storage_url)
    return export_trial(study, pick_best(study, Limits(model=budget_model)), out_dir, load_boards())


def export_from_args(args) -> int:
    """``mcunas export --study NAME (--trial N | --best [budget flags]) --out DIR``."""
    from mcunas.cli.output import print_figures
    from mcunas.cli.query import limits_from_args
    from mcunas.cost.boards import load_boards
    from mcunas.query.studies import load_study

    if (args.trial is None) == (not args.best):
        raise UserError("give exactly one of --trial N or --best with --study")
    if args.arch:
        raise UserError("give either an ARCH string or --study, not both")
    boards = load_boards(args.boards_file)
    limits = limits_from_args(args)
    study = load_study(args.study, args.storage)
    row = pick_trial(study, args.trial) if args.trial is not None else pick_best(study, limits)
    board = boards[args.board] if args.board else None
    figures = export_trial(study, row, args.out, boards, board, data=getattr(args, "data", None),
                           target=getattr(args, "target", "x86_64"))
    flat = {k: v for k, v in figures.items() if k not in ("predicted", "boards", "files", "ops")}
    flat["ops"] = ", ".join(figures["ops"])
    flat.update({f"predicted_{k}": v for k, v in figures["predicted"].items()})
    flat["fits_boards"] = ", ".join(b["board"] for b in figures["boards"] if b["fits"]) or "none"
    flat["files"] = ", ".join(figures["files"])
    print_figures(figures if args.json else flat, args.json)
    return 0
