"""Tests for tuner/mlflow_callback.py: a tiny real Tuner logging to a real SQLite MLflow store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tuner.mlflow_callback import MLflowCallback, default_tracking_uri, flatten_config


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"a": 1, "b": "x"}, {"a": "1", "b": "x"}),
        ({"model": {"attention_dim": 128, "p": {"q": 0.5}}}, {"model.attention_dim": "128", "model.p.q": "0.5"}),
        ({}, {}),
    ],
)
def test_flatten_config(config: dict, expected: dict) -> None:
    assert flatten_config(config) == expected


@pytest.mark.parametrize("env, expected_prefix", [(None, "sqlite:///"), ("http://mlflow:5000", "http://mlflow:5000")])
def test_default_tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str | None,
                              expected_prefix: str) -> None:
    if env is None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", env)
    uri = default_tracking_uri(tmp_path)
    assert uri.startswith(expected_prefix)
    if env is None:
        assert uri.endswith(str(tmp_path.resolve() / "mlflow.db"))


def _trainable(config: dict) -> None:
    from ray import tune

    for step in range(1, 4):
        loss = float("nan") if config["explode"] and step == 3 else 1.0 / step
        tune.report({"validation.loss": loss, "validation.step": step, "grad.norm": 2.0 * step})


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_real_tuner_logs_runs_metrics_and_interventions(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import ray
    from ray import tune

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        callback = MLflowCallback(experiment_name="exp")
        tuner = tune.Tuner(
            _trainable,
            param_space={"explode": tune.grid_search([False, True]), "learning_rate": 1e-3,
                         "model": {"attention_dim": 16}},
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", callbacks=[callback],
                                      verbose=0),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
    assert len(grid) == 2
    exp_dir = tmp_path / "exp"
    assert (exp_dir / "mlflow.db").is_file()
    assert callback.tracking_uri == f"sqlite:///{exp_dir.resolve() / 'mlflow.db'}"
    assert len(callback.run_ids) == 2

    # An intervention arriving from the Supervisor goes to its trial's run, once: the same record
    # read back from interventions.jsonl is not logged again; one only in the file is.
    from tuner.interventions import Intervention, append_jsonl

    trial_id, other_id = list(callback.run_ids)
    first = Intervention.create(trial_id, 2, 1.7e9, "mutate", old_config={"learning_rate": 3e-3},
                                new_config={"learning_rate": 1.2e-3}, rolled_back_to=1)
    second = Intervention.create(other_id, 3, 1.7e9 + 1, "stop", reasons=["budget spent"])
    callback.on_intervention(first)
    append_jsonl(exp_dir / "interventions.jsonl", first)
    append_jsonl(exp_dir / "interventions.jsonl", second)
    assert callback.sync_interventions() == 1
    assert callback.sync_interventions() == 0
    assert callback.intervention_counts == {trial_id: 1, other_id: 1}

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=callback.tracking_uri)
    exp = client.get_experiment_by_name("exp")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 2
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.params["learning_rate"] == "0.001"
        assert run.data.params["model.attention_dim"] == "16"
        history = client.get_metric_history(run.info.run_id, "validation.loss")
        assert [m.step for m in history] == [1, 2, 3]
        assert "config.learning_rate" in run.data.metrics
        if run.data.params["explode"] == "True":
            assert math.isnan(history[-1].value)
    run_id = callback.run_ids[trial_id]
    run = client.get_run(run_id)
    assert run.data.tags["smart_tuner.interventions"] == "1"
    assert run.data.tags["smart_tuner.last_action"] == "mutate"
    # Ray pickles callbacks into tuner.pkl; a restored callback finds the same runs again.
    import pickle

    restored = pickle.loads(pickle.dumps(callback))
    assert restored.run_ids == callback.run_ids and restored._client is None
    restored.log_result(type("T", (), {"trial_id": trial_id, "config": {}})(),
                        {"validation.step": 4, "validation.loss": 0.1})
    assert max(m.step for m in client.get_metric_history(run_id, "validation.loss")) == 4
    artifact = client.download_artifacts(run_id, "interventions/001_mutate_step2.json", str(tmp_path))
    assert json.loads(Path(artifact).read_text())["new_config"] == {"learning_rate": 1.2e-3}
