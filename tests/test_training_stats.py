"""IntervalStats: worst grad norm (NaN/inf kept), means over applied steps."""

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


@pytest.mark.parametrize("steps, loss, norm, norm_mean", [
    ([(2.0, 1.0), (4.0, 3.0)], 3.0, 3.0, 2.0),
    ([(2.0, 1.0), (NAN, NAN)], 2.0, NAN, 1.0),   # a skipped NaN step: loss from applied steps only
    ([(NAN, NAN)], NAN, NAN, NAN),
    ([(2.0, INF), (4.0, 1.0)], 3.0, INF, 1.0),
])
def test_summary(steps: list[tuple[float, float]], loss: float, norm: float, norm_mean: float) -> None:
    stats = IntervalStats()
    for total, grad_norm in steps:
        stats.add({"total": total, "mel": total / 2, "mel_postnet": total / 2, "gate": 0.0,
                   "guided_attention": 0.0}, grad_norm)
    got = stats.summary()
    for key, want in (("training.loss", loss), ("grad.norm", norm), ("grad.norm_mean", norm_mean)):
        assert got[key] == want or (math.isnan(want) and math.isnan(got[key])), key
    stats.reset()
    assert math.isnan(stats.summary()["grad.norm"])
