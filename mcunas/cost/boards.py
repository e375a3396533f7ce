"""The board catalog: the VWW paper's Table 1, common MCU boards, and boards users add in YAML.

The paper's four boards keep the paper's units as printed (KB and MB are
powers of 1000 in this project, so "256 KB" is 256,000 bytes; the true chips
have 256 KiB, which is 2.4 % more, i.e. those entries err on the safe side).
The other boards use the unit their vendor means: a datasheet's "KB" of
SRAM or flash is 1024 bytes, so they are written in KiB / MiB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcunas.errors import UserError, did_you_mean
from mcunas.units import parse_bytes
from mcunas.yaml_input import read_yaml


@dataclass(frozen=True)
class Board:
    name: str
    core: str
    clock_mhz: float
    sram_bytes: int
    flash_bytes: int | None  # None: external flash, effectively unbounded
    source: str


PAPER = "VWW paper, Table 1 (Chowdhery et al., 2019)"
KIB, MIB = 1024, 1024**2

# Cores the latency model knows (mcunas.cost.latency); a board's core must be one of them.
CORES = ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "cortex-m85")

BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("frdm-k64f", "cortex-m4", 120, 256_000, 1_000_000, PAPER),
        Board("stm32f723", "cortex-m7", 216, 256_000, 512_000, PAPER),
        Board("nucleo-f746zg", "cortex-m7", 216, 320_000, 1_000_000, PAPER),
        Board("imxrt1060", "cortex-m7", 600, 1_000_000, None, PAPER),
        Board("arduino-nano-33-ble", "cortex-m4", 64, 256 * KIB, 1 * MIB,
              "nRF52840 (Cortex-M4F 64 MHz, 256 KB RAM, 1 MB flash): Nordic nRF52840 product specification"),
        Board("stm32h743", "cortex-m7", 480, 512 * KIB, 2 * MIB,
              "STM32H743 (e.g. NUCLEO-H743ZI2), Cortex-M7 480 MHz, 2 MB flash: ST DS12110; SRAM is the 512 KB "
              "AXI SRAM, the largest contiguous block of its 1 MB (the limit the TinyEngine README measures under)"),
        Board("nucleo-l4r5zi", "cortex-m4", 120, 640 * KIB, 2 * MIB,
              "STM32L4R5ZI, Cortex-M4 120 MHz, 640 KB SRAM, 2 MB flash: MLPerf Tiny v0.5 reference system description"),
        Board("disco-f746ng", "cortex-m7", 216, 320 * KIB, 1 * MIB,
              "STM32F746NG, Cortex-M7 216 MHz, 320 KB SRAM, 1 MB flash: MLPerf Tiny v0.7 Plumerai system description"),
        Board("nucleo-h7a3zi", "cortex-m7", 280, 1 * MIB, 2 * MIB,
              "STM32H7A3ZI-Q, Cortex-M7 280 MHz, 2 MB flash: MLPerf Tiny v0.7 ST system description; SRAM is the "
              "1 MB AXI SRAM, the largest contiguous block of its 1.4 MB (ST RM0455)"),
        Board("nucleo-u575zi", "cortex-m33", 160, 768 * KIB, 2 * MIB,
              "STM32U575ZI-Q, Cortex-M33 160 MHz, 768 KB SRAM, 2 MB flash: MLPerf Tiny v0.7 ST system description"),
        Board("nucleo-g0b1re", "cortex-m0plus", 64, 144 * KIB, 512 * KIB,
              "STM32G0B1RE, Cortex-M0+ 64 MHz, 144 KB SRAM, 512 KB flash: MLPerf Tiny v1.1 Bosch system description"),
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
    entries = read_yaml(path, f"boards file {path}") or {}
    if not isinstance(entries, dict):
        raise UserError(f"boards file {path} must map board names to their facts")
    for name, e in entries.items():
        try:
            flash = None if str(e["flash"]).lower() == "external" else parse_bytes(str(e["flash"]))
            boards[name] = Board(name, _core(e["core"], name, path), _clock_mhz(e["clock_mhz"], name, path),
                                 parse_bytes(str(e["sram"])), flash, str(e.get("source", path)))
        except (KeyError, TypeError) as exc:
            raise UserError(f"board '{name}' in {path} needs core, clock_mhz, sram and flash ({exc})") from None
    return boards


def _core(value, name: str, path) -> str:
    core = str(value).lower()
    if core not in CORES:
        raise UserError(f"board '{name}' in {path} has unknown core '{value}': use one of {', '.join(CORES)}")
    return core


def _clock_mhz(value, name: str, path) -> float:
    """The clock in MHz: a positive number (latency is cycles divided by it)."""
    try:
        mhz = float(value)
    except (TypeError, ValueError):
        mhz = float("nan")
    if not mhz > 0 or mhz == float("inf"):
        raise UserError(f"board '{name}' in {path} has clock_mhz '{value}': write the core clock in MHz, e.g. 216")
    return mhz


def get_board(name: str, path: str | Path | None = None) -> Board:
    boards = load_boards(path)
    if name not in boards:
        raise UserError(f"unknown board '{name}'{did_you_mean(name, boards)}: choose one of {', '.join(boards)} (see `mcunas boards`)")
    return boards[name]
