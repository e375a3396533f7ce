"""``mcunas boards``: the board catalog (paper Table 1 plus your own YAML)."""

from __future__ import annotations

import json
from dataclasses import asdict


def register(sub) -> None:
    p = sub.add_parser(
        "boards",
        help="list the MCU board catalog",
        description="List boards with core, clock, SRAM and flash. Add your own with --boards-file, "
        "a YAML mapping names to {core, clock_mhz, sram, flash, source}, sizes with units "
        "(e.g. sram: 320KiB; flash: external for no limit) and core one of "
        "cortex-m0plus, cortex-m4, cortex-m7, cortex-m33, cortex-m55, cortex-m85.",
    )
    p.add_argument("--boards-file", help="YAML file with extra boards")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from mcunas.cost.boards import load_boards

    boards = load_boards(args.boards_file)
    if args.json:
        print(json.dumps([asdict(b) for b in boards.values()], indent=2))
        return 0
    print(f"{'board':<20} {'core':<13} {'MHz':>5} {'SRAM':>9} {'flash':>9}  source")
    for b in boards.values():
        flash = "external" if b.flash_bytes is None else _size(b.flash_bytes)
        print(f"{b.name:<20} {b.core:<13} {b.clock_mhz:>5.0f} {_size(b.sram_bytes):>9} {flash:>9}  {b.source}")
    return 0


def _size(n: int) -> str:
    """Bytes in the unit the catalog wrote them in: KB/MB (powers of 1000) or KiB/MiB."""
    for unit, size in (("MB", 1000**2), ("KB", 1000), ("MiB", 1024**2), ("KiB", 1024)):
        if n % size == 0:
            return f"{n // size:,}{unit}"
    return f"{n:,}B"
