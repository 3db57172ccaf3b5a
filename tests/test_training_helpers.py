"""Loop helpers: best-metric bookkeeping (NaN ignored), device choice, config fingerprint."""

from __future__ import annotations

import math

import pytest
import torch

from tuner.training.helpers import config_fingerprint, resolve_device, update_best
from tuner.training.settings import TrainConfigError


@pytest.mark.parametrize("best, loss, score, expected", [
    ({}, 2.0, 0.3, {"validation.loss": 2.0, "validation.attention_score": 0.3}),
    ({"validation.loss": 1.0, "validation.attention_score": 0.5}, 2.0, 0.7,
     {"validation.loss": 1.0, "validation.attention_score": 0.7}),
    ({"validation.loss": 1.0, "validation.attention_score": 0.5}, math.nan, math.nan,
     {"validation.loss": 1.0, "validation.attention_score": 0.5}),
])
def test_update_best(best: dict, loss: float, score: float, expected: dict) -> None:
    update_best(best, {"validation.loss": loss, "validation.attention_score": score})
    assert best == expected


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainConfigError, match="'device' = 'cuda'"):
            resolve_device("cuda")


@pytest.mark.parametrize("a, b, same", [
    ({"x": 1, "y": 2}, {"y": 2, "x": 1}, True),
    ({"x": 1, "reset_attention": True}, {"x": 1}, False),
])
def test_config_fingerprint(a: dict, b: dict, same: bool) -> None:
    assert (config_fingerprint(a) == config_fingerprint(b)) == same
