"""SmartScheduler: a thin Ray Tune TrialScheduler over the Ray-free Supervisor.

``on_trial_result`` records the result, lets the Supervisor decide, and maps the decision:
continue -> CONTINUE, stop -> STOP, mutate/restart -> pause the trial, replace its config, point
it at its last healthy checkpoint (or none: from scratch) and return NOOP; ``choose_trial_to_run``
then resumes paused-for-mutation trials before starting pending ones. The Ray internals this
needs live in ``tuner/raytune/_ray_compat.py``.

Prompt resumption: returning the paused trial from ``choose_trial_to_run`` is not enough on Ray
2.60. Ray then queues an actor request for it *behind* the new trials it has already staged
(first come, first served), and with ``ConcurrencyLimiter(max_concurrent=N)`` up to N new trials
are staged (the limiter counts the paused trial as live, so the sweep does not shrink, but the
repaired trial waited until every staged trial had started). So on the next controller step
``choose_trial_to_run`` moves the mutated trial's request to the head of the queue
(``_ray_compat.prioritize_trial``), before the resources it freed are handed out: it resumes on
its own slot and new trials start afterwards (``tests/test_e2e_recovery.py``). Crash retries
(``on_trial_error``) are moved ahead the same way. No user workaround is needed.

Usage::

    scheduler = SmartScheduler(config=load_config())
    tune.Tuner(train_tts, param_space=space,
               tune_config=tune.TuneConfig(scheduler=scheduler, search_alg=OptunaSearch(...),
                                           metric="validation.loss", mode="min"),
               run_config=tune.RunConfig(failure_config=tune.FailureConfig(max_failures=2)))

Experiment folder: ``experiment_dir`` or, when None, the experiment folder Ray gives the first
trial (``<storage_path>/<name>``). The Supervisor writes ``interventions.jsonl``, its state
journal ``smart_tuner_state.jsonl`` and the recovery study ``recovery.db`` there.

Resuming (``Tuner.restore``): Ray never calls a scheduler's ``save``/``restore``; it unpickles the
scheduler as it was when the Tuner was built. So the state has one home, the Supervisor's journal
in the experiment folder (written after every intervention, at trial ends, and at most every
``persist_every_s`` otherwise; the pickle carries no state), and the first ``on_trial_add`` loads
it when the added trial is one the journal knows (a fresh sweep with new trial ids starts clean).
A restored trial whose config predates the last intervention (Ray's own snapshot is periodic) is
given the intervened config and healthy checkpoint again.

Checkpoints: with ``CheckpointConfig(num_to_keep=K)`` the last healthy checkpoint is protected
from deletion; when a newer healthy one replaces it, or the trial completes, it is handed back to
Ray's rule (kept only if among the K best by ``checkpoint_score_attribute``, so the best
checkpoint survives); ``num_to_keep=None`` keeps all.
Trial errors (``FailureConfig(max_failures=N)``, N >= 1, lets Ray retry): classified by
tuner/core/trial_errors.py. A lost node (died, preempted, actor unavailable) resumes the trial
unchanged from its latest checkpoint and does not count against N or
``max_recoveries_per_trial``; out of memory and a crash are retried with their
``training_recovery.actions`` adjustment (default ``batch_size // 2``, min 8) from the last
healthy checkpoint and count against N.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import cloudpickle
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from tuner.raytune import _ray_compat
from tuner.core.config import SmartConfig, load_config
from tuner.core.interventions import HYPERPARAMETERS, Intervention
from tuner.contract import GENERATION_KEY
from tuner.core.supervisor import Action, Supervisor
from tuner.core.trial_errors import classify

logger = logging.getLogger(__name__)


class SmartScheduler(TrialScheduler):
    """Detects failing Tacotron2 trials and repairs them; see the module docstring.

    Args:
        config: a SmartConfig, a YAML path (merged over the defaults) or None for the defaults.
        experiment_dir: where to write interventions, state and the recovery study; None = the
            experiment folder Ray uses.
        outcome_reports: reports after a recovery whose validation.loss is told to the planner.
        persist_every_s: at most this often the state is saved between interventions.
        echo: print one line per intervention.
    """

    def __init__(self, config: SmartConfig | str | Path | None = None,
                 experiment_dir: str | Path | None = None, *, outcome_reports: int = 3,
                 persist_every_s: float = 10.0, echo: bool = True) -> None:
        super().__init__()
        self.config = config if isinstance(config, SmartConfig) else load_config(config)
        self.experiment_dir = None if experiment_dir is None else Path(experiment_dir)
        self._options = {"outcome_reports": outcome_reports, "persist_every_s": persist_every_s,
                         "echo": echo}
        self._metric = self.config.metric_name("validation.loss") or "validation.loss"
        self._mode = "min"
        self._supervisor: Supervisor | None = None
        self._listeners: list[Callable[[Intervention], None]] = []
        self._resume_first: set[str] = set()   # trials paused for a mutation: run them first
        self._resume_checked = False
        if self.experiment_dir is not None:
            self._ensure_supervisor(None)

    # ------------------------------------------------------------------ pickling (tuner.pkl)
    def __getstate__(self) -> dict[str, Any]:
        """Settings and listeners only: the Supervisor (a database handle) and its state are
        rebuilt from the experiment folder's journal when the first known trial is added."""
        state = self.__dict__.copy()
        state["_supervisor"] = None
        state["_resume_checked"] = False
        state["_listeners"] = [fn for fn in self._listeners if _picklable(fn)]
        if self._supervisor is not None:
            state["experiment_dir"] = self._supervisor.experiment_dir
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.experiment_dir is not None:
            self._ensure_supervisor(None)

    # ------------------------------------------------------------------ supervisor
    @property
    def supervisor(self) -> Supervisor | None:
        """The Supervisor (None until the first trial is added when experiment_dir is None)."""
        return self._supervisor

    @property
    def interventions(self) -> list[Intervention]:
        return [] if self._supervisor is None else list(self._supervisor.interventions)

    def add_listener(self, fn: Callable[[Intervention], None]) -> None:
        """Call ``fn(intervention)`` for every intervention (e.g. MLflowCallback.on_intervention)."""
        self._listeners.append(fn)
        if self._supervisor is not None:
            self._supervisor.add_listener(fn)

    def _ensure_supervisor(self, trial: Trial | None) -> Supervisor:
        sup = self._supervisor
        if sup is None:
            folder = self.experiment_dir or (_ray_compat.experiment_dir(trial) if trial else None)
            if self.experiment_dir is None and trial is not None:
                _ray_compat.sync_down_root_files(trial)   # cloud storage: resume needs them local
            sup = Supervisor(self.config, folder, **self._options)
            for fn in self._listeners:
                sup.add_listener(fn)
            self._supervisor = sup
        if trial is not None and not self._resume_checked:
            self._resume_checked = True   # the first trial added tells a resumed sweep from a new one
            folder = sup.experiment_dir
            if folder is not None and not sup.trial_ids and \
                    trial.trial_id in Supervisor.saved_trial_ids(folder):
                sup.load()
                logger.info("SmartScheduler resumed: %d interventions on %d trials from %s",
                            len(sup.interventions), len(sup.trial_ids), folder)
        return sup

    # ------------------------------------------------------------------ Ray hooks
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Accept any metric/mode from TuneConfig (they are the searcher's business)."""
        if mode not in (None, "min", "max"):
            raise ValueError(f"TuneConfig mode must be 'min' or 'max', got {mode!r}")
        return True

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        sup = self._ensure_supervisor(trial)
        expected = sup.expected_config(trial.trial_id)
        if expected is None or sup.is_finished(trial.trial_id):
            return
        keys = set(HYPERPARAMETERS) | {GENERATION_KEY}
        if any(expected.get(k) != trial.config.get(k) for k in keys if k in expected):
            healthy = sup.healthy_checkpoint(trial.trial_id)   # re-apply a lost intervention
            _ray_compat.mutate_trial(tune_controller, trial, {**trial.config, **expected},
                                     None if healthy is None else healthy.checkpoint,
                                     None if healthy is None else healthy.metrics)
            logger.info("trial %s: re-applied the config of its last intervention", trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        sup = self._ensure_supervisor(trial)
        self._resume_first.discard(trial.trial_id)
        self._sync_checkpoint(sup, trial)
        before = sup.healthy_checkpoint(trial.trial_id)
        action = sup.on_result(trial.trial_id, trial.config, result, None, time.time())
        after = sup.healthy_checkpoint(trial.trial_id)
        if after is not None and after is not before:   # a checkpoint fallback moved it
            self._guard(trial, before, after)
        if action.kind == "continue":
            return TrialScheduler.CONTINUE
        if action.kind == "stop":
            return TrialScheduler.STOP
        self._mutate(tune_controller, trial, action)
        return TrialScheduler.NOOP

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        """Classify the error (tuner/core/trial_errors.py); a lost node resumes unchanged from the
        trial's latest checkpoint and is taken off Ray's failure count, other errors are
        retried with their adjustment from the last healthy checkpoint."""
        sup = self._ensure_supervisor(trial)
        self._sync_checkpoint(sup, trial)
        if not _ray_compat.will_retry(trial):
            sup.on_complete(trial.trial_id, trial.last_result)
            return
        error = classify(_ray_compat.trial_error(trial))
        latest = _ray_compat.latest_checkpoint(trial)
        name = self.config.metric_name("validation.step") or "validation.step"
        step = None if latest is None else latest[1].get(name)
        action = sup.on_error(trial.trial_id, trial.config, time.time(), error,
                              int(step) if isinstance(step, (int, float)) else None)
        if action.kind == "resume":
            _ray_compat.forgive_failure(trial)
            self._resume_first.add(trial.trial_id)
        else:
            self._mutate(tune_controller, trial, action)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        sup = self._ensure_supervisor(trial)
        sup.on_complete(trial.trial_id, result)
        self._resume_first.discard(trial.trial_id)
        healthy = sup.healthy_checkpoint(trial.trial_id)  # no rollback ahead: Ray's rule decides
        if healthy is not None and _ray_compat.num_to_keep(trial) is not None:
            _ray_compat.unprotect_checkpoint(trial, healthy.checkpoint, healthy.metrics)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        self._ensure_supervisor(trial).on_complete(trial.trial_id, None)
        self._resume_first.discard(trial.trial_id)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """A trial paused for a mutation first, then pending, then other paused trials.

        Ray stages the returned trial by appending an actor request to a first-come queue behind
        the new trials it staged earlier; a mutated trial already staged is therefore moved to
        the head of that queue here (called every controller step, before resources are handed
        out), so it gets the resources it freed back before any new trial starts.
        """
        trials = tune_controller.get_trials()
        for trial in trials:
            if trial.status == Trial.PENDING and trial.trial_id in self._resume_first:
                _ray_compat.prioritize_trial(tune_controller, trial)
        for trial in trials:
            if trial.status == Trial.PAUSED and trial.trial_id in self._resume_first:
                return trial
        for status in (Trial.PENDING, Trial.PAUSED):
            for trial in trials:
                if trial.status == status:
                    return trial
        return None

    def debug_string(self) -> str:
        counts = Counter(i.action for i in self.interventions)
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
        trials = len({i.trial_id for i in self.interventions})
        return f"SmartScheduler: {sum(counts.values())} interventions on {trials} trials ({detail})"

    # ------------------------------------------------------------------ helpers
    def _sync_checkpoint(self, sup: Supervisor, trial: Trial) -> None:
        """Hand the trial's newest registered checkpoint to the Supervisor; guard it if healthy."""
        latest = _ray_compat.latest_checkpoint(trial)
        if latest is None:
            return
        before = sup.healthy_checkpoint(trial.trial_id)
        if sup.attach_checkpoint(trial.trial_id, latest[0], latest[1]):
            self._guard(trial, before, sup.healthy_checkpoint(trial.trial_id))

    @staticmethod
    def _guard(trial: Trial, before: Any, after: Any) -> None:
        """Protect the new last healthy checkpoint ``after`` from ``num_to_keep`` and hand the one
        it replaced back to Ray's rule (kept only if among the best)."""
        if after is None or _ray_compat.num_to_keep(trial) is None:
            return
        _ray_compat.protect_checkpoint(trial, after.checkpoint)
        if before is not None and _ray_compat.checkpoint_path(before.checkpoint) != \
                _ray_compat.checkpoint_path(after.checkpoint):
            _ray_compat.unprotect_checkpoint(trial, before.checkpoint, before.metrics)

    def _mutate(self, tune_controller: Any, trial: Trial, action: Action) -> None:
        _ray_compat.mutate_trial(tune_controller, trial, action.new_config, action.checkpoint,
                                 action.checkpoint_metrics)
        self._resume_first.add(trial.trial_id)


def _picklable(obj: Any) -> bool:
    try:
        cloudpickle.dumps(obj)
    except Exception:  # e.g. a listener bound to an open MLflow client: re-attach it after restore
        return False
    return True


__all__ = ["SmartScheduler"]
