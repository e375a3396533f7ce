"""Budgets and the pre-training rejection rule.

A :class:`Budget` is checked against the *deployable* figures by default —
the predicted TFLM arena (``sram_tflm_bytes``) and the predicted int8
``.tflite`` size (``tflite_bytes``) — because the VWW paper's rule
under-counts both (MobileNetV1 α0.25@96: 55,296 B by the rule, 103,672 B in
TFLM; 210,850 int8 weights, 333,288 B as a file).  ``model="paper"`` checks
the paper's figures (``sram_paper_bytes``, ``weight_bytes``) to reproduce
the paper.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mcunas.cost.boards import Board
from mcunas.errors import UserError
from mcunas.units import parse_bytes, parse_count

# budget model -> (cost key checked against SRAM, cost key checked against flash)
FIGURES = {
    "deployable": ("sram_tflm_bytes", "tflite_bytes"),
    "paper": ("sram_paper_bytes", "weight_bytes"),
}
PAPER_DEFAULTS = {"sram": "250KB", "flash": "250KB", "macs": "60M"}


@dataclass(frozen=True)
class Budget:
    sram_bytes: int
    flash_bytes: int | None
    macs: int
    model: str = "deployable"

    @property
    def sram_key(self) -> str:
        return FIGURES[self.model][0]

    @property
    def flash_key(self) -> str:
        return FIGURES[self.model][1]

    def constraints(self, costs: dict) -> dict[str, float]:
        """Optuna constraint values: > 0 means over budget by that many bytes/MACs."""
        out = {
            "sram": float(costs[self.sram_key] - self.sram_bytes),
            "macs": float(costs["macs"] - self.macs),
        }
        if self.flash_bytes is not None:
            out["flash"] = float(costs[self.flash_key] - self.flash_bytes)
        return out

    def violations(self, costs: dict) -> list[str]:
        """Human-readable reasons a candidate does not fit (empty when it fits)."""
        names = {"sram": self.sram_key, "flash": self.flash_key, "macs": "macs"}
        limits = {"sram": self.sram_bytes, "flash": self.flash_bytes, "macs": self.macs}
        return [
            f"{names[k]} {costs[names[k]]:,} > {limits[k]:,}"
            for k, over in self.constraints(costs).items()
            if over > 0
        ]

    def describe(self) -> str:
        flash = "unlimited" if self.flash_bytes is None else f"{self.flash_bytes:,} B"
        return f"SRAM {self.sram_bytes:,} B, flash {flash}, {self.macs:,} MACs ({self.model} figures)"

    def as_dict(self) -> dict:
        return asdict(self)


def make_budget(sram: str | None = None, flash: str | None = None, macs: str | None = None,
                board: Board | None = None, model: str = "deployable") -> Budget:
    """Budget from CLI strings; a board supplies SRAM/flash not given explicitly.

    Unset figures default to the paper's 250KB / 250KB / 60M.
    """
    if model not in FIGURES:
        raise UserError(f"unknown budget model '{model}': use deployable or paper")
    sram_bytes = parse_bytes(sram) if sram else (board.sram_bytes if board else parse_bytes(PAPER_DEFAULTS["sram"]))
    if flash:
        flash_bytes = parse_bytes(flash)
    elif board:
        flash_bytes = board.flash_bytes
    else:
        flash_bytes = parse_bytes(PAPER_DEFAULTS["flash"])
    return Budget(sram_bytes, flash_bytes, parse_count(macs or PAPER_DEFAULTS["macs"]), model)
