"""Checkpoint files and RNG states: weights_only loading, RNG round trip."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tuner.training.checkpoint import (
    CHECKPOINT_FILE, CheckpointUnreadableError, capture_rng, from_bytes, load_checkpoint,
    load_readable_checkpoint, restore_rng, save_checkpoint, to_bytes,
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


def _spoil(folder: Path, how: str) -> None:
    path = folder / CHECKPOINT_FILE
    if how == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif how == "garbage":
        path.write_bytes(b"not a checkpoint")
    else:
        path.unlink()


# (checkpoints spoiled, checkpoint asked for, step restored or None when none is readable)
FALLBACK = [
    ({}, 3, 3),
    ({3: "truncate"}, 3, 2),
    ({3: "truncate", 2: "garbage"}, 3, 1),
    ({2: "missing"}, 2, 1),          # never the newer checkpoint_000003
    ({1: "truncate"}, 1, None),
    ({3: "garbage", 2: "truncate", 1: "missing"}, 3, None),
]


@pytest.mark.parametrize("spoiled, asked, restored", FALLBACK)
def test_an_unreadable_checkpoint_falls_back_to_the_newest_older_readable_one(
        tmp_path: Path, capsys: pytest.CaptureFixture, spoiled: dict, asked: int,
        restored: int | None) -> None:
    for step in (1, 2, 3):
        save_checkpoint({"step": step}, tmp_path / f"checkpoint_{step:06d}")
    for step, how in spoiled.items():
        _spoil(tmp_path / f"checkpoint_{step:06d}", how)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    asked_file = tmp_path / f"checkpoint_{asked:06d}" / CHECKPOINT_FILE
    if restored is None:
        with pytest.raises(CheckpointUnreadableError, match=f"checkpoint {asked_file} cannot be read"):
            load_readable_checkpoint(asked_file.parent)
    else:
        state, folder = load_readable_checkpoint(asked_file.parent)
        assert state["step"] == restored and folder == tmp_path / f"checkpoint_{restored:06d}"
    err = capsys.readouterr().err
    if restored is not None and restored != asked:
        assert err.count("\n") == 1 and err.startswith(f"smart-tuner: checkpoint {asked_file} cannot be read")
        assert f"restored the newest readable older one, {folder}" in err
    else:
        assert err == ""
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before   # nothing touched


def test_a_temporary_download_has_no_fallback(tmp_path: Path) -> None:
    """Ray downloads a remote checkpoint to ``checkpoint_tmp_<id>``: its neighbours in the
    temporary folder belong to other trials and are never read."""
    save_checkpoint({"step": 1}, tmp_path / "checkpoint_000001")
    save_checkpoint({"step": 9}, tmp_path / "checkpoint_tmp_0aa")
    save_checkpoint({"step": 2}, tmp_path / "checkpoint_tmp_1bb")
    _spoil(tmp_path / "checkpoint_tmp_1bb", "truncate")
    with pytest.raises(CheckpointUnreadableError, match="no older readable checkpoint"):
        load_readable_checkpoint(tmp_path / "checkpoint_tmp_1bb")


def test_the_message_names_the_newest_attempts_file(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    save_checkpoint({"step": 1}, tmp_path / "checkpoint_000001")
    save_checkpoint({"step": 2}, tmp_path / "checkpoint_000002", attempt=2)
    bad = tmp_path / "checkpoint_000002" / "checkpoint.attempt2.pt"
    bad.write_bytes(bad.read_bytes()[:100])
    state, _ = load_readable_checkpoint(tmp_path / "checkpoint_000002")
    assert state["step"] == 1
    assert capsys.readouterr().err.startswith(f"smart-tuner: checkpoint {bad} cannot be read")
