"""Small helpers of the trial loop: device choice, seeding, config fingerprint, best metrics."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from tuner.training.settings import TrainConfigError

__all__ = ["NonFiniteParametersError", "config_fingerprint", "seed_all", "update_best", "resolve_device"]


class NonFiniteParametersError(RuntimeError):
    """Parameters kept turning non-finite after in-process restores."""


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """A stable string of the trial config (compared on restore to spot a mutation)."""
    return json.dumps(dict(config), sort_keys=True, default=str)


def seed_all(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def update_best(best: dict[str, float], metrics: Mapping[str, float]) -> None:
    """Lowest validation.loss and highest validation.attention_score so far (finite values only)."""
    for key, better in (("validation.loss", min), ("validation.attention_score", max)):
        value = metrics[key]
        if math.isfinite(value):
            best[key] = better(best.get(key, value), value)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when visible, else CPU; ``cuda`` without a CUDA device is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainConfigError(
            "train_tts config key 'device' = 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'"
        )
    return torch.device(name)
