"""MLflow tracking of a Ray Tune sweep: one MLflow run per trial, run ids passed explicitly.

Store: ``tracking_uri`` if given, else the ``MLFLOW_TRACKING_URI`` environment variable (a tracking
server on a cluster), else a SQLite file ``<experiment_dir>/mlflow.db`` with artifacts in
``<experiment_dir>/mlartifacts``. The experiment folder is the one Ray writes
(``RunConfig.storage_path / name``); when not given it is taken from the first trial
(``trial.remote_experiment_path``).

Per trial run:
- params: the trial's initial config (flattened, ``model.attention_dim`` style);
- metrics: every numeric reported metric at step ``validation.step`` (or ``training_iteration``),
  plus the current numeric hyperparameters as ``config.<name>`` so recoveries show as steps in
  ``config.learning_rate``;
- interventions (from ``Supervisor.add_listener``, and, so that nothing is lost when the listener is
  not attached (e.g. after ``Tuner.restore``), also read back from ``<experiment_dir>/
  interventions.jsonl`` at every result and at the end; each is logged once): tag ``smart_tuner.interventions`` (count), metric
  ``interventions`` (count at the step), tag ``smart_tuner.last_action``, and one JSON artifact per
  intervention under ``interventions/``;
- status: FINISHED on complete, FAILED on error, KILLED for runs still open at experiment end.

NaN policy: NaN and +-Inf metrics are logged as they are (MLflow stores NaN; the SQL store maps Inf to
the largest float); nothing is replaced by 0. Only library code here: no ``mlflow.start_run`` global
state.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback

from tuner.analysis_io import read_json_lines
from tuner.contract import INTERVENTIONS_FILE, numeric

__all__ = ["MLflowCallback", "default_tracking_uri", "flatten_config"]

_SKIPPED_METRICS = frozenset({"timestamp", "pid", "done", "date", "hostname", "node_ip"})
_MAX_PARAM_LEN = 6000


def default_tracking_uri(experiment_dir: str | Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<abs experiment_dir>/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(experiment_dir).resolve() / 'mlflow.db'}"


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"model.attention_dim": "128", ...}`` (strings, as MLflow params)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_config(value, prefix=f"{name}."))
        else:
            out[name] = str(value)[:_MAX_PARAM_LEN]
    return out


def _intervention_dict(intervention: Any) -> dict[str, Any]:
    if hasattr(intervention, "to_json"):
        return json.loads(intervention.to_json())
    if dataclasses.is_dataclass(intervention):
        return json.loads(json.dumps(dataclasses.asdict(intervention), default=str))
    return dict(intervention)


class MLflowCallback(Callback):
    """Ray Tune callback logging every trial to its own MLflow run (see the module docstring).

    ``attach(supervisor)`` (or ``Supervisor.add_listener(cb.on_intervention)``) logs interventions.
    State (trial id -> run id) is saved with the experiment so ``Tuner.restore`` keeps the same runs.
    """

    def __init__(
        self,
        experiment_name: str = "smart-tuner",
        tracking_uri: str | None = None,
        experiment_dir: str | Path | None = None,
    ) -> None:
        self.experiment_name = experiment_name
        self.tracking_uri = tracking_uri
        self.experiment_dir = Path(experiment_dir) if experiment_dir is not None else None
        self.run_ids: dict[str, str] = {}
        self.intervention_counts: dict[str, int] = {}
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None
        self._logged: set[tuple[str, int, float, str]] = set()

    def __getstate__(self) -> dict[str, Any]:
        # Pickled into Ray's tuner.pkl: the client (a database handle) is rebuilt on first use.
        state = self.__dict__.copy()
        state["_client"] = None
        return state

    # ---- store -------------------------------------------------------------------------------
    def _ensure_client(self, trial: Any | None = None) -> MlflowClient:
        if self._client is not None:
            return self._client
        if self.experiment_dir is None and trial is not None:
            self.experiment_dir = Path(trial.remote_experiment_path)
        if self.tracking_uri is None:
            if self.experiment_dir is None:
                raise ValueError("MLflowCallback needs tracking_uri or experiment_dir; pass one")
            self.experiment_dir.mkdir(parents=True, exist_ok=True)
            self.tracking_uri = default_tracking_uri(self.experiment_dir)
        client = MlflowClient(tracking_uri=self.tracking_uri)
        exp = client.get_experiment_by_name(self.experiment_name)
        if exp is not None:
            self._experiment_id = exp.experiment_id
        else:
            artifacts = None
            if self.tracking_uri.startswith("sqlite:") and self.experiment_dir is not None:
                artifacts = (self.experiment_dir.resolve() / "mlartifacts").as_uri()
            self._experiment_id = client.create_experiment(
                self.experiment_name, artifact_location=artifacts)
        self._client = client
        return client

    @property
    def client(self) -> MlflowClient:
        """The MlflowClient (created on first use)."""
        return self._ensure_client()

    def run_id(self, trial: Any) -> str:
        """The MLflow run of a trial, created (params logged) on first sight."""
        trial_id = str(trial.trial_id)
        if trial_id in self.run_ids:
            return self.run_ids[trial_id]
        client = self._ensure_client(trial)
        run = client.create_run(self._experiment_id, run_name=str(trial),
                                tags={"ray.trial_id": trial_id})
        params = [Param(k, v) for k, v in flatten_config(trial.config).items()]
        for i in range(0, len(params), 100):
            client.log_batch(run.info.run_id, params=params[i:i + 100])
        self.run_ids[trial_id] = run.info.run_id
        return run.info.run_id

    # ---- Ray Tune hooks ----------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id = self.run_id(trial)
        self.client.update_run(run_id, status="RUNNING")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self.log_result(trial, result)
        self.sync_interventions()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.client.set_terminated(self.run_id(trial), status="FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.client.set_terminated(self.run_id(trial), status="FAILED")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._client is None:
            return
        self.sync_interventions()
        for run_id in self.run_ids.values():
            if self._client.get_run(run_id).info.status == "RUNNING":
                self._client.set_terminated(run_id, status="KILLED")

    def get_state(self) -> dict[str, Any]:
        return {"run_ids": dict(self.run_ids), "intervention_counts": dict(self.intervention_counts),
                "tracking_uri": self.tracking_uri, "logged": [list(k) for k in self._logged]}

    def set_state(self, state: dict[str, Any]) -> None:
        self.run_ids.update(state.get("run_ids", {}))
        self.intervention_counts.update(state.get("intervention_counts", {}))
        self._logged.update(tuple(k) for k in state.get("logged", ()))  # type: ignore[misc]
        if self.tracking_uri is None:
            self.tracking_uri = state.get("tracking_uri")

    # ---- logging -----------------------------------------------------------------------------
    def log_result(self, trial: Any, result: Mapping[str, Any]) -> None:
        """Log every numeric metric of ``result`` and the numeric hyperparameters of the trial."""
        run_id = self.run_id(trial)
        step = int(result.get("validation.step", result.get("training_iteration", 0)) or 0)
        ts = int(float(result.get("timestamp") or time.time()) * 1000)
        metrics = [Metric(k, v, ts, step) for k, v in numeric(result).items()
                   if k not in _SKIPPED_METRICS]
        metrics += [Metric(f"config.{k}", v, ts, step)
                    for k, v in numeric(trial.config).items()]
        for i in range(0, len(metrics), 500):
            self.client.log_batch(run_id, metrics=metrics[i:i + 500])

    def on_intervention(self, intervention: Any) -> None:
        """Supervisor listener: record one Intervention on its trial's run."""
        record = _intervention_dict(intervention)
        trial_id = str(record.get("trial_id"))
        key = (trial_id, int(record.get("step") or 0), float(record.get("time") or 0.0),
               str(record.get("action")))
        if key in self._logged:
            return
        self._logged.add(key)
        run_id = self.run_ids.get(trial_id)
        if run_id is None:
            client = self.client
            run = client.create_run(self._experiment_id, run_name=trial_id,
                                    tags={"ray.trial_id": trial_id})
            run_id = self.run_ids[trial_id] = run.info.run_id
        count = self.intervention_counts.get(trial_id, 0) + 1
        self.intervention_counts[trial_id] = count
        step = int(record.get("step") or 0)
        action = str(record.get("action", "unknown"))
        self.client.log_batch(
            run_id,
            metrics=[Metric("interventions", float(count), 0, step)],
            tags=[RunTag("smart_tuner.interventions", str(count)),
                  RunTag("smart_tuner.last_action", action)],
        )
        self.client.log_dict(run_id, record, f"interventions/{count:03d}_{action}_step{step}.json")

    def sync_interventions(self) -> int:
        """Log the interventions of ``<experiment_dir>/interventions.jsonl`` not logged yet."""
        if self.experiment_dir is None:
            return 0
        path = self.experiment_dir / INTERVENTIONS_FILE
        if not path.is_file():
            return 0
        before = len(self._logged)
        for record in read_json_lines(path):  # a line being written right now: next time
            if isinstance(record, dict) and "trial_id" in record:
                self.on_intervention(record)
        return len(self._logged) - before

    def attach(self, supervisor: Any) -> None:
        """Register as an intervention listener of a Supervisor (or anything with add_listener)."""
        supervisor.add_listener(self.on_intervention)
