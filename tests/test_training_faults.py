"""FaultInjector: NaN loss step, LR-dependent gradient explosion, NaN parameters, transient LR spike."""

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


SPIKE = {"lr_spike_at_step": 10, "lr_spike_steps": 3, "lr_spike_factor": 20.0}   # window: steps 10, 11, 12


@pytest.mark.parametrize("inject, fired, step, factor, firing", [
    (SPIKE, frozenset(), 9, 1.0, set()),                      # before the window
    (SPIKE, frozenset(), 10, 20.0, set()),                    # its first step
    (SPIKE, frozenset(), 11, 20.0, set()),                    # inside
    (SPIKE, frozenset(), 12, 20.0, {"lr_spike_at_step"}),     # its last step: recorded as fired
    (SPIKE, frozenset(), 13, 1.0, set()),                     # after
    (SPIKE, frozenset({"lr_spike_at_step"}), 11, 1.0, set()),  # fired before (rolled back): no spike
    (SPIKE, frozenset({"lr_spike_at_step"}), 12, 1.0, set()),
    ({"lr_spike_at_step": 10}, frozenset(), 59, 20.0, {"lr_spike_at_step"}),  # defaults: 50 steps, x20
    ({"lr_spike_at_step": 10}, frozenset(), 60, 1.0, set()),
    ({"lr_spike_at_step": 0}, frozenset(), 1, 1.0, set()),    # S = 0: off
    ({}, frozenset(), 10, 1.0, set()),
])
def test_lr_spike_window(inject: dict[str, float], fired: frozenset[str], step: int, factor: float,
                         firing: set[str]) -> None:
    faults = FaultInjector(inject, learning_rate=1e-3, initial_learning_rate=1e-3, fired=fired)
    assert faults.lr_factor(step) == factor
    assert faults.firing(step) == firing


@pytest.mark.parametrize("learning_rate", [1e-3, 1e-4])
def test_lr_spike_end_depends_on_no_learning_rate(learning_rate: float) -> None:
    """A scheduler that lowers the learning rate neither ends nor shortens the spike."""
    faults = FaultInjector(SPIKE, learning_rate=learning_rate, initial_learning_rate=1e-3)
    assert [faults.lr_factor(s) for s in range(9, 14)] == [1.0, 20.0, 20.0, 20.0, 1.0]
