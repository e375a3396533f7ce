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


def stage(text: str) -> None:
    """One ``mcunas: ...`` line on stderr saying which step of a command is running.

    For steps that take seconds with nothing else to show (importing TensorFlow, the int8
    conversion, a TFLM measurement): the user sees the command is alive and where the time goes,
    and stdout keeps only the figures (``--json`` stays parseable).
    """
    print(f"mcunas: {text}", file=sys.stderr, flush=True)


def progress_bar(total: int, label: str, unit: str = "img"):
    """A tqdm bar on stderr for work that takes more than a few seconds (drawn only on a terminal).

    Used by every long loop (data builds, the demo set, benchmarks) so they look and behave alike.
    """
    from tqdm import tqdm

    return tqdm(total=total, desc=f"mcunas: {label}", unit=unit, file=sys.stderr, disable=None)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 candidate``, ``2 candidates``, ``1,000 images``: a count with its noun in the right number."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def format_duration(seconds: float) -> str:
    """``45s``, ``1m05s``, ``20m``, ``1h30m``, ``2h``: durations as ``--timeout`` reads them, zero parts left out.

    The one format of the live view (elapsed, ETA), the final lines and the worker's limit messages.
    """
    whole = max(0, round(seconds))
    parts = [(whole // 3600, "h"), (whole % 3600 // 60, "m"), (whole % 60, "s")]
    while parts and parts[0][0] == 0:  # no leading zero parts ...
        parts.pop(0)
    while parts and parts[-1][0] == 0:  # ... nor trailing ones
        parts.pop()
    return "".join(f"{n}{unit}" if i == 0 else f"{n:02d}{unit}" for i, (n, unit) in enumerate(parts)) or "0s"
