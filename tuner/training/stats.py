"""Per-interval training statistics: what one report says about the steps since the last one.

NaN policy (the rules downstream need the signal, so nothing non-finite is turned into 0):

- ``grad.norm`` = the worst pre-clip norm of the interval: NaN if any step's norm was NaN, else
  the max (``inf`` when any was infinite). NaN if the interval had no steps.
- ``grad.norm_mean`` = the mean of the interval's finite norms; NaN when none was finite.
- ``training.loss`` and ``training.loss_<term>`` = the mean over the steps whose total loss was
  finite (the steps that were applied); NaN when none was.
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
        self.norms: list[float] = []
        self.terms: list[Mapping[str, float]] = []
        self.seconds = 0.0

    def add(self, terms: Mapping[str, float], grad_norm: float, seconds: float = 0.0) -> None:
        """One step: its loss terms (``LOSS_TERMS`` keys, plain floats), pre-clip norm, wall time."""
        self.terms.append(dict(terms))
        self.norms.append(float(grad_norm))
        self.seconds += float(seconds)

    def summary(self) -> dict[str, float]:
        """The interval's training metrics (names as reported, see the module docstring)."""
        applied = [t for t in self.terms if math.isfinite(t["total"])]
        out = {
            "grad.norm": worst(self.norms),
            "grad.norm_mean": finite_mean(self.norms),
            "training.loss": finite_mean(t["total"] for t in applied),
            "training.steps_per_s": len(self.terms) / self.seconds if self.seconds > 0 else math.nan,
        }
        for name in LOSS_TERMS[1:]:
            out[f"training.loss_{name}"] = finite_mean(t[name] for t in applied)
        return out

    def reset(self) -> None:
        self.norms.clear()
        self.terms.clear()
        self.seconds = 0.0
