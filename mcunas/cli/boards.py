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
        "(e.g. sram: 320KB; flash: external for no limit).",
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
    print(f"{'board':<15} {'core':<10} {'MHz':>5} {'SRAM':>9} {'flash':>10}  source")
    for b in boards.values():
        flash = "external" if b.flash_bytes is None else f"{b.flash_bytes / 1000:,.0f}KB"
        print(f"{b.name:<15} {b.core:<10} {b.clock_mhz:>5.0f} {b.sram_bytes / 1000:>7,.0f}KB {flash:>10}  {b.source}")
    return 0
