"""SmartScheduler: its own surface (search properties, pickling, debug string),
and on real Ray Tune the missing-metric error."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from tests.e2e_helpers import start_local_ray  # noqa: E402
from tests.factories import SMART_TEST_CONFIG, quadratic_metrics  # noqa: E402
from tuner.core.config import config_from_dict  # noqa: E402
from tuner.raytune.scheduler import SmartScheduler  # noqa: E402

CFG = config_from_dict(SMART_TEST_CONFIG)


def _drive(scheduler: SmartScheduler, kinds: list[str]) -> None:
    """Feed one fake trial's results straight to the scheduler's Supervisor."""
    config = {"learning_rate": 0.4}
    for step, kind in enumerate(kinds, start=1):
        action = scheduler.supervisor.on_result(
            "t1", config, quadratic_metrics(step, 0.4, kind == "boom"), f"/ckpt/{step}", float(step))
        config = action.new_config or config


@pytest.mark.parametrize("metric, mode", [(None, None), ("validation.loss", "min"),
                                          ("validation.attention_score", "max")])
def test_accepts_search_properties(metric: str | None, mode: str | None) -> None:
    scheduler = SmartScheduler(config=CFG)
    assert scheduler.set_search_properties(metric, mode) is True
    assert scheduler.metric == "validation.loss"


def test_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="sideways"):
        SmartScheduler(config=CFG).set_search_properties("validation.loss", "sideways")


@pytest.mark.parametrize("kinds, summary", [
    ([], "SmartScheduler: 0 interventions on 0 trials (none)"),
    (["ok", "boom"], "SmartScheduler: 1 interventions on 1 trials (mutate 1)"),
])
def test_debug_string(tmp_path: Path, kinds: list[str], summary: str) -> None:
    scheduler = SmartScheduler(config=CFG, experiment_dir=tmp_path, echo=False)
    _drive(scheduler, kinds)
    assert scheduler.debug_string() == summary


def test_pickle_carries_no_state_and_the_copy_reloads_the_journal(tmp_path: Path) -> None:
    scheduler = SmartScheduler(config=CFG, experiment_dir=tmp_path, echo=False)
    _drive(scheduler, ["ok", "ok", "boom"])
    blob = pickle.dumps(scheduler)
    assert b"/ckpt/" not in blob             # no state rides in tuner.pkl
    copy = pickle.loads(blob)
    assert copy.interventions == []          # nothing until a trial the journal knows is added
    trial = SimpleNamespace(trial_id="t1", config=scheduler.supervisor.expected_config("t1"))
    copy.on_trial_add(None, trial)
    assert copy.interventions == scheduler.interventions
    assert copy.supervisor.healthy_checkpoint("t1").checkpoint == "/ckpt/2"
    assert copy.supervisor.recoveries("t1") == 1


def _reports_no_grad_norm(config: dict) -> None:
    metrics = quadratic_metrics(1, 0.1, False)
    del metrics["grad.norm"]
    tune.report({**metrics, "my.extra": 1.0})


@pytest.mark.ray
def test_missing_metric_names_what_the_trial_reported(tmp_path: Path) -> None:
    start_local_ray()
    try:
        tuner = tune.Tuner(
            _reports_no_grad_norm,
            tune_config=tune.TuneConfig(scheduler=SmartScheduler(config=CFG, echo=False)),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="missing", verbose=0),
        )
        with pytest.raises(Exception, match=r"grad\.norm.*my\.extra"):
            tuner.fit()
    finally:
        ray.shutdown()



def _intervened_experiment(folder: Path) -> tuple[str, dict]:
    """A sweep folder whose state says trial "t1" was mutated (lr 0.4 -> <= 0.2) at validation 3."""
    first = SmartScheduler(config=CFG, experiment_dir=folder, echo=False)
    _drive(first, ["ok", "ok", "boom"])
    return "t1", first.supervisor.expected_config("t1")


@pytest.mark.parametrize("config_in_ray_snapshot, reapplied", [
    ("old", True),    # Ray's snapshot predates the intervention: give the trial its new config
    ("new", False),   # Ray already knew: nothing to do
])
def test_restore_reapplies_an_intervention_ray_did_not_snapshot(
        tmp_path: Path, config_in_ray_snapshot: str, reapplied: bool) -> None:
    from ray.tune.experiment import Trial

    trial_id, new_config = _intervened_experiment(tmp_path)
    config = {"learning_rate": 0.4} if config_in_ray_snapshot == "old" else dict(new_config)
    trial = Trial("quadratic", config=config, trial_id=trial_id, stub=True)
    resumed = SmartScheduler(config=CFG, experiment_dir=tmp_path, echo=False)
    resumed.on_trial_add(None, trial)   # a PENDING trial: no controller call is needed
    assert len(resumed.interventions) == 1 and resumed.supervisor.recoveries(trial_id) == 1
    assert trial.config["learning_rate"] == new_config["learning_rate"]
    assert (trial.checkpoint is not None and trial.checkpoint.path == "/ckpt/2") is reapplied


def test_a_new_sweep_in_an_old_folder_starts_clean(tmp_path: Path) -> None:
    from ray.tune.experiment import Trial

    _intervened_experiment(tmp_path)
    fresh = SmartScheduler(config=CFG, experiment_dir=tmp_path, echo=False)
    fresh.on_trial_add(None, Trial("quadratic", config={"learning_rate": 0.4}, stub=True))
    assert fresh.interventions == []
