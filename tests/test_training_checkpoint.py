"""Checkpoint files and RNG states: weights_only loading, RNG round trip."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tuner.training.checkpoint import (
    capture_rng, from_bytes, load_checkpoint, restore_rng, save_checkpoint, to_bytes,
)


def draws() -> tuple[float, float, float]:
    return float(torch.rand(())), float(np.random.rand()), random.random()


def test_rng_round_trip_through_a_weights_only_file(tmp_path: Path) -> None:
    np.random.randn()  # leave a cached gaussian in numpy's state
    save_checkpoint({"rng": capture_rng(), "step": 3}, tmp_path)
    expected = draws()
    state = load_checkpoint(tmp_path)  # weights_only=True inside
    restore_rng(state["rng"])
    assert draws() == expected
    assert state["step"] == 3


@pytest.mark.parametrize("state", [{"a": torch.arange(3), "b": [1, 2.5, None], "c": {"d": "x"}}])
def test_bytes_round_trip(state: dict) -> None:
    back = from_bytes(to_bytes(state))
    assert torch.equal(back["a"], state["a"]) and back["b"] == state["b"] and back["c"] == state["c"]


def test_missing_checkpoint_file_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_checkpoint(tmp_path)
