"""Stored studies, opened read-only, as one pandas table of trials.

A query must never create what it reads: Optuna's storages happily create
an empty journal or SQLite file for a mistyped path, so the path is checked
first and a missing file or study is one :class:`UserError` line naming
what exists instead.

Studies made by ``mcunas search`` carry their space, objectives and search
budget as study user attributes; a study made some other way still works
(objectives then come from its metric names, or ``accuracy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mcunas.errors import UserError
from mcunas.search.storage import check_study_name, default_storage_url, redact


@dataclass
class StudyTrials:
    """One study's identity and its trials (:func:`mcunas.search.results.trials_frame` rows)."""

    name: str
    storage_url: str
    objectives: list[str]
    search_budget: dict | None  # Budget.as_dict() the campaign searched under, if known
    space: str | None
    frame: pd.DataFrame
    majority_test_accuracy: float | None = None  # the test set's majority-class share, when recorded

    @property
    def needs_training(self) -> bool:
        return "accuracy" in self.objectives


def _local_file(url: str) -> Path | None:
    """The file behind a journal or SQLite URL (None for server databases)."""
    if url.startswith("journal:") or url.endswith(".journal"):
        return Path(url.removeprefix("journal:"))
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def open_existing_storage(url: str):
    """The storage at ``url``, refusing (one line) to create one that does not exist."""
    from mcunas.search.storage import open_storage

    path = _local_file(url)
    if path is not None and not path.is_file():
        raise UserError(f"no study storage at {path}: run `mcunas search` first or give the right --storage")
    return open_storage(url)


def _objectives(study) -> list[str]:
    stored = study.user_attrs.get("objectives")
    if stored:
        return list(stored)
    names = study.metric_names
    return list(names) if names else ["accuracy"]


def load_study(name: str, storage_url: str | None = None) -> StudyTrials:
    """Load study ``name`` (default storage: its journal ``results/<name>/study.journal``)."""
    import optuna

    from mcunas.search.results import trials_frame

    check_study_name(name)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = storage_url or default_storage_url(name)
    storage = open_existing_storage(url)
    names = optuna.get_all_study_names(storage)
    if name not in names:
        held = ", ".join(names) if names else "no studies"
        raise UserError(f"no study '{name}' in storage {redact(url)} (it holds: {held})")
    study = optuna.load_study(study_name=name, storage=storage)
    return StudyTrials(name=name, storage_url=url, objectives=_objectives(study),
                       search_budget=study.user_attrs.get("budget"), space=study.user_attrs.get("space"),
                       frame=trials_frame(study), majority_test_accuracy=study.user_attrs.get("majority_test_accuracy"))


def load_studies(names: list[str], storage_url: str | None = None) -> list[StudyTrials]:
    if len(set(names)) != len(names):
        raise UserError(f"--study given twice: {', '.join(names)}")
    return [load_study(n, storage_url) for n in names]
