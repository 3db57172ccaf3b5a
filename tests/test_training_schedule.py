"""LRSchedule: warm-up, exponential/cosine/constant decay, restart."""

from __future__ import annotations

import pytest

from tuner.training.schedule import LRSchedule


@pytest.mark.parametrize("kind, step, expected", [
    ("exponential", 0, 0.1),      # warm-up: lr * (s + 1) / W, W = 10
    ("exponential", 9, 1.0),
    ("exponential", 110, 0.5),    # halves every 100 steps after warm-up
    ("exponential", 10_000, 0.01),  # floor: lr * min_lr_ratio
    ("cosine", 10, 1.0),
    ("cosine", 60, 0.505),        # halfway: floor + (lr - floor) / 2
    ("cosine", 500, 0.01),
    ("constant", 5_000, 1.0),
])
def test_lr_formula(kind: str, step: int, expected: float) -> None:
    schedule = LRSchedule(kind, warmup_steps=10, decay_steps=100, min_lr_ratio=0.01)
    assert schedule.lr(1.0, step) == pytest.approx(expected)


@pytest.mark.parametrize("restart_at, step, expected", [(None, 200, 0.25), (200, 200, 0.1), (200, 209, 1.0)])
def test_restart_warms_up_again(restart_at: int | None, step: int, expected: float) -> None:
    schedule = LRSchedule("exponential", warmup_steps=10, decay_steps=95)
    if restart_at is not None:
        schedule.restart(restart_at)
    restored = LRSchedule("exponential", warmup_steps=10, decay_steps=95)
    restored.load_state_dict(schedule.state_dict())
    assert restored.lr(1.0, step) == pytest.approx(expected)
