"""The board catalog: the VWW paper's Table 1, plus boards users add in YAML.

Sizes are stored in bytes using the paper's units as printed (KB and MB are
powers of 1000 in this project, so "256 KB" is 256,000 bytes; the true chips
have 256 KiB, which is 2.4 % more, i.e. the catalog errs on the safe side).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from mcunas.errors import UserError
from mcunas.units import parse_bytes


@dataclass(frozen=True)
class Board:
    name: str
    core: str
    clock_mhz: float
    sram_bytes: int
    flash_bytes: int | None  # None: external flash, effectively unbounded
    source: str


PAPER = "VWW paper, Table 1 (Chowdhery et al., 2019)"

BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("frdm-k64f", "cortex-m4", 120, 256_000, 1_000_000, PAPER),
        Board("stm32f723", "cortex-m7", 216, 256_000, 512_000, PAPER),
        Board("nucleo-f746zg", "cortex-m7", 216, 320_000, 1_000_000, PAPER),
        Board("imxrt1060", "cortex-m7", 600, 1_000_000, None, PAPER),
    )
}


def load_boards(path: str | Path | None = None) -> dict[str, Board]:
    """The built-in catalog, extended (or overridden) by a user YAML file.

    The file maps names to ``{core, clock_mhz, sram, flash, source}`` with
    sizes written with units (``320KB``); ``flash: external`` means no limit.
    """
    boards = dict(BOARDS)
    if path is None:
        return boards
    try:
        entries = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read boards file {path}: {exc}") from None
    if not isinstance(entries, dict):
        raise UserError(f"boards file {path} must map board names to their facts")
    for name, e in entries.items():
        try:
            flash = None if str(e["flash"]).lower() == "external" else parse_bytes(str(e["flash"]))
            boards[name] = Board(name, str(e["core"]).lower(), float(e["clock_mhz"]),
                                 parse_bytes(str(e["sram"])), flash, str(e.get("source", path)))
        except (KeyError, TypeError) as exc:
            raise UserError(f"board '{name}' in {path} needs core, clock_mhz, sram and flash ({exc})") from None
    return boards


def get_board(name: str, path: str | Path | None = None) -> Board:
    boards = load_boards(path)
    if name not in boards:
        raise UserError(f"unknown board '{name}': choose one of {', '.join(boards)} (see `mcunas boards`)")
    return boards[name]
