"""The live view of a campaign: trained / rejected / failed, best so far, elapsed and ETA.

One line per trained or failed candidate and per epoch; rejections, which can
arrive hundreds per second, are summarised at most once a second.  Lines go
to stderr so ``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

import sys
import time

from mcunas.output import format_duration


class Progress:
    def __init__(self, n_trials: int, timeout_s: float | None, share_fits: float, stream=None, scoring: bool = False):
        """``scoring``: candidates are scored with a supernet (``mcunas search --supernet``), not trained."""
        self.n_trials, self.timeout_s = n_trials, timeout_s
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.n_trained = self.n_rejected = self.n_failed = 0
        self.best: tuple[float, str] | None = None
        self.best_label, self.done_label = ("supernet", "scored") if scoring else ("int8", "trained")
        self._last_line = 0.0
        self.note(f"{share_fits:.1%} of the space fits the budget (1,000 random samples)")

    def _status(self) -> str:
        elapsed = time.monotonic() - self.start
        eta = ""
        if self.n_trained:
            remaining = elapsed / self.n_trained * (self.n_trials - self.n_trained)
            if self.timeout_s is not None:
                remaining = min(remaining, max(0.0, self.timeout_s - elapsed))
            eta = f", ETA {format_duration(remaining)}"
        best = f" | best {self.best_label} {self.best[0]:.3f} (trial {self.best[1]})" if self.best else ""
        return (f"[{self.done_label} {self.n_trained}/{self.n_trials}, rejected {self.n_rejected}, "
                f"failed {self.n_failed}{best} | {format_duration(elapsed)} elapsed{eta}]")

    def note(self, text: str) -> None:
        print(f"mcunas: {text}", file=self.stream, flush=True)

    def _throttled(self, text: str) -> None:
        """Print at most one such line a second (rejections can come hundreds a second)."""
        now = time.monotonic()
        if now - self._last_line >= 1.0:
            self._last_line = now
            self.note(text)

    def rejected(self, number: int, reasons: list[str]) -> None:
        self.n_rejected += 1
        self._throttled(f"trial {number} rejected before training: {reasons[0]} {self._status()}")

    def epoch(self, number: int, epoch: int, accuracy: float) -> None:
        self.note(f"trial {number} epoch {epoch}: float val accuracy {accuracy:.3f}")

    def trained(self, number: int, arch: str, result: dict | None) -> None:
        self.n_trained += 1
        if result is None:
            self._throttled(f"trial {number} fits: {arch} {self._status()}")
            return
        acc = result["int8_accuracy"]
        if self.best is None or acc > self.best[0]:
            self.best = (acc, str(number))
        test = result.get("test_accuracy")
        self.note(f"trial {number} int8 val {acc:.3f}" + (f" test {test:.3f}" if test is not None else "")
                  + f" (float {result['float_accuracy']:.3f}, "
                  f"{result['train_s']:.0f}s): {arch} {self._status()}")

    def failed(self, number: int, reason: str) -> None:
        self.n_failed += 1
        self.note(f"trial {number} failed: {reason} {self._status()}")

    def scored(self, number: int, arch: str, result: dict) -> None:
        """A candidate scored with supernet weights (``mcunas search --supernet``): one line each, as trained ones."""
        self.n_trained += 1
        acc = result["supernet_accuracy"]
        if self.best is None or acc > self.best[0]:
            self.best = (acc, str(number))
        self.note(f"trial {number} supernet val {acc:.3f} ({result['score_s']:.1f}s): {arch} {self._status()}")
