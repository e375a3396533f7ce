"""Budgets with units: ``250KB``, ``0.25MB``, ``256KiB``, ``60M``, ``100ms``.

KB and MB are powers of 1000, as in the VWW paper; KiB and MiB are powers of
1024.  A budget without a unit is refused: "250" could mean bytes or KB, and
guessing wrong silently changes which models fit; so is a small ``b``
(``250Kb`` is kilobits, an eighth of ``250KB``).
"""

from __future__ import annotations

import re

from mcunas.errors import UserError

_BYTES = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}
_COUNT = {"K": 1000, "M": 1000**2, "G": 1000**3}
_MS = {"US": 1e-3, "MS": 1, "S": 1000}
_NUMBER = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?|[-+]?\.\d+)\s*([A-Za-z]*)\s*$")


def _parse(text: str, units: dict[str, float], what: str, example: str) -> float:
    m = _NUMBER.match(str(text))
    if not m:
        raise UserError(f"cannot read {what} '{text}': write a number with a unit, e.g. {example}")
    number, unit = float(m.group(1)), m.group(2).upper()
    if units is _BYTES and m.group(2).endswith("b"):
        raise UserError(f"{what} '{text}' ends in a small b, which means bits: budgets are bytes, written with a "
                        f"capital B, e.g. {m.group(1)}{m.group(2)[:-1].upper()}B (1 byte = 8 bits)")
    if unit not in units:
        raise UserError(f"{what} '{text}' needs a unit, e.g. {example}")
    if number < 0:
        raise UserError(f"{what} '{text}' is negative: budgets must be zero or more")
    return number * units[unit]


def parse_bytes(text: str) -> int:
    """``"250KB"`` -> 250000; KB = 1000 B, KiB = 1024 B."""
    return int(round(_parse(text, _BYTES, "memory budget", "250KB, 0.25MB or 256KiB")))


def parse_count(text: str) -> int:
    """``"60M"`` -> 60000000 (a MAC count; K/M/G are powers of 1000)."""
    return int(round(_parse(text, _COUNT, "MAC budget", "60M or 500K")))


def parse_latency_ms(text: str) -> float:
    """``"100ms"`` -> 100.0, ``"1.5s"`` -> 1500.0, ``"800us"`` -> 0.8 (milliseconds)."""
    return _parse(text, _MS, "latency budget", "100ms, 1.5s or 800us")
