"""Per-interval training statistics: what one report says about the steps since the last one.

NaN policy (the rules downstream need the signal, so nothing non-finite is turned into 0):

- A *skipped* step is one the loop did not apply (non-finite loss or pre-clip norm; with fp16 also
  a GradScaler loss-scale overflow, which the scaler answers by lowering its scale).
  ``training.skipped_steps`` counts them, ``training.overflow_steps`` the GradScaler overflows among
  them, ``training.interval_steps`` all steps of the interval (taken + skipped).
- ``grad.norm`` = the largest pre-clip norm of the steps that were taken (a skipped step's NaN
  does not hide the norms of the others: the explosion rule reads the skipped share instead);
  NaN when no step was taken.
- ``grad.norm_mean`` = the mean of the taken steps' norms; NaN when none was taken.
- ``training.loss`` and ``training.loss_<term>`` = the mean over the taken steps; NaN when none
  was.
- ``training.steps_per_s`` = steps / their summed wall time (validation excluded); NaN without time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

__all__ = ["IntervalStats", "worst", "finite_mean"]

LOSS_TERMS = ("total", "mel", "mel_postnet", "gate", "guided_attention")


def worst(values: Iterable[float]) -> float:
    """NaN if any value is NaN (or there are none), else the max."""
    vals = list(values)
    if not vals or any(math.isnan(v) for v in vals):
        return math.nan
    return max(vals)


def finite_mean(values: Iterable[float]) -> float:
    """Mean of the finite values; NaN when there are none."""
    vals = [v for v in values if math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


class IntervalStats:
    """Collects step losses and grad norms between two reports."""

    def __init__(self) -> None:
        self.norms: list[float] = []  # taken steps only
        self.terms: list[Mapping[str, float]] = []  # taken steps only
        self.steps = self.skipped = self.overflows = 0
        self.seconds = 0.0

    def add(self, terms: Mapping[str, float], grad_norm: float, seconds: float = 0.0,
            skipped: bool | None = None, overflow: bool = False) -> None:
        """One step: its loss terms (``LOSS_TERMS`` keys, plain floats), pre-clip norm, wall time,
        whether the loop skipped it (default: its loss or norm was non-finite) and whether that was
        a GradScaler overflow."""
        if skipped is None:
            skipped = not (math.isfinite(terms["total"]) and math.isfinite(grad_norm))
        self.steps += 1
        self.seconds += float(seconds)
        if skipped:
            self.skipped += 1
            self.overflows += int(overflow)
            return
        self.terms.append(dict(terms))
        self.norms.append(float(grad_norm))

    def summary(self) -> dict[str, float]:
        """The interval's training metrics (names as reported, see the module docstring)."""
        applied = [t for t in self.terms if math.isfinite(t["total"])]
        out = {
            "grad.norm": max(self.norms) if self.norms else math.nan,
            "grad.norm_mean": finite_mean(self.norms),
            "training.loss": finite_mean(t["total"] for t in applied),
            "training.skipped_steps": float(self.skipped),
            "training.overflow_steps": float(self.overflows),
            "training.interval_steps": float(self.steps),
            "training.steps_per_s": self.steps / self.seconds if self.seconds > 0 else math.nan,
        }
        for name in LOSS_TERMS[1:]:
            out[f"training.loss_{name}"] = finite_mean(t[name] for t in applied)
        return out

    def reset(self) -> None:
        self.norms.clear()
        self.terms.clear()
        self.steps = self.skipped = self.overflows = 0
        self.seconds = 0.0
