"""Scheduler drivers of the hook harness: one small adapter per compared scheduler.

Each driver turns "trial T reported R with checkpoint C" into a ``Verdict``: continue, stop, or
restore (roll back to a checkpoint under a new config). ASHA and PBT are the REAL Ray Tune
scheduler objects, called through their hooks (``on_trial_add`` / ``on_trial_result`` /
``on_trial_complete`` / ``choose_trial_to_run``) with lightweight ``SimTrial`` objects and a
minimal ``SimController``. PBT's exploit touches controller internals: ``_schedule_trial_save``
(answered with the trial's current surrogate checkpoint), ``pause_trial``, ``get_trials`` and
``get_live_trials``, and writes ``trial.run_metadata.checkpoint_manager._latest_checkpoint_result``,
which the harness reads back as the checkpoint to restore. The Smart Tuner is driven through
``tuner.core.supervisor.Supervisor`` (the Ray-free core of SmartScheduler).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Literal, Mapping, Union

import numpy as np

from benchmarks.scenario import Scenario
from tuner.contract import ActionKind

NAN_METRICS = ("training.loss", "validation.loss", "grad.norm")

# Ray Tune's Trial status strings (ray.tune.experiment.trial.Trial.PENDING, ...).
PENDING, RUNNING, PAUSED, TERMINATED = "PENDING", "RUNNING", "PAUSED", "TERMINATED"


# What a compared scheduler did to a trial, as the benchmark records it (TrialRecord.actions):
# Smart Tuner's ActionKind (tuner/contract.py) or what Ray's baselines do: ASHA prunes, PBT exploits
# or pauses; "restore" is a rollback seen only from Ray's side (benchmarks/ray_tier.py) and "cut"
# a real trial that ended early without one (benchmarks/real_sweep.py).
BaselineAction = Literal["prune", "exploit", "pause", "restore", "cut"]
TrialAction = Union[ActionKind, BaselineAction]
# What the harness then does with the trial.
Step = Literal["continue", "stop", "restore", "pause"]


@dataclass
class Verdict:
    kind: Step
    action: TrialAction = "continue"           # what it was: stop / mutate / restart / exploit / pause
    config: dict[str, Any] | None = None
    checkpoint: Any = None


class SimTrial:
    """The attributes of ray.tune Trial that ASHA and PBT read or write, and nothing else."""

    def __init__(self, trial_id: str, config: Mapping[str, Any]) -> None:
        self.trial_id = trial_id
        self.config: dict[str, Any] = dict(config)
        self.experiment_tag = trial_id
        self.evaluated_params: dict[str, Any] = {}
        self.status = PENDING
        self.last_result: dict[str, Any] = {}
        self.checkpoint: Any = None
        self.temporary_state = SimpleNamespace(saving_to=None)
        manager = SimpleNamespace(checkpoint_config=SimpleNamespace(num_to_keep=None), _latest_checkpoint_result=None)
        self.run_metadata = SimpleNamespace(checkpoint_manager=manager)
        self.local_experiment_path = ""
        self.latest_checkpoint_result: Any = None   # read by SmartScheduler (tuner/raytune/_ray_compat.py)

    def is_finished(self) -> bool:
        return self.status == TERMINATED

    def set_config(self, config: dict[str, Any]) -> None:
        self.config = dict(config)

    def set_experiment_tag(self, tag: str) -> None:
        self.experiment_tag = tag

    def __repr__(self) -> str:
        return self.trial_id


class SimController:
    """The few TuneController methods PBT calls; checkpoints come from ``save_fn(trial)``."""

    search_alg = None

    def __init__(self, save_fn: Callable[[SimTrial], Any]) -> None:
        self.trials: list[SimTrial] = []
        self._save_fn = save_fn

    def get_trials(self) -> list[SimTrial]:
        return self.trials

    def get_live_trials(self) -> list[SimTrial]:
        return [t for t in self.trials if not t.is_finished()]

    def pause_trial(self, trial: SimTrial, should_checkpoint: bool = True) -> None:
        trial.status = PAUSED

    def _schedule_trial_save(self, trial: SimTrial, result: Any = None) -> Any:
        return SimpleNamespace(state=self._save_fn(trial))


def non_finite(result: Mapping[str, float]) -> bool:
    """True when training.loss, validation.loss or grad.norm is NaN or infinite."""
    return any(not math.isfinite(float(result.get(m, 0.0))) for m in NAN_METRICS)


class Driver:
    """FIFO: never intervenes. Base class of the others."""

    name = "fifo"

    def __init__(self, scenario: Scenario, seed: int, controller: SimController) -> None:
        self.scenario, self.seed, self.controller = scenario, seed, controller

    def add(self, trial: SimTrial) -> None:
        return None

    def choose(self) -> SimTrial | None:
        for status in (PENDING, PAUSED):
            for t in self.controller.trials:
                if t.status == status:
                    return t
        return None

    def result(self, trial: SimTrial, result: dict[str, Any], checkpoint: Any, now: float) -> Verdict:
        return Verdict("continue")

    def complete(self, trial: SimTrial, result: dict[str, Any]) -> None:
        return None


class NanStopDriver(Driver):
    """FIFO plus a plain stopper: stop a trial at its first non-finite loss or grad norm."""

    name = "fifo_nan_stop"

    def result(self, trial: SimTrial, result: dict[str, Any], checkpoint: Any, now: float) -> Verdict:
        return Verdict("stop", "stop") if non_finite(result) else Verdict("continue")


class AshaDriver(Driver):
    """ray.tune.schedulers.AsyncHyperBandScheduler on validation.loss (min), time = training_iteration."""

    name = "asha"

    def __init__(self, scenario: Scenario, seed: int, controller: SimController) -> None:
        super().__init__(scenario, seed, controller)
        from ray.tune.schedulers import AsyncHyperBandScheduler

        opts = dict(scenario.asha)
        self.sched = AsyncHyperBandScheduler(
            time_attr="training_iteration", metric="validation.loss", mode="min", max_t=scenario.max_reports, **opts
        )

    def add(self, trial: SimTrial) -> None:
        self.sched.on_trial_add(self.controller, trial)

    def result(self, trial: SimTrial, result: dict[str, Any], checkpoint: Any, now: float) -> Verdict:
        decision = self.sched.on_trial_result(self.controller, trial, result)
        # "prune": ASHA's normal work; the harness turns a STOP at max_t into a normal completion
        return Verdict("stop", "prune") if decision == "STOP" else Verdict("continue")

    def complete(self, trial: SimTrial, result: dict[str, Any]) -> None:
        self.sched.on_trial_complete(self.controller, trial, result)


def pbt_mutations(space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """PBT hyperparam_mutations from a scenario search space (constants are left out)."""
    from ray import tune

    out: dict[str, Any] = {}
    for name, spec in space.items():
        kind, arg = next(iter(spec.items()))
        if kind == "loguniform":
            out[name] = tune.loguniform(arg[0], arg[1])
        elif kind == "uniform":
            out[name] = tune.uniform(arg[0], arg[1])
        elif kind == "choice" and len(arg) > 1:
            out[name] = list(arg)
    return out


class PbtDriver(Driver):
    """ray.tune.schedulers.PopulationBasedTraining (asynchronous), exploit read back from the trial."""

    name = "pbt"

    def __init__(self, scenario: Scenario, seed: int, controller: SimController) -> None:
        super().__init__(scenario, seed, controller)
        from ray.tune.schedulers import PopulationBasedTraining

        random.seed(seed)      # PBT's explore draws from the global `random` module ...
        np.random.seed(seed)   # ... and resamples through tune's Domain.sample, i.e. numpy's global generator
        opts = dict(scenario.pbt)
        self.sched = PopulationBasedTraining(
            time_attr="training_iteration", metric="validation.loss", mode="min",
            hyperparam_mutations=pbt_mutations(scenario.search_space), log_config=False, **opts,
        )

    def add(self, trial: SimTrial) -> None:
        self.sched.on_trial_add(self.controller, trial)

    def choose(self) -> SimTrial | None:
        return self.sched.choose_trial_to_run(self.controller)

    def result(self, trial: SimTrial, result: dict[str, Any], checkpoint: Any, now: float) -> Verdict:
        manager = trial.run_metadata.checkpoint_manager
        manager._latest_checkpoint_result = None
        decision = self.sched.on_trial_result(self.controller, trial, result)
        exploited = manager._latest_checkpoint_result
        if exploited is not None:
            return Verdict("restore", "exploit", dict(trial.config), exploited.checkpoint.state)
        if decision == "PAUSE":
            return Verdict("pause", "pause")
        return Verdict("continue")

    def complete(self, trial: SimTrial, result: dict[str, Any]) -> None:
        self.sched.on_trial_complete(self.controller, trial, result)


class SmartDriver(Driver):
    """tuner.core.supervisor.Supervisor (the Ray-free core of SmartScheduler)."""

    name = "smart"

    def __init__(self, scenario: Scenario, seed: int, controller: SimController) -> None:
        super().__init__(scenario, seed, controller)
        from tuner.core.config import load_config
        from tuner.core.recovery import RecoveryPlanner
        from tuner.core.supervisor import Supervisor

        cfg = load_config()
        # echo=False: interventions are kept in supervisor.interventions, not printed per line.
        self.supervisor = Supervisor(cfg, None, planner=RecoveryPlanner(cfg, None, seed=seed), echo=False)

    def result(self, trial: SimTrial, result: dict[str, Any], checkpoint: Any, now: float) -> Verdict:
        action = self.supervisor.on_result(trial.trial_id, dict(trial.config), result, checkpoint, now)
        if action.kind == "continue":
            return Verdict("continue")
        if action.kind == "stop":
            return Verdict("stop", "stop")
        return Verdict("restore", action.kind, dict(action.new_config or trial.config), action.checkpoint)

    def complete(self, trial: SimTrial, result: dict[str, Any]) -> None:
        self.supervisor.on_complete(trial.trial_id, result)


DRIVERS: dict[str, type[Driver]] = {
    "fifo": Driver,
    "fifo_nan_stop": NanStopDriver,
    "asha": AshaDriver,
    "pbt": PbtDriver,
    "smart": SmartDriver,
}
