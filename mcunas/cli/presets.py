"""``mcunas presets``: the named reference networks and their strings."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("presets", help="list named reference architectures",
                       description="List every preset name with its architecture string.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from mcunas.presets import presets

    table = presets()
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        width = max(map(len, table))
        for name, arch in table.items():
            print(f"{name:<{width}}  {arch}")
    return 0
