"""Pick a trained trial of a study for export, and find its model files.

A trial number names one trial; ``--best`` takes the top trained trial under
a budget, ranked as ``mcunas query`` ranks (:mod:`mcunas.query.whatif`).
Rejected, failed, pruned or untrained trials have no model: the reason is
one line.  :mod:`mcunas.export.trial` then writes the deployment folder.

Artefact paths are stored as the campaign wrote them (relative to the
directory it ran in); they are looked up from the current directory and
then from the directories above the study's journal file, so a study can
be exported from wherever its ``results/`` folder now lives.  Only files
inside the study's own results folder are used: ``results/<study>/`` under
the current directory, the folder of the study's journal or SQLite file when
that folder is named after the study (the default layout, and
``--results-dir``), and the campaign's own folder for the winner a search
exports.  Paths are resolved first, so neither ``..`` nor a symbolic link
leads out.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mcunas.errors import UserError
from mcunas.query.studies import StudyTrials, _local_file
from mcunas.budget import Budget
from mcunas.query.whatif import study_answer
from mcunas.search.storage import RESULTS_DIR

WHY_NO_MODEL = {
    "rejected": "was rejected before training ({reason}): it has no model",
    "scored": "was scored with supernet weights, never trained: it has no model; its study's finalists are "
              "trained (--finalists K)",
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
                        + WHY_NO_MODEL[row.status].format(reason=reason)
                        + (f" ({reason})" if row.status == "pruned" and reason != "no reason recorded" else ""))
    if not study.needs_training or pd.isna(row.keras_path):
        raise UserError(f"trial {number} of study '{study.name}' was never trained (objectives "
                        f"{','.join(study.objectives)}): it has no model; `mcunas export '{row.arch}' --out DIR` "
                        "exports its architecture untrained")
    return row


def pick_best(study: StudyTrials, budget: Budget) -> pd.Series:
    """The top trained trial under ``budget`` (the same ranking as ``mcunas query``)."""
    if not study.needs_training:
        raise UserError(f"study '{study.name}' is cost-only (objectives {','.join(study.objectives)}): "
                        "no trial was trained, so there is no model to export")
    answer = study_answer(study, budget, top=1)
    if not answer["candidates"]:
        counts = ", ".join(f"{v} {k}" for k, v in answer["status_counts"].items()) or "no trials"
        raise UserError(f"study '{study.name}' has no trained trial yet ({counts}): nothing to export")
    if not answer["best"]:
        near = ", ".join(f"#{r['number']} ({r['over_by']})" for r in answer.get("nearest", [])[:3])
        raise UserError(f"no trained trial of study '{study.name}' meets {answer['budget']['description']}"
                        + (f"; nearest: {near}" if near else ""))
    return pick_trial(study, answer["best"][0]["number"])


def study_folders(study: StudyTrials, results_folder: Path | None = None) -> list[Path]:
    """The folders a study's artefacts may be copied from (see module doc), resolved."""
    folders = [RESULTS_DIR / study.name] + ([results_folder] if results_folder is not None else [])
    journal = _local_file(study.storage_url)
    if journal is not None and journal.resolve().parent.name == study.name:
        folders.append(journal.parent)
    return list(dict.fromkeys(f.resolve() for f in folders))


def find_artefact(stored: str, study: StudyTrials, folders: list[Path], what: str) -> Path | None:
    """Where a stored artefact path now is (see module doc), or None; one line if it lies outside ``folders``."""
    path = Path(stored)
    bases = [Path("/")] if path.is_absolute() else [Path.cwd()]
    journal = _local_file(study.storage_url)
    if journal is not None and not path.is_absolute():
        bases += list(journal.resolve().parents)
    found = [base / path for base in bases if (base / path).is_file()]
    for candidate in found:
        if any(candidate.resolve().is_relative_to(folder) for folder in folders):
            return candidate
    if found:
        raise UserError(f"{what} {stored} resolves to {found[0].resolve()}, outside study '{study.name}''s results "
                        f"folder ({', '.join(map(str, folders))}): refusing to copy it")
    return None


def model_files(study: StudyTrials, row: pd.Series,
                results_folder: Path | None = None) -> tuple[Path | None, Path | None]:
    """Where the trial's ``model.keras`` and ``model_int8.tflite`` now are; one line when both are gone.

    Only files under the study's own results folder (:func:`study_folders`,
    plus ``results_folder`` where the caller knows it) are ever returned: a
    trial's attributes are data, and a path in them must not make an export
    copy some other file (a key, a password file) into a deployment folder.
    """
    folders = study_folders(study, results_folder)
    keras_src = find_artefact(row.keras_path, study, folders, f"trial {row.number}'s keras_path")
    tflite_src = (find_artefact(row.tflite_path, study, folders, f"trial {row.number}'s tflite_path")
                  if isinstance(row.tflite_path, str) else None)
    if keras_src is None and tflite_src is None:
        raise UserError(f"the model files of trial {row.number} of study '{study.name}' are gone "
                        f"({row.keras_path}, {row.tflite_path}): run the export where the study's results/ folder is")
    return keras_src, tflite_src
