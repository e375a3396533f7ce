"""What a study optimises, and the sampler that proposes candidates.

Objectives are named: ``accuracy`` (int8 accuracy on the validation set, needs
training), ``sram`` and ``flash`` (the budget model's figures, so the
deployable TFLM arena and ``.tflite`` size by default), ``macs``, and
``capacity`` (MACs maximised: a training-free proxy for accuracy, used to
compare samplers cheaply).  The default is ``accuracy,sram``: the paper's
accuracy-versus-memory frontier.
"""

from __future__ import annotations

from mcunas.errors import UserError
from mcunas.budget import Budget

DIRECTIONS = {"accuracy": "maximize", "sram": "minimize", "flash": "minimize", "macs": "minimize",
              "capacity": "maximize"}
SAMPLERS = ("tpe", "nsga2", "gp", "random")
PRUNERS = ("none", "hyperband", "median")
# objective -> the budget dimension whose figure it reads ("capacity" maximises MACs)
_DIMENSION = {"sram": "sram", "flash": "flash", "macs": "macs", "capacity": "macs"}


def parse_objectives(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in DIRECTIONS]
    if unknown or not names or len(set(names)) != len(names):
        raise UserError(
            f"bad --objectives '{text}': give distinct names from {', '.join(DIRECTIONS)}, e.g. accuracy,sram"
        )
    return names


def objective_values(objectives: list[str], costs: dict, budget: Budget, accuracy: float | None) -> list[float]:
    """The trial's values in objective order; a candidate never trained scores accuracy 0."""
    return [float(accuracy or 0.0) if name == "accuracy" else float(costs[objective_key(name, budget)])
            for name in objectives]


def objective_key(name: str, budget: Budget) -> str:
    """The cost figure a cost objective reads under ``budget``'s model (e.g. ``sram`` -> ``sram_tflm_bytes``)."""
    return budget.key(_DIMENSION[name])


def make_sampler(name: str, seed: int | None):
    """An Optuna sampler; constraints set with ``trial.set_constraint`` steer all of them."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=10)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        try:
            import scipy  # noqa: F401
            import torch  # noqa: F401
        except ModuleNotFoundError as exc:
            raise UserError(f"--sampler gp needs {exc.name}: pip install torch scipy, or pick tpe/nsga2") from None
        return optuna.samplers.GPSampler(seed=seed)
    raise UserError(f"unknown sampler '{name}': choose one of {', '.join(SAMPLERS)}")


def check_pruner(name: str, objectives: list[str]) -> None:
    """Refuse a pruner on a multi-objective study before anything is written (Optuna cannot prune those)."""
    if name != "none" and objectives != ["accuracy"]:
        raise UserError(f"--pruner {name} needs --objectives accuracy alone: Optuna cannot prune multi-objective studies")


def make_pruner(name: str, objectives: list[str], epochs: int):
    """Hyperband on epochs — only for a single accuracy objective (Optuna cannot prune multi-objective)."""
    import optuna

    check_pruner(name, objectives)
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs))
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    raise UserError(f"unknown pruner '{name}': choose one of {', '.join(PRUNERS)}")
