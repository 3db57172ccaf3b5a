"""Problem, the record every detection rule returns, and the helpers the rules share."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

from tuner.contract import (ATTENTION_SCORE as ATTENTION, DIAGONALITY, EARLY_STOP_FRACTION as EARLY_STOP,
                            GATE_ACCURACY as GATE, GRAD_NORM, OVERFITTING_GAP as GAP,
                            INTERVAL_STEPS, OVERFLOW_STEPS as OVERFLOWS, RESTORED_FROM_NAN as RESTORED,
                            SKIPPED_STEPS as SKIPPED, TRAINING_LOSS as TRAIN_LOSS,
                            VALIDATION_LOSS as VAL_LOSS, fmt)

SEVERITY_RANK = {"warning": 0, "serious": 1, "critical": 2}


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
