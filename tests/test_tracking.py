"""Tests for tuner/reporting/tracking.py: TrialBoard writes real TensorBoard event files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tuner.reporting.tracking import TrialBoard


def test_trial_board_writes_scalars_and_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    board = TrialBoard(tmp_path / "tb")
    board.log_scalars(10, {"validation.loss": 1.5, "grad.norm": 3.0, "note": "skip"})
    board.log_scalars(20, {"validation.loss": 1.2, "grad.norm": float("nan")})
    board.log_validation(20, rng.random((30, 10)), rng.random((80, 30)), rng.random((80, 30)),
                         rng.random(30), (np.arange(30) >= 28).astype(float))
    board.close()
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"validation.loss", "grad.norm"} <= set(tags["scalars"])
    assert "note" not in tags["scalars"]
    assert {"validation/alignment", "validation/mel", "validation/gate"} <= set(tags["images"])
    assert [e.step for e in acc.Scalars("validation.loss")] == [10, 20]
    assert np.isnan(acc.Scalars("grad.norm")[1].value)
    img = acc.Images("validation/mel")[0]
    assert img.step == 20 and img.height > img.width / 2  # target stacked above prediction
