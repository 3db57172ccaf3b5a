"""FaultInjector: NaN loss step, LR-dependent gradient explosion, NaN parameters."""

from __future__ import annotations

import math

import pytest

from tuner.training.faults import FaultInjector


@pytest.mark.parametrize("inject, lr, step, loss_nan, grad_factor", [
    ({}, 1e-3, 5, False, 1.0),
    ({"nan_at_step": 5}, 1e-3, 5, True, 1.0),
    ({"nan_at_step": 5}, 1e-3, 6, False, 1.0),
    ({"explode_after_step": 5, "explode_lr_threshold": 5e-4}, 1e-3, 4, False, 1.0),
    ({"explode_after_step": 5, "explode_lr_threshold": 5e-4}, 1e-3, 9, False, 1e4),
    ({"explode_after_step": 5, "explode_lr_threshold": 5e-4}, 5e-4, 9, False, 1.0),  # cured by a lower LR
    ({"explode_lr_after_step": 5, "explode_factor": 10.0}, 1e-3, 5, False, 10.0),  # default threshold 0.75 x 1e-3
    ({"explode_lr_after_step": 5, "explode_factor": 10.0}, 5e-4, 5, False, 1.0),  # halving the LR cures it
])
def test_faults(inject: dict[str, float], lr: float, step: int, loss_nan: bool, grad_factor: float) -> None:
    faults = FaultInjector(inject, learning_rate=lr, initial_learning_rate=1e-3)
    assert math.isnan(faults.loss_factor(step)) == loss_nan
    assert faults.grad_factor(step) == grad_factor


@pytest.mark.parametrize("inject, step, expected", [({"nan_params_at_step": 3}, 3, True), ({}, 3, False)])
def test_corrupt_params(inject: dict[str, float], step: int, expected: bool) -> None:
    assert FaultInjector(inject, 1e-3, 1e-3).corrupt_params(step) == expected


def test_one_shot_faults_do_not_fire_once_fired() -> None:
    fresh = FaultInjector({"nan_at_step": 5, "nan_params_at_step": 5}, 1e-3, 1e-3)
    assert fresh.firing(5) == {"nan_at_step", "nan_params_at_step"} and fresh.firing(4) == set()
    done = FaultInjector({"nan_at_step": 5, "nan_params_at_step": 5}, 1e-3, 1e-3,
                         frozenset({"nan_at_step", "nan_params_at_step"}))
    assert done.loss_factor(5) == 1.0 and not done.corrupt_params(5) and done.firing(5) == set()
