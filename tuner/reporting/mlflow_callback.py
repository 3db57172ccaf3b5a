"""MLflow tracking of a Ray Tune sweep: a parent run per sweep, a child run per trial.

Store: ``tracking_uri`` if given, else the ``MLFLOW_TRACKING_URI`` environment variable (a tracking
server on a cluster), else a SQLite file ``<experiment_dir>/mlflow.db`` with artifacts in
``<experiment_dir>/mlartifacts``. Nothing goes to ``./mlruns``: every call names its store and
its run (no ``mlflow.start_run`` global state).

Parent run (tag ``smart_tuner.role = sweep``, named after the sweep): the sweep's files
(``smart_tuner_sweep.json``, ``smart_tuner_config.yaml``, the search space) as artifacts under
``sweep/``; after the sweep :func:`log_sweep_summary` adds the summary table, ``report.md``, the
curves, the best trial and its best checkpoint (``best_checkpoint/`` artifacts of the best trial's
child run, path in the parent's ``smart_tuner.best_checkpoint`` tag).

Child run per trial (tag ``mlflow.parentRunId``, so the UI nests it; ``ray.trial_id``):
- params: the trial's config as first sampled (flattened, ``model.attention_dim`` style);
- metrics: every numeric reported metric at step ``training.step`` (else ``validation.step``, else
  ``training_iteration``), plus ``config.<name>`` for the numeric hyperparameters *in force when
  the result was produced* (the triggering result keeps the old ones; the next shows the new);
- validation images: ``validation/step_<N>/{alignment,mel,gate}.png`` from the trial folder's
  ``validation_images/`` (written by ``TrialBoard``);
- interventions, each once: tag ``smart_tuner.intervention.<n>`` (its one-line summary), tag
  ``smart_tuner.interventions`` (count), metric ``interventions`` (count, at the triggering
  result's training step) and the record with the config before and after as
  ``interventions/<n>_<action>_validation<k>.json``;
- status: FINISHED on complete, FAILED on error, KILLED for runs still open at experiment end.

Interventions arrive one way only: :class:`tuner.reporting.console.InterventionFeed` reads
``interventions.jsonl`` incrementally at every result (it is written before Ray calls the
callbacks with that result) and at the end. ``get_state``/``set_state`` (saved by Ray with the
experiment) keep the runs, the feed's offset and the interventions already logged across
``Tuner.restore``; a run is also found again by its ``ray.trial_id`` tag, and an intervention read
twice is logged once.

NaN policy: NaN and +-Inf metrics are logged as they are (MLflow stores NaN; the SQL store maps Inf
to the largest float); nothing is replaced by 0.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback

from tuner.reporting.console import InterventionFeed
from tuner.contract import numeric

__all__ = ["MLflowCallback", "default_tracking_uri", "flatten_config", "log_sweep_summary",
           "sweep_run"]

_SKIPPED_METRICS = frozenset({"timestamp", "pid", "done", "date", "hostname", "node_ip"})
_MAX_PARAM_LEN = 6000
SWEEP_ROLE = "sweep"
IMAGES_SUBDIR = "validation_images"
_SWEEP_FILES = ("smart_tuner_sweep.json", "smart_tuner_config.yaml")


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


def _step(result: Mapping[str, Any]) -> int:
    for key in ("training.step", "validation.step", "training_iteration"):
        value = result.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            return int(value)
    return 0


def _image_folders(trial: Any) -> list[Path]:
    """Where a trial's ``validation_images`` are: ``get_trial_dir()`` of the trial is the driver's
    staging folder (``trial.local_path``; seen at once when the trial runs on the driver's
    machine), which Ray syncs to the trial folder (``trial.path``)."""
    folders: list[Path] = []
    for get in (lambda: trial.local_path, lambda: trial.path):
        try:
            folder = Path(str(get())) / IMAGES_SUBDIR
        except Exception:  # no storage context (a restored or a stand-in trial): skip
            continue
        if folder.is_dir() and folder not in folders:
            folders.append(folder)
    return folders


def sweep_run(client: MlflowClient, experiment_name: str) -> str | None:
    """The run id of the sweep's parent run in ``experiment_name`` (None: none yet)."""
    exp = client.get_experiment_by_name(experiment_name)
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id],
                              filter_string=f"tags.`smart_tuner.role` = '{SWEEP_ROLE}'",
                              max_results=1)
    return runs[0].info.run_id if runs else None


