"""Tests for tuner/reporting/mlflow_callback.py: a tiny real Tuner logging to a real SQLite MLflow store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tuner.reporting.mlflow_callback import MLflowCallback, default_tracking_uri, flatten_config


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
    """3 reports at training steps 10/20/30; writes validation images into its trial folder and,
    for the exploding trial, an intervention record before its 2nd report (as the Supervisor does
    before Ray calls the callbacks)."""
    import matplotlib.image
    import numpy as np
    from ray import tune

    from tuner.core.interventions import Intervention, append_jsonl

    trial_dir = Path(tune.get_context().get_trial_dir())
    trial_id = tune.get_context().get_trial_id()
    for validation in range(1, 4):
        step = 10 * validation
        images = trial_dir / "validation_images"
        images.mkdir(parents=True, exist_ok=True)
        for kind in ("alignment", "mel", "gate"):
            matplotlib.image.imsave(images / f"step_{step:06d}_{kind}.png", np.zeros((4, 4, 3)))
        loss = float("nan") if config["explode"] and validation == 3 else 1.0 / validation
        if config["explode"] and validation == 2:
            append_jsonl(Path(config["experiment_dir"]) / "interventions.jsonl", Intervention.create(
                trial_id, validation, 1.7e9, "mutate",
                problems=[{"kind": "gradient_explosion", "severity": "critical",
                           "message": "grad.norm 312 > 200.0 (critical) at validation 2"}],
                old_config={"learning_rate": 1e-3}, new_config={"learning_rate": 4e-4},
                rolled_back_to=1))
        tune.report({"validation.loss": loss, "validation.step": validation,
                     "training.step": step, "grad.norm": 2.0 * validation})


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_mlflow_server(backend: str, port: int, log: Path):  # -> subprocess.Popen | None
    """``mlflow server`` on localhost; None when it does not answer within 120 s."""
    import subprocess
    import sys
    import time
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(1)
    _stop(proc)
    return None


def _stop(proc) -> None:  # noqa: ANN001
    """End the server and the workers it started (its own process group)."""
    import os
    import signal
    import subprocess

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass


def _rest(port: int, path: str, body: dict | None = None) -> dict:
    import urllib.request

    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/{path}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.ray
@pytest.mark.timeout(600)   # hang guard only: minutes on a loaded machine
def test_parent_and_child_runs_read_back_through_client_and_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray
    from mlflow.tracking import MlflowClient
    from ray import tune

    from tuner.reporting.mlflow_callback import log_sweep_summary

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing may appear in ./mlruns
    exp_dir = tmp_path / "exp"
    exp_dir.mkdir()
    (exp_dir / "smart_tuner_config.yaml").write_text("training_recovery: {min_training_time: 0}\n")
    # Ray's workers find `tests._trainable` through the driver's current folder, which is now
    # tmp_path: hand them the repository root instead
    repo = str(Path(__file__).resolve().parents[1])
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": repo}})
    try:
        callback = MLflowCallback(experiment_name="exp", experiment_dir=exp_dir)
        tune.Tuner(
            _trainable,
            param_space={"explode": tune.grid_search([False, True]), "learning_rate": 1e-3,
                         "model": {"attention_dim": 16}, "experiment_dir": str(exp_dir)},
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp",
                                      callbacks=[callback], verbose=0),
        ).fit()
    finally:
        ray.shutdown()
    assert not (tmp_path / "mlruns").exists()
    uri = f"sqlite:///{exp_dir.resolve() / 'mlflow.db'}"
    assert callback.tracking_uri == uri
    best_folder = tmp_path / "best"
    best_folder.mkdir()
    (best_folder / "checkpoint.pt").write_bytes(b"weights")
    (exp_dir / "report.md").write_text("# report\n")
    trial_of = {v: k for k, v in callback.run_ids.items()}
    calm = next(t for t, r in callback.run_ids.items() if t not in callback.intervention_counts)
    log_sweep_summary(uri, "exp", metrics={"best.validation.loss": 0.33}, tags={
        "smart_tuner.best_trial": calm}, files=[exp_dir / "report.md"], best=(calm, best_folder))

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("exp")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("smart_tuner.role") == "sweep"]
    children = [r for r in runs if r not in parents]
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name == "exp"
    assert parent.data.metrics["best.validation.loss"] == 0.33
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")} == \
        {"sweep/smart_tuner_config.yaml"}
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "report")] == \
        ["report/report.md"]
    assert parent.data.tags["smart_tuner.best_checkpoint"] == \
        f"runs:/{callback.run_ids[calm]}/best_checkpoint"
    for child in children:
        run_id = child.info.run_id
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.params["learning_rate"] == "0.001"
        assert child.data.params["model.attention_dim"] == "16"
        history = client.get_metric_history(run_id, "validation.loss")
        assert [m.step for m in history] == [10, 20, 30]  # training steps
        images = {a.path for a in client.list_artifacts(run_id, "validation/step_000020")}
        assert images == {f"validation/step_000020/{k}.png" for k in ("alignment", "mel", "gate")}
        lr = [(m.step, m.value) for m in client.get_metric_history(run_id, "config.learning_rate")]
        if child.data.params["explode"] == "True":
            assert math.isnan(history[-1].value)
            assert child.data.tags["smart_tuner.interventions"] == "1"
            assert child.data.tags["smart_tuner.intervention.1"].startswith(
                f"[smart-tuner] trial {trial_of[run_id]} validation 2: mutate (gradient_explosion")
            # the triggering report (step 20) keeps the old learning rate; the next has the new
            assert sorted(lr) == [(10, 1e-3), (20, 1e-3), (30, 4e-4)]
            assert [m.step for m in client.get_metric_history(run_id, "interventions")] == [20]
            path = client.download_artifacts(run_id, "interventions/001_mutate_validation2.json",
                                             str(tmp_path))
            record = json.loads(Path(path).read_text())
            assert (record["old_config"], record["new_config"]) == (
                {"learning_rate": 1e-3}, {"learning_rate": 4e-4})
        else:
            assert "smart_tuner.interventions" not in child.data.tags
            assert sorted(lr) == [(10, 1e-3), (20, 1e-3), (30, 1e-3)]
            assert [a.path for a in client.list_artifacts(run_id, "best_checkpoint")] == \
                ["best_checkpoint/checkpoint.pt"]

    # The same structure through the REST API that the MLflow UI uses.
    port = _free_port()
    server = _start_mlflow_server(uri, port, tmp_path / "server.log")
    if server is None:
        pytest.skip("mlflow server did not answer on localhost within 120 s "
                    f"(log: {(tmp_path / 'server.log').read_text()[-300:]!r})")
    try:
        found = _rest(port, "runs/search", {"experiment_ids": [exp.experiment_id]})["runs"]
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in found]
        by_role = {t.get("smart_tuner.role", "child"): t for t in tags}
        assert sum(1 for t in tags if t.get("mlflow.parentRunId") == parent.info.run_id) == 2
        assert "sweep" in by_role
        exploded = next(r for r in found if any(t["key"] == "smart_tuner.interventions"
                                                for t in r["data"].get("tags", [])))
        listing = _rest(port, f"artifacts/list?run_id={exploded['info']['run_id']}"
                              "&path=validation/step_000010")
        assert sorted(f["path"] for f in listing["files"]) == [
            f"validation/step_000010/{k}.png" for k in ("alignment", "gate", "mel")]
        history = _rest(port, f"metrics/get-history?run_id={exploded['info']['run_id']}"
                              "&metric_key=validation.loss")["metrics"]
        assert sorted(int(m["step"]) for m in history) == [10, 20, 30]
    finally:
        _stop(server)
