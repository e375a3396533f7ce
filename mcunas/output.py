"""Printing figures: aligned ``key: value`` lines for people, JSON for scripts."""

from __future__ import annotations

import json
import sys


def print_figures(figures: dict, as_json: bool) -> None:
    """Print a flat dict; integers get thousands separators in the human form."""
    if as_json:
        json.dump(figures, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            shown = value
        elif isinstance(value, int):
            shown = f"{value:,}"
        else:
            shown = f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"
        print(f"{key:<{width}}  {shown}")
