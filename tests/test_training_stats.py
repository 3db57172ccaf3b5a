"""IntervalStats: grad norm and losses over the taken steps, skipped and overflow steps counted."""

from __future__ import annotations

import math

import pytest

from tuner.training.stats import IntervalStats, finite_mean, worst

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("values, expected", [
    ([1.0, 3.0, 2.0], 3.0), ([1.0, INF], INF), ([INF, NAN, 1.0], NAN), ([], NAN),
])
def test_worst(values: list[float], expected: float) -> None:
    assert worst(values) == expected or (math.isnan(expected) and math.isnan(worst(values)))


@pytest.mark.parametrize("values, expected", [([1.0, 3.0], 2.0), ([1.0, NAN, INF, 3.0], 2.0), ([NAN], NAN)])
def test_finite_mean(values: list[float], expected: float) -> None:
    assert finite_mean(values) == expected or (math.isnan(expected) and math.isnan(finite_mean(values)))


@pytest.mark.parametrize("steps, loss, norm, norm_mean, skipped", [
    ([(2.0, 1.0), (4.0, 3.0)], 3.0, 3.0, 2.0, 0),
    ([(2.0, 1.0), (NAN, NAN)], 2.0, 1.0, 1.0, 1),   # a skipped NaN step: taken steps only
    ([(NAN, NAN)], NAN, NAN, NAN, 1),               # nothing taken: NaN, and the share says why
    ([(2.0, INF), (4.0, 1.0)], 4.0, 1.0, 1.0, 1),   # an infinite norm is a skipped step too
])
def test_summary(steps: list[tuple[float, float]], loss: float, norm: float, norm_mean: float,
                 skipped: int) -> None:
    stats = IntervalStats()
    for total, grad_norm in steps:
        stats.add({"total": total, "mel": total / 2, "mel_postnet": total / 2, "gate": 0.0,
                   "guided_attention": 0.0}, grad_norm)
    got = stats.summary()
    for key, want in (("training.loss", loss), ("grad.norm", norm), ("grad.norm_mean", norm_mean)):
        assert got[key] == want or (math.isnan(want) and math.isnan(got[key])), key
    assert (got["training.skipped_steps"], got["training.interval_steps"]) == (skipped, len(steps))
    assert got["training.overflow_steps"] == 0
    stats.reset()
    assert math.isnan(stats.summary()["grad.norm"])
    assert stats.summary()["training.interval_steps"] == 0


def test_overflow_steps_are_skipped_and_counted_apart() -> None:
    stats = IntervalStats()
    terms = {"total": 2.0, "mel": 1.0, "mel_postnet": 1.0, "gate": 0.0, "guided_attention": 0.0}
    stats.add(terms, INF, skipped=True, overflow=True)   # GradScaler: finite loss, scaled grads overflowed
    stats.add(terms, 3.0)
    got = stats.summary()
    assert (got["training.skipped_steps"], got["training.overflow_steps"], got["grad.norm"]) == (1, 1, 3.0)
