"""Problem, the record every detection rule returns, and the helpers the rules share."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

SEVERITY_RANK = {"warning": 0, "serious": 1, "critical": 2}

GRAD_NORM = "grad.norm"
TRAIN_LOSS = "training.loss"
VAL_LOSS = "validation.loss"
GAP = "overfitting.gap"
ATTENTION = "validation.attention_score"
DIAGONALITY = "validation.diagonality"
GATE = "validation.gate_accuracy"
EARLY_STOP = "validation.early_stop_fraction"
SKIPPED = "training.skipped_steps"
OVERFLOWS = "training.overflow_steps"
INTERVAL_STEPS = "training.interval_steps"
RESTORED = "restored_from_nan"


@dataclass(frozen=True)
class Problem:
    """One detected problem. `message` names the metric, its value, the threshold and the step."""
    kind: str          # gradient_explosion | overfitting | stagnation | attention_collapse | ...
    severity: str      # warning | serious | critical
    metric: str        # contract metric name
    value: float
    threshold: float
    step: int          # validation.step of the result it was detected on
    message: str

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.severity]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fmt(x: float) -> str:
    """A number for a message: 200.0, 312.4, 0.0003657, nan, inf."""
    if not math.isfinite(x):
        return str(x)
    return f"{x:.1f}" if float(x).is_integer() and abs(x) < 1e6 else f"{x:.4g}"


def make_problem(kind: str, severity: str, metric: str, value: float, op: str, threshold: float,
                 step: int, note: str = "") -> Problem:
    """A Problem whose message reads "<metric> <value> <op> <threshold> (<severity>) at validation
    <step>[; note]"; an empty `op` reads "<metric> <value> is not finite (...)"."""
    extra = f"; {note}" if note else ""
    compared = f"{op} {fmt(threshold)}" if op else "is not finite"
    msg = f"{metric} {fmt(value)} {compared} ({severity}) at validation {step}{extra}"
    return Problem(kind, severity, metric, float(value), float(threshold), step, msg)


def held_for(values: Sequence[float], n: int, predicate: Callable[[float], bool]) -> bool:
    """True when the last `n` values all satisfy `predicate`."""
    return n > 0 and len(values) >= n and all(predicate(v) for v in values[-n:])
