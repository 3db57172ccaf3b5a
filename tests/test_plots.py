"""Tests for tuner/reporting/plots.py: figures render to RGB arrays of the right shape."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.reporting.plots import fig_to_rgb, plot_alignment, plot_gate, plot_mel, plot_metric_curves

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: plot_alignment(RNG.random((40, 12))),
        lambda: plot_mel(RNG.standard_normal((80, 50))),
        lambda: plot_gate(RNG.random(50), (np.arange(50) >= 45).astype(float)),
        lambda: plot_metric_curves({"t1": ([1, 2, 3], [1.0, 5.0, float("nan")]),
                                    "t2": ([1, 2], [2.0, 1.5])},
                                   "grad.norm", markers={"t1": [(2, "mutate")]},
                                   threshold=200.0, log_y=True),
        lambda: plot_metric_curves({}, "validation.loss"),
    ],
    ids=["alignment", "mel", "gate", "curves", "curves-empty"],
)
def test_figures_render_to_rgb(make) -> None:
    img = fig_to_rgb(make())
    assert img.dtype == np.uint8
    assert img.ndim == 3 and img.shape[2] == 3
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 0  # not a blank canvas


@pytest.mark.parametrize(
    "call, shape_text",
    [
        (lambda: plot_alignment(np.zeros(5)), "(5,)"),
        (lambda: plot_mel(np.zeros((2, 3, 4))), "(2, 3, 4)"),
        (lambda: plot_gate(np.zeros((3, 3)), np.zeros(3)), "(3, 3)"),
    ],
)
def test_wrong_rank_raises_with_shape(call, shape_text: str) -> None:
    with pytest.raises(ValueError, match=shape_text.replace("(", r"\(").replace(")", r"\)")):
        call()
