"""Small, fast Ray Tune function trainables that report the Smart Tuner contract metrics.

``quadratic_trainable`` simulates one training run in closed form, one report per validation:

    loss(s) = 0.2 + 4.0 * exp(-k * lr * s),   k = 0.5, s = validation step (1, 2, ...)

(validation.loss = loss + 0.05, grad.norm = 2 + 10 * lr * exp(-k * lr * s)). When
``learning_rate > explode_lr`` and ``s >= explode_after``, the run "explodes": grad.norm becomes
500 (critical), as a real Tacotron2 run with too high a learning rate does, but its
losses are only 0.5 higher (the trainable's own NaN-step skipping keeps them finite). With
``nan_from`` set, every report from that step on is NaN (losses and grad.norm). A checkpoint (``state.json``: step, restart generation, learning rates used) is reported with
every result, and a restored run continues from its checkpoint's step with its *current* config.

Config keys: ``learning_rate``, ``batch_size``, ``max_steps`` (validations), ``explode_lr``,
``explode_after``, ``explode_waits_for`` (an exploding report first waits until that many trials
have logged a step), ``nan_from``, ``sleep`` (seconds per report), ``crash_at`` + ``crash_marker``
(raise once at that step, remembered by a marker file; ``crash_message`` in the error), ``_restart_generation`` (a checkpoint of a lower
generation is ignored: restart from scratch), ``log_dir`` (appends one JSON line per report:
trial id, step, learning_rate, batch_size, generation, restored_from).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune import Checkpoint

from tests.factories import SMART_TEST_CONFIG, quadratic_metrics

DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.1,
    "batch_size": 32,
    "max_steps": 8,
    "explode_lr": math.inf,
    "explode_after": 4,
    "nan_from": None,
    "sleep": 0.0,
    "crash_at": None,
    "crash_marker": None,
    "crash_message": "CUDA out of memory, simulated",
    "_restart_generation": 0,
    "log_dir": None,
    "explode_waits_for": 0,
}


def _load_state(generation: int) -> tuple[int, int | None]:
    """(step to continue from, validation step restored from or None) from Ray's checkpoint."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return 0, None
    with checkpoint.as_directory() as folder:
        state = json.loads(Path(folder, "state.json").read_text())
    if int(state["generation"]) < generation:  # an older generation: restart from scratch
        return 0, None
    return int(state["step"]), int(state["step"])


