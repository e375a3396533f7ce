"""Pareto-aware successive halving (``--halving ETA``, ``--rungs``) for multi-objective studies.

Optuna's pruners refuse multi-objective studies, so without this every
candidate of the default ``accuracy,sram`` study trains to its last epoch.

**Rungs.** Decisions are taken after the epochs in ``rungs``: by default
``epochs / ETA**k`` rounded down, for k = 1, 2, ... while at least 1
(``--epochs 9 --halving 3``: after epochs 1 and 3; ``--epochs 3``: after 1),
or the list ``--rungs 1,3`` (increasing, at most ``--epochs``; a rung equal to
``--epochs`` is the end of training, where nothing is stopped).

**The rule.** When a candidate finishes a rung's epoch, its validation
accuracy there is stored on its trial (user attribute ``rung_accuracies``,
so every worker on the study — journal file or PostgreSQL — sees it), and it
is compared with every other candidate of the study that reached the same
rung, running, completed or stopped: points (rung validation accuracy, each
cost objective of the study) are sorted into non-dominated fronts (front 0
is the Pareto set).  With ``n`` candidates at the rung it goes on if fewer
than ``ceil(n / ETA)`` candidates lie in strictly better fronts: the best
``1/ETA`` go on, and a front that straddles the cut goes on whole (members of
one front are not comparable, so no tie-break would be Pareto-honest).  A
small but low-accuracy network that nothing dominates therefore always goes
on: the front is kept across its whole SRAM range, not only at the top.

**The first candidates at a rung** (``n <= ETA``, this one included) always go
on.  With so few, ``ceil(n / ETA)`` is 1 and the rule would become "only the
non-dominated go on" — stricter than 1/ETA, and decided on one or two
comparisons of short, noisy training; the sampler's first proposals are
random anyway.  So the bar is set only once ETA candidates have reached it.

**A stopped candidate** raises ``optuna.TrialPruned`` (state PRUNED) with
user attributes ``rung`` and ``rung_accuracy`` beside its ``costs``.  PRUNED
rather than COMPLETE-with-a-flag: Optuna, its samplers and every reader of
the study then treat it as not finished — it has no objective values, can
never be on ``best_trials`` or be exported as a winner, and is not counted as
trained by ``--n-trials`` — while TPE still learns from it (it sorts pruned
trials into its "bad" group).  A COMPLETE trial would need a made-up final
accuracy (the rung's float accuracy is not the int8 accuracy the others
report) and a filter in every reader.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mcunas.errors import UserError

RUNG_ACCURACIES = "rung_accuracies"  # trial user attribute: {"<epoch>": float validation accuracy}


@dataclass(frozen=True)
class Halving:
    """ETA and the epochs after which a candidate may be stopped (all below the campaign's --epochs)."""

    eta: int
    rungs: tuple[int, ...]

    def as_dict(self) -> dict:
        return {"eta": self.eta, "rungs": list(self.rungs)}


def derived_rungs(epochs: int, eta: int) -> tuple[int, ...]:
    """``epochs / eta**k`` rounded down, k >= 1, while >= 1; ascending, without repeats."""
    rungs, k = set(), 1
    while epochs // eta ** k >= 1:
        rungs.add(epochs // eta ** k)
        k += 1
    return tuple(sorted(r for r in rungs if r < epochs))


def parse_halving(eta, rungs_text, epochs: int, objectives: list[str], pruner: str) -> Halving | None:
    """``--halving`` / ``--rungs`` as a :class:`Halving` (None when neither is given); one line when wrong."""
    if eta is None and rungs_text is None:
        return None
    eta_text = "3" if eta is None else str(eta).strip()
    if not eta_text.isdigit() or int(eta_text) < 2:
        raise UserError(f"--halving must be a whole number of at least 2 (keep the best 1/ETA at each rung, "
                        f"e.g. 3), got '{eta}'")
    if "accuracy" not in objectives or len(objectives) < 2:
        raise UserError(f"--halving needs accuracy and a cost objective (e.g. --objectives accuracy,sram), got "
                        f"'{','.join(objectives)}'; a single accuracy objective uses --pruner hyperband or median")
    if pruner != "none":
        raise UserError(f"--halving and --pruner {pruner} both stop candidates: give one of them")
    if rungs_text is None:
        rungs = derived_rungs(epochs, int(eta_text))
    else:
        rungs = _parse_rungs(str(rungs_text), epochs)
    rungs = tuple(r for r in rungs if r < epochs)
    if not rungs:
        raise UserError(f"--halving needs a rung before the last epoch: with --epochs {epochs} there is none; "
                        "raise --epochs (e.g. 3) or give --rungs below it")
    return Halving(int(eta_text), rungs)


def _parse_rungs(text: str, epochs: int) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts) or any(int(p) < 1 for p in parts):
        raise UserError(f"--rungs must be whole epochs separated by commas, e.g. 1,3,9, got '{text}'")
    rungs = [int(p) for p in parts]
    if any(b <= a for a, b in zip(rungs, rungs[1:])):
        raise UserError(f"--rungs must be increasing, e.g. 1,3,9, got '{text}'")
    if rungs[-1] > epochs:
        raise UserError(f"--rungs {text} goes beyond --epochs {epochs}: the last rung can be at most the last epoch")
    return tuple(rungs)


def front_ranks(points: np.ndarray) -> np.ndarray:
    """Non-dominated front index (0 = Pareto set) of each row; every column larger-is-better."""
    points = np.asarray(points, dtype=float)
    ranks = np.full(len(points), -1)
    front = 0
    while (ranks < 0).any():
        left = np.flatnonzero(ranks < 0)
        sub = points[left]
        for i, row in zip(left, sub):
            dominated = np.any(np.all(sub >= row, axis=1) & np.any(sub > row, axis=1))
            if not dominated:
                ranks[i] = front
        front += 1
    return ranks


def goes_on(own: np.ndarray, others: np.ndarray, eta: int) -> bool:
    """The rung rule (module doc) for point ``own`` among ``others`` at the same rung (larger is better)."""
    others = np.asarray(others, dtype=float).reshape(-1, len(own))
    n = len(others) + 1
    if n <= eta:
        return True
    ranks = front_ranks(np.vstack([own, others]))
    return int((ranks < ranks[0]).sum()) < math.ceil(n / eta)


def oriented_point(accuracy: float, costs: dict, objectives: list[str], budget) -> list[float]:
    """(accuracy, cost objectives...) with every value larger-is-better, from a trial's ``costs``."""
    from mcunas.search.objectives import DIRECTIONS, objective_key

    point = [float(accuracy)]
    for name in objectives:
        if name != "accuracy":
            sign = 1.0 if DIRECTIONS[name] == "maximize" else -1.0
            point.append(sign * float(costs[objective_key(name, budget)]))
    return point


def stop_at_rung(trial, campaign, epoch: int, accuracy: float, reached: dict) -> bool:
    """Record ``trial``'s rung accuracy (when ``epoch`` is a rung) and say whether it stops there.

    ``reached`` is this trial's ``{"<epoch>": accuracy}`` so far (kept by the
    caller, updated here).  A stopped trial gets ``rung`` and ``rung_accuracy``.
    """
    import optuna

    halving = campaign.halving
    if halving is None or epoch not in halving.rungs:
        return False
    reached[str(epoch)] = float(accuracy)
    trial.set_user_attr(RUNG_ACCURACIES, dict(reached))
    own = oriented_point(accuracy, trial.user_attrs["costs"], campaign.objectives, campaign.budget)
    others = []
    for t in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,
                                                            optuna.trial.TrialState.COMPLETE,
                                                            optuna.trial.TrialState.PRUNED)):
        at_rung = t.user_attrs.get(RUNG_ACCURACIES, {}).get(str(epoch))
        if t.number != trial.number and at_rung is not None and not t.user_attrs.get("duplicate_of_earlier_trial"):
            others.append(oriented_point(at_rung, t.user_attrs["costs"], campaign.objectives, campaign.budget))
    if goes_on(np.asarray(own), np.asarray(others), halving.eta):
        return False
    trial.set_user_attr("rung", int(epoch))
    trial.set_user_attr("rung_accuracy", float(accuracy))
    trial.set_user_attr("rung_peers", len(others) + 1)
    return True
