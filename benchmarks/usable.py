"""The one definition of a *usable* model, used by every tier of the benchmark.

A trial's model is usable when all of these hold for it (issue 8):

- finite: validation.loss (and grad.norm, when given) are finite numbers;
- aligned: validation.attention_score >= ``ATTENTION_MIN`` (0.5);
- gate working: validation.gate_accuracy >= ``GATE_MIN``, the gate rule's *warning* threshold
  in tuner/core/config.yaml (``diagnostics.gate.warning``, 0.4; read from the packaged defaults, not
  from a user file);
- at target: its clean validation.loss <= the scenario's target. "Clean" is the loss without
  measurement noise: on the surrogate the noise-free curve (``SurrogateTrial.clean_metrics``),
  on real trials the reported validation.loss itself.

The surrogate judges a trial on its state when it ends (finished, stopped, or running when the
budget ran out); real tiers on the trial's last report.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import yaml

ATTENTION_MIN = 0.5


def _gate_warning() -> float:
    path = Path(__file__).resolve().parent.parent / "tuner" / "core" / "config.yaml"
    try:
        return float(yaml.safe_load(path.read_text())["diagnostics"]["gate"]["warning"])
    except (OSError, KeyError, TypeError, ValueError):
        return 0.4


GATE_MIN = _gate_warning()


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def why_unusable(metrics: Mapping[str, Any] | None, target: float) -> str | None:
    """None when ``metrics`` (a trial's final, clean metrics) describe a usable model, else the reason."""
    if not metrics:
        return "no report"
    loss = metrics.get("validation.loss")
    if not _finite(loss) or ("grad.norm" in metrics and not _finite(metrics["grad.norm"])):
        return "not finite"
    attention = metrics.get("validation.attention_score")
    if not _finite(attention) or float(attention) < ATTENTION_MIN:
        return f"attention {attention} < {ATTENTION_MIN}"
    gate = metrics.get("validation.gate_accuracy")
    if not _finite(gate) or float(gate) < GATE_MIN:
        return f"gate accuracy {gate} < {GATE_MIN}"
    if float(loss) > target:
        return f"validation.loss {float(loss):.4g} > target {target}"
    return None


def is_usable(metrics: Mapping[str, Any] | None, target: float) -> bool:
    """The definition above, as a predicate."""
    return why_unusable(metrics, target) is None
