"""Benchmarks behind ``mcunas bench``; each module registers one subcommand."""

import statistics
import time
from typing import Callable


def require_at_least_one(args, *flags: str) -> None:
    """Refuse a count below 1 before any work: a benchmark would print negative or empty rates."""
    from mcunas.errors import UserError

    for flag in flags:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")


def median_rate(work: Callable[[], int], repeats: int) -> tuple[float, list[float]]:
    """Run ``work`` (which returns how many items it did) ``repeats`` times.

    Returns the median items/s and every run's rate, so noisy shared machines
    show their spread instead of one lucky number.
    """
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        items = work()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates), rates