def quadratic_trainable(config: dict[str, Any]) -> None:
    """A function trainable: see the module docstring."""
    cfg = {**DEFAULTS, **config}
    lr = float(cfg["learning_rate"])
    generation = int(cfg["_restart_generation"])
    start, restored_from = _load_state(generation)
    trial_id = tune.get_context().get_trial_id()
    for step in range(start + 1, int(cfg["max_steps"]) + 1):
        if cfg["crash_at"] is not None and step == int(cfg["crash_at"]):
            marker = Path(str(cfg["crash_marker"]))
            if not marker.exists():
                marker.write_text("crashed once\n")
                raise RuntimeError(f"injected crash at step {step} ({cfg['crash_message']})")
        if cfg["sleep"]:
            time.sleep(float(cfg["sleep"]))
        exploded = lr > float(cfg["explode_lr"]) and step >= int(cfg["explode_after"])
        if exploded and cfg["explode_waits_for"]:
            _wait_for_trials(str(cfg["log_dir"]), int(cfg["explode_waits_for"]))
        nan = cfg["nan_from"] is not None and step >= int(cfg["nan_from"])
        metrics = quadratic_metrics(step, lr, exploded, nan)
        if cfg["log_dir"]:
            line = {
                "trial_id": trial_id, "step": step, "learning_rate": lr,
                "batch_size": int(cfg["batch_size"]), "generation": generation,
                "restored_from": restored_from,
            }
            with open(Path(str(cfg["log_dir"]), "steps.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
        with tempfile.TemporaryDirectory() as folder:
            state = {"step": step, "generation": generation, "learning_rate": lr}
            Path(folder, "state.json").write_text(json.dumps(state))
            tune.report(metrics, checkpoint=Checkpoint.from_directory(folder))


def _wait_for_trials(log_dir: str, count: int, seconds: float = 600.0) -> None:
    """Block until ``count`` trials have logged a step (so they all hold their CPU), at most
    ``seconds``: a precondition, not a timing assumption."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len({line["trial_id"] for line in read_step_log(log_dir)}) >= count:
            return
        time.sleep(0.05)


def read_step_log(log_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON lines written by ``quadratic_trainable`` (one per report), oldest first."""
    path = Path(log_dir, "steps.jsonl")
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_local_ray() -> None:
    """Start a small local Ray for tests (2 CPUs, no dashboard), quiet."""
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not ray.is_initialized():
        ray.init(
            num_cpus=2, include_dashboard=False, log_to_driver=False,
            configure_logging=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
        )


class EventLog(tune.Callback):
    """Appends the trial events Ray's controller processes, in its order, to a JSON-lines file:
    ``{"event": "start"|"result"|"complete"|"error", "trial_id", "step"}`` (step: the result's
    validation.step). Driver-side order, so assertions on it do not depend on workers' timing."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)

    def _write(self, event: str, trial: Any, step: float | None = None) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, "trial_id": trial.trial_id, "step": step}) + "\n")

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write("start", trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self._write("result", trial, result.get("validation.step"))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write("complete", trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write("error", trial)


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The lines written by :class:`EventLog`, in order."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------- sweep drivers
def run_sweep(storage: str, name: str, param_space: dict[str, Any], *, num_samples: int = 1,
              max_failures: int = 0, points: list[dict[str, Any]] | None = None,
              num_to_keep: int | None = None, max_concurrent: int | None = None,
              callbacks: list[Any] | None = None) -> Any:
    """One Tuner.fit of quadratic_trainable under SmartScheduler (OptunaSearch when ``points``,
    wrapped in ``ConcurrencyLimiter(max_concurrent)`` when that is given)."""
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from tuner.core.config import config_from_dict
    from tuner.raytune.scheduler import SmartScheduler

    scheduler = SmartScheduler(config=config_from_dict(SMART_TEST_CONFIG))
    search = None
    if points is not None:
        search = OptunaSearch(points_to_evaluate=points, seed=0)
        if max_concurrent is not None:
            search = ConcurrencyLimiter(search, max_concurrent=max_concurrent)
    tuner = tune.Tuner(
        quadratic_trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(scheduler=scheduler, search_alg=search, num_samples=num_samples,
                                    metric="validation.loss", mode="min"),
        run_config=tune.RunConfig(
            name=name, storage_path=storage, verbose=0, callbacks=callbacks,
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=num_to_keep),
        ),
    )
    return tuner.fit(), scheduler


def _driver(argv: list[str]) -> None:
    """``python -m tests.e2e_helpers fit|restore STORAGE NAME LOG_DIR OUT_JSON``: a sweep driver
    process for the kill-and-restore test; writes a JSON summary of the finished grid."""
    mode, storage, name, log_dir, out = argv
    start_local_ray()
    if mode == "fit":
        space = {"learning_rate": tune.grid_search([0.1, 0.5, 0.2]), "max_steps": 14, "sleep": 0.25,
                 "explode_lr": 0.3, "explode_after": 3, "log_dir": log_dir}
        grid, _ = run_sweep(storage, name, space)
    else:
        tuner = tune.Tuner.restore(str(Path(storage, name)), trainable=quadratic_trainable,
                                   resume_unfinished=True)
        grid = tuner.fit()
    summary = [{"config": {k: r.config.get(k) for k in ("learning_rate", "_restart_generation")},
                "error": None if r.error is None else str(r.error),
                "metrics": {k: r.metrics.get(k) for k in ("grad.norm", "validation.step")}}
               for r in grid]
    Path(out).write_text(json.dumps(summary))


if __name__ == "__main__":
    import sys

    _driver(sys.argv[1:])