class MLflowCallback(Callback):
    """Ray Tune callback: parent run per sweep, child run per trial (see the module docstring).

    State (trial id -> run id, parent run) is pickled with the experiment, so ``Tuner.restore``
    keeps the same runs.
    """

    def __init__(self, experiment_name: str = "smart-tuner", tracking_uri: str | None = None,
                 experiment_dir: str | Path | None = None, metric: str = "validation.loss",
                 mode: str = "min") -> None:
        self.experiment_name = experiment_name
        self.tracking_uri = tracking_uri
        self.experiment_dir = Path(experiment_dir) if experiment_dir is not None else None
        self.metric, self.mode = metric, mode
        self.parent_id: str | None = None
        self.run_ids: dict[str, str] = {}
        self.intervention_counts: dict[str, int] = {}
        self.feed = InterventionFeed(self.experiment_dir)
        self._in_force: dict[str, dict[str, float]] = {}     # trial -> hyperparameters in force
        self._steps: dict[str, dict[int, int]] = {}          # trial -> validation.step -> training.step
        self._images: set[str] = set()
        self._logged: set[tuple[str, int, float, str]] = set()   # interventions logged (once)
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Pickled into Ray's tuner.pkl: the client (a database handle) is rebuilt on first use.
        state = self.__dict__.copy()
        state["_client"] = None
        return state

    def get_state(self) -> dict[str, Any]:
        """Saved by Ray with the experiment state; ``Tuner.restore`` keeps the same runs."""
        return {"run_ids": dict(self.run_ids), "parent_id": self.parent_id,
                "intervention_counts": dict(self.intervention_counts),
                "offset": self.feed.offset, "tracking_uri": self.tracking_uri,
                "in_force": self._in_force, "steps": {t: list(v.items()) for t, v in
                                                      self._steps.items()},
                "images": sorted(self._images), "logged": [list(k) for k in self._logged]}

    def set_state(self, state: dict[str, Any]) -> None:
        self.run_ids.update(state.get("run_ids", {}))
        self.parent_id = self.parent_id or state.get("parent_id")
        self.intervention_counts.update(state.get("intervention_counts", {}))
        self.feed.offset = max(self.feed.offset, int(state.get("offset", 0)))
        self.tracking_uri = self.tracking_uri or state.get("tracking_uri")
        self._in_force.update(state.get("in_force", {}))
        self._steps.update({t: {int(a): int(b) for a, b in v}
                            for t, v in state.get("steps", {}).items()})
        self._images.update(state.get("images", ()))
        self._logged.update((str(a), int(b), float(c), str(d)) for a, b, c, d in
                            state.get("logged", ()))

    # ---- store -------------------------------------------------------------------------------
    def _ensure_client(self, trial: Any | None = None) -> MlflowClient:
        if self._client is not None:
            return self._client
        if self.experiment_dir is None and trial is not None:
            from tuner.raytune._ray_compat import experiment_dir

            self.experiment_dir = experiment_dir(trial)
            self.feed.experiment_dir = self.experiment_dir
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
        if self.parent_id is None:
            self.parent_id = sweep_run(client, self.experiment_name) or client.create_run(
                self._experiment_id, run_name=self.experiment_name,
                tags={"smart_tuner.role": SWEEP_ROLE}).info.run_id
        return client

    @property
    def client(self) -> MlflowClient:
        """The MlflowClient (created on first use)."""
        return self._ensure_client()

    def run_id(self, trial: Any) -> str:
        """The child run of a trial, created (params logged) on first sight."""
        return self._child(str(trial.trial_id), str(trial), trial.config, trial)

    def _child(self, trial_id: str, name: str, config: Mapping[str, Any],
               trial: Any | None = None) -> str:
        if trial_id in self.run_ids:
            return self.run_ids[trial_id]
        client = self._ensure_client(trial)
        self._in_force.setdefault(trial_id, numeric(config))
        found = client.search_runs([self._experiment_id],
                                   filter_string=f"tags.`ray.trial_id` = '{trial_id}'",
                                   max_results=1)
        if found:  # a resumed sweep whose saved state predates this trial's run
            self.run_ids[trial_id] = found[0].info.run_id
            return found[0].info.run_id
        run = client.create_run(self._experiment_id, run_name=name,
                                tags={"ray.trial_id": trial_id,
                                      "mlflow.parentRunId": str(self.parent_id)})
        params = [Param(k, v) for k, v in flatten_config(config).items()]
        for i in range(0, len(params), 100):
            client.log_batch(run.info.run_id, params=params[i:i + 100])
        self.run_ids[trial_id] = run.info.run_id
        return run.info.run_id

    # ---- Ray Tune hooks ----------------------------------------------------------------------
    def setup(self, **info: Any) -> None:
        if self.experiment_dir is None:
            return
        client = self._ensure_client()
        for name in _SWEEP_FILES:
            path = self.experiment_dir / name
            if path.is_file():
                client.log_artifact(self.parent_id, str(path), "sweep")
        settings = self.experiment_dir / _SWEEP_FILES[0]
        if settings.is_file():
            space = json.loads(settings.read_text()).get("search_space")
            if space and Path(space).is_file():
                client.log_artifact(self.parent_id, space, "sweep")

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.client.update_run(self.run_id(trial), status="RUNNING")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self.log_result(trial, result)
        self.log_images(trial)
        self.sync_interventions()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log_images(trial)
        self.client.set_terminated(self.run_id(trial), status="FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.client.set_terminated(self.run_id(trial), status="FAILED")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._client is None:
            return
        self.sync_interventions()
        for run_id in [*self.run_ids.values(), self.parent_id]:
            if run_id and self._client.get_run(run_id).info.status == "RUNNING":
                status = "FINISHED" if run_id == self.parent_id else "KILLED"
                self._client.set_terminated(run_id, status=status)

    # ---- logging -----------------------------------------------------------------------------
    def log_result(self, trial: Any, result: Mapping[str, Any]) -> None:
        """Every numeric metric of ``result`` at its training step, with the hyperparameters that
        were in force when it was produced (``config.<name>``)."""
        run_id = self.run_id(trial)
        trial_id = str(trial.trial_id)
        step = _step(result)
        validation = result.get("validation.step")
        if isinstance(validation, (int, float)) and validation == validation:
            self._steps.setdefault(trial_id, {})[int(validation)] = step
        ts = int(float(result.get("timestamp") or time.time()) * 1000)
        metrics = [Metric(k, v, ts, step) for k, v in numeric(result).items()
                   if k not in _SKIPPED_METRICS]
        metrics += [Metric(f"config.{k}", v, ts, step)
                    for k, v in self._in_force.get(trial_id, {}).items()]
        for i in range(0, len(metrics), 500):
            self.client.log_batch(run_id, metrics=metrics[i:i + 500])

    def log_images(self, trial: Any) -> int:
        """Log the validation images the trial wrote since the last call; returns how many."""
        run_id, n = self.run_id(trial), 0
        for path in sorted(p for folder in _image_folders(trial) for p in folder.glob("step_*.png")):
            key = f"{trial.trial_id}/{path.name}"
            if key in self._images:
                continue
            _, step, kind = path.stem.split("_", 2)
            with tempfile.TemporaryDirectory() as tmp:  # logged as validation/step_<N>/<kind>.png
                named = Path(tmp) / f"{kind}.png"
                shutil.copyfile(path, named)
                self.client.log_artifact(run_id, str(named), f"validation/step_{step}")
            self._images.add(key)
            n += 1
        return n

    def on_intervention(self, record: Mapping[str, Any]) -> None:
        """Record one intervention (a dict as in ``interventions.jsonl``) on its trial's run."""
        from tuner.core.interventions import Intervention

        trial_id = str(record.get("trial_id"))
        key = (trial_id, int(record.get("step") or 0), float(record.get("time") or 0.0),
               str(record.get("action")))
        if key in self._logged:  # read again after a restore whose saved state was older
            return
        self._logged.add(key)
        run_id = self.run_ids.get(trial_id)
        if run_id is None:  # a trial this callback never saw report (e.g. resumed elsewhere)
            run_id = self._child(trial_id, trial_id, {})
        count = self.intervention_counts.get(trial_id, 0) + 1
        self.intervention_counts[trial_id] = count
        validation = int(record.get("step") or 0)
        step = self._steps.get(trial_id, {}).get(validation, validation)
        action = str(record.get("action", "unknown"))
        line = Intervention.from_dict(record).line()
        self.client.log_batch(
            run_id,
            metrics=[Metric("interventions", float(count), int(time.time() * 1000), step)],
            tags=[RunTag("smart_tuner.interventions", str(count)),
                  RunTag("smart_tuner.last_action", action),
                  RunTag(f"smart_tuner.intervention.{count}", line[:5000])],
        )
        self.client.log_dict(run_id, dict(record),
                             f"interventions/{count:03d}_{action}_validation{validation}.json")
        in_force = self._in_force.setdefault(trial_id, {})
        in_force.update(numeric(record.get("new_config") or {}))

    def sync_interventions(self) -> int:
        """Log the interventions appended to ``interventions.jsonl`` since the last call."""
        records = self.feed.poll()
        for record in records:
            self.on_intervention(record)
        return len(records)


def log_sweep_summary(tracking_uri: str, experiment_name: str, *, metrics: Mapping[str, float],
                      tags: Mapping[str, str], files: list[Path],
                      best: tuple[str, Path] | None = None) -> str | None:
    """After a sweep: summary metrics, tags and files (report, curves) on the parent run, and the
    best checkpoint folder (``best = (trial_id, folder)``) on the best trial's child run."""
    client = MlflowClient(tracking_uri=tracking_uri)
    parent = sweep_run(client, experiment_name)
    if parent is None:
        return None
    now = int(time.time() * 1000)
    client.log_batch(parent, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                     tags=[RunTag(k, str(v)) for k, v in tags.items()])
    for path in files:
        if path.is_file():
            client.log_artifact(parent, str(path), "report")
    if best is not None:
        trial_id, folder = best
        exp = client.get_experiment_by_name(experiment_name)
        runs = client.search_runs([exp.experiment_id],
                                  filter_string=f"tags.`ray.trial_id` = '{trial_id}'",
                                  max_results=1)
        if runs and Path(folder).is_dir():
            client.log_artifacts(runs[0].info.run_id, str(folder), "best_checkpoint")
            client.set_tag(parent, "smart_tuner.best_checkpoint",
                           f"runs:/{runs[0].info.run_id}/best_checkpoint")
    return parent
