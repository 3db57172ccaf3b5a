"""Integration test of tuner/raytune/_ray_compat.py on real Ray Tune (the only Ray internals we use).

A FIFO scheduler subclass watches ``quadratic_trainable`` (one checkpoint per report) and checks:
(a) inside on_trial_result for result N the latest registered checkpoint is the one of result N-1;
(b) mutate_trial pauses the trial, replaces its config and resumes it from an OLDER checkpoint,
    with the trainable's step counter and Ray's training_iteration continuing from there;
(c) protect_checkpoint keeps that older checkpoint alive under CheckpointConfig(num_to_keep=1),
    and release_checkpoint deletes it afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402
from ray.tune.schedulers import FIFOScheduler, TrialScheduler  # noqa: E402

from tests.e2e_helpers import quadratic_trainable, read_step_log, start_local_ray  # noqa: E402
from tuner.raytune import _ray_compat  # noqa: E402

pytestmark = pytest.mark.ray

ROLLBACK_AT, ROLLBACK_TO = 5, 2


@pytest.fixture(scope="module")
def ray_local():
    start_local_ray()
    yield
    ray.shutdown()


class _RollbackOnce(FIFOScheduler):
    """At result ROLLBACK_AT, roll the trial back to the checkpoint of result ROLLBACK_TO."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int | None, int]] = []  # (result step, latest ckpt step, iteration)
        self.kept: tuple[Any, dict] | None = None
        self.mutated = False
        self.exp_dir: Path | None = None
        self.kept_alive_at_end = False
        self.released = False

    def on_trial_add(self, tune_controller, trial) -> None:
        self.exp_dir = _ray_compat.experiment_dir(trial)

    def on_trial_result(self, tune_controller, trial, result) -> str:
        latest = _ray_compat.latest_checkpoint(trial)
        latest_step = None if latest is None else int(latest[1]["validation.step"])
        step = int(result["validation.step"])
        self.seen.append((step, latest_step, int(result["training_iteration"])))
        if latest_step == ROLLBACK_TO and not self.mutated:
            self.kept = latest
            _ray_compat.protect_checkpoint(trial, latest[0])
        if step == ROLLBACK_AT and not self.mutated:
            self.mutated = True
            new_config = {**trial.config, "learning_rate": trial.config["learning_rate"] / 2}
            _ray_compat.mutate_trial(tune_controller, trial, new_config, *self.kept)
            return TrialScheduler.NOOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result) -> None:
        kept = self.kept[0]
        self.kept_alive_at_end = Path(_ray_compat.checkpoint_path(kept)).is_dir()
        self.released = _ray_compat.release_checkpoint(trial, kept)


def test_mutate_trial_rolls_back_to_an_older_checkpoint(ray_local, tmp_path: Path) -> None:
    scheduler = _RollbackOnce()
    config = {"learning_rate": 0.2, "max_steps": 7, "log_dir": str(tmp_path)}
    tuner = tune.Tuner(
        quadratic_trainable,
        param_space=config,
        tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=1),
        run_config=tune.RunConfig(
            name="compat", storage_path=str(tmp_path / "results"), verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )
    grid = tuner.fit()
    result = grid[0]
    assert result.error is None
    steps = [(r["step"], r["learning_rate"], r["restored_from"]) for r in read_step_log(tmp_path)]
    assert steps == [
        (1, 0.2, None), (2, 0.2, None), (3, 0.2, None), (4, 0.2, None), (5, 0.2, None),
        (3, 0.1, 2), (4, 0.1, 2), (5, 0.1, 2), (6, 0.1, 2), (7, 0.1, 2),
    ]
    # (a) the checkpoint of result N is registered only after on_trial_result(N)
    assert [(s, c) for s, c, _ in scheduler.seen[:5]] == [(1, None), (2, 1), (3, 2), (4, 3), (5, 4)]
    # (b) Ray's iteration counter continues from the restored checkpoint's
    assert [it for _, _, it in scheduler.seen] == [1, 2, 3, 4, 5, 3, 4, 5, 6, 7]
    assert result.config["learning_rate"] == 0.1
    assert scheduler.exp_dir == tmp_path / "results" / "compat"
    # (c) the protected checkpoint survived num_to_keep=1; releasing it deletes it
    assert scheduler.kept_alive_at_end and scheduler.released
    assert not Path(_ray_compat.checkpoint_path(scheduler.kept[0])).exists()
