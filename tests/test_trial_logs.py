"""tuner/reporting/trial_logs.py: a continued ``progress.csv`` keeps its columns (real Ray Trial and logger)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tuner.contract import CHECKPOINT_RESTORED
from tuner.reporting.trial_logs import KeepingCSVLogger


@pytest.mark.ray
def test_a_report_with_a_new_key_does_not_shift_the_columns_of_a_continued_file(
        tmp_path: Path) -> None:
    from ray.train._internal.storage import StorageContext
    from ray.tune import register_trainable
    from ray.tune.experiment import Trial

    from tests.e2e_helpers import start_local_ray

    start_local_ray()   # a Trial's driver-side folder lives in the Ray session
    register_trainable("trial_logs_noop", lambda config: None)
    storage = StorageContext(storage_path=str(tmp_path / "runs"), experiment_dir_name="exp",
                             trial_dir_name="t1")
    trial = Trial("trial_logs_noop", config={}, storage=storage, trial_id="t1")
    logger = KeepingCSVLogger()
    logger.log_trial_result(1, trial, {"validation.step": 1.0, "validation.loss": 2.0})
    logger.log_trial_end(trial, failed=True)   # the trial errored: its retry gets a new writer
    logger.log_trial_result(2, trial, {"validation.step": 2.0, CHECKPOINT_RESTORED: "/c/000001",
                                       "validation.loss": 1.5})
    logger.log_trial_end(trial)
    with open(Path(trial.local_path, "progress.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows == [{"validation.step": "1.0", "validation.loss": "2.0"},
                    {"validation.step": "2.0", "validation.loss": "1.5"}]
