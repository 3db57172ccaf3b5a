"""Ray-free test factories: the contract metrics of the quadratic test run and the Smart Tuner
config of the scheduler tests. The Supervisor's own tests use them without importing Ray;
tests/e2e_helpers.py's Ray trainables report the same metrics.

The quadratic run: ``training.loss = 0.2 + 4.0 * exp(-0.5 * lr * step)`` at validation ``step``.
"""

from __future__ import annotations

import math
from typing import Any

# Smart Tuner config of the scheduler tests: recovery allowed from the first validation, seeded Optuna.
SMART_TEST_CONFIG: dict[str, Any] = {
    "training_recovery": {"min_training_time": 0, "min_validation_steps": 1},
    "optuna": {"seed": 0},
}


def quadratic_metrics(step: int, lr: float, exploded: bool, nan: bool = False) -> dict[str, float]:
    """The contract metrics at validation ``step`` (plain floats).

    exploded: grad.norm 500 (critical) and losses 0.5 higher; nan: losses and grad.norm NaN.
    """
    decay = math.exp(-0.5 * lr * step)
    train = 0.2 + 4.0 * decay + (0.5 if exploded else 0.0)
    if nan:
        train = math.nan
    val = train + 0.05
    grad = 500.0 if exploded else 2.0 + 10.0 * lr * decay
    return {
        "training.loss": train,
        "validation.loss": val,
        "grad.norm": math.nan if nan else grad,
        "validation.attention_score": 0.8,
        "validation.gate_accuracy": 0.9,
        "overfitting.gap": val - train,
        "validation.step": float(step),
    }
