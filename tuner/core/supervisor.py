"""Supervisor: the Ray-free heart of SmartScheduler (also driven directly by the benchmarks).

Per trial it keeps one :class:`~tuner.core.policy.TrialMonitor` (history, early stopping, recovery
budget), the trial's *last healthy checkpoint* and the config it was last given. For every result:

    decision = monitor.observe(result, now)            # record -> diagnose -> decide
    continue -> Action("continue")
    mutate   -> planner.propose(...) ; roll back to the last healthy checkpoint
                (no healthy checkpoint yet -> restart instead)
    restart  -> planner.propose(...) (it raises _restart_generation by one) ; from scratch (checkpoint None)
    stop     -> Action("stop") (early stopping, or the recovery budget is spent)

The last healthy checkpoint is the checkpoint reported with the last result whose
``Decision.healthy`` is true (no critical problem), or the older one a trial restored because
that one could not be read (the ``checkpoint.*`` keys of tuner/contract.py, :meth:`_fell_back`).
Callers that have the checkpoint together with its result pass it to :meth:`on_result`; Ray Tune
registers a result's checkpoint only *after* the scheduler has seen the result, so SmartScheduler
hands it over later with :meth:`attach_checkpoint` (matched by ``validation.step``).

Outcomes: the validation.loss ``outcome_reports`` reports after a recovery (or the last one, at
completion, early stopping or a crash) is told to the RecoveryPlanner, so its Optuna study learns
which proposals worked (lower is better; a NaN loss marks the recovery failed). A recovery that
ends in another recovery (or a stop for a spent budget) within those reports did not hold: it is
told +inf, the documented penalty, before the next proposal is drawn, so the study never ranks
a failed recovery by the loss of the report on which it failed.

Trial errors: :meth:`on_error` takes the error's kind (tuner/core/trial_errors.py): a lost node is
resumed unchanged (Action "resume"), an out-of-memory or crashed trial is retried with its
``training_recovery.actions`` adjustment (default ``batch_size // 2``, min 8) from its last
healthy checkpoint. Restart from scratch needs no Ray internals: it bumps
``config["_restart_generation"]``; the trainable ignores checkpoints of older generations.

Every decision other than continue is an :class:`~tuner.core.interventions.Intervention`: kept in
``interventions``, printed as one line, appended to ``<experiment_dir>/interventions.jsonl`` and
given to the listeners (e.g. the MLflow callback). ``state_dict`` holds everything (monitors,
budgets, interventions, healthy checkpoints as paths, study location) as JSON-able data;
:meth:`save` appends what changed (new interventions, one line per changed trial) to the journal
``<experiment_dir>/smart_tuner_state.jsonl`` (tuner/core/supervisor_state.py) after every intervention
and completion, and at most every ``persist_every_s`` seconds otherwise; :meth:`load` reads it
back (or the ``smart_tuner_state.json`` of earlier versions) and compacts it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.core.config import SmartConfig
from tuner.contract import (CHECKPOINT_RESTORED, CHECKPOINT_RESTORED_STEP, CHECKPOINT_UNREADABLE,
                             INTERVENTIONS_FILE, ActionKind, numeric)
from tuner.core.interventions import Intervention, append_jsonl
from tuner.core.policy import Decision, TrialMonitor
from tuner.core.recovery import RecoveryPlanner, answered, apply_adjustment, storage_url
from tuner.core.supervisor_state import (JOURNAL_FILE, HealthyCheckpoint, StateJournal, TrialState,
                                    check_version, checkpoint_to_state, encode, header_record,
                                    intervention_record, read_state, saved_trial_ids,
                                    trial_from_dict, trial_record, trial_to_dict, tried_unreadable)
from tuner.core.trial_errors import NODE_LOST, TRIAL_CRASH, TrialError

logger = logging.getLogger(__name__)


Listener = Callable[[Intervention], None]


@dataclass(frozen=True)
class Action:
    """What the caller must do with a trial.

    kind: tuner.contract.ActionKind; "retry" after a crash or out of memory, "resume" after a
    lost node (unchanged, from the caller's own latest checkpoint).
    new_config: the trial's whole new config (mutate/restart/retry).
    checkpoint: resume from this checkpoint (None: from scratch for restart; for retry with no
    healthy checkpoint, from scratch too). checkpoint_metrics: the metrics reported with it.
    """
    kind: ActionKind
    new_config: dict[str, Any] | None = None
    checkpoint: Any | None = None
    checkpoint_metrics: dict[str, Any] | None = None
    intervention: Intervention | None = None


CONTINUE = Action("continue")


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{float(value):g}"


class Supervisor:
    """One decision core for all trials of a sweep; see the module docstring."""

    def __init__(self, cfg: SmartConfig, experiment_dir: str | Path | None,
                 planner: RecoveryPlanner | None = None, *, outcome_reports: int = 3,
                 persist_every_s: float = 10.0, echo: bool = True) -> None:
        if outcome_reports < 1:
            raise ValueError(f"outcome_reports must be >= 1, got {outcome_reports!r}")
        self.cfg = cfg
        self.experiment_dir = None if experiment_dir is None else Path(experiment_dir)
        self.storage = self._study_storage()
        self.planner = planner if planner is not None else self._make_planner()
        self.outcome_reports = int(outcome_reports)
        self.persist_every_s = float(persist_every_s)
        self.echo = echo
        self.interventions: list[Intervention] = []
        self._trials: dict[str, TrialState] = {}
        self._listeners: list[Listener] = []
        self._last_save = -math.inf
        self._journal = None if self.experiment_dir is None else StateJournal(self.experiment_dir)
        self._dirty: set[str] = set()     # trials changed since they were last journaled
        self._lines: dict[str, str] = {}  # each trial's last journal line (compaction reuses it)
        self._saved_interventions = 0     # interventions already journaled
        self._loss_name = cfg.metric_name("validation.loss") or ""

    # ------------------------------------------------------------------ set-up
    def _study_storage(self) -> str | None:
        if self.experiment_dir is not None:
            self.experiment_dir.mkdir(parents=True, exist_ok=True)
        return storage_url(self.cfg, self.experiment_dir)

    def _make_planner(self) -> RecoveryPlanner:
        return RecoveryPlanner(self.cfg, self.storage, study_name=self.cfg.optuna.study_name,
                               seed=self.cfg.optuna.seed)

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(intervention)`` for every intervention from now on."""
        self._listeners.append(fn)

    def _trial(self, trial_id: str, config: Mapping[str, Any] | None, now: float) -> TrialState:
        state = self._trials.get(trial_id)
        if state is None:
            state = TrialState(TrialMonitor(self.cfg, start_time=now), dict(config or {}))
            self._trials[trial_id] = state
        self._dirty.add(trial_id)
        return state

    # ------------------------------------------------------------------ queries
    @property
    def trial_ids(self) -> list[str]:
        return list(self._trials)

    def healthy_checkpoint(self, trial_id: str) -> HealthyCheckpoint | None:
        state = self._trials.get(trial_id)
        return None if state is None else state.healthy

    def expected_config(self, trial_id: str) -> dict[str, Any] | None:
        """The config this supervisor last gave the trial (None: unknown trial)."""
        state = self._trials.get(trial_id)
        return None if state is None else dict(state.config)

    def recoveries(self, trial_id: str) -> int:
        state = self._trials.get(trial_id)
        return 0 if state is None else state.monitor.recoveries

    def is_finished(self, trial_id: str) -> bool:
        state = self._trials.get(trial_id)
        return state is not None and state.finished

    # ------------------------------------------------------------------ events
    def attach_checkpoint(self, trial_id: str, checkpoint: Any, metrics: Mapping[str, Any]) -> bool:
        """A checkpoint registered after its result was seen; adopt it if that result was healthy.

        Matched by ``validation.step`` in ``metrics``; returns True when it became the trial's
        last healthy checkpoint. Idempotent (seeing the same checkpoint again does nothing).
        """
        state = self._trials.get(trial_id)
        if state is None or state.pending is None:
            return False
        name = self.cfg.metric_name("validation.step") or "validation.step"
        step, result = state.pending
        value = metrics.get(name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or int(value) != step:
            return False
        state.healthy = HealthyCheckpoint(checkpoint, step, dict(result))
        state.pending = None
        self._dirty.add(trial_id)
        return True

    def on_result(self, trial_id: str, config: Mapping[str, Any], result: Mapping[str, Any],
                  checkpoint: Any | None, now: float) -> Action:
        """Record ``result`` (and the ``checkpoint`` reported with it, if known) and decide."""
        state = self._trial(trial_id, config, now)
        if state.config != config:   # a copy only when the config changed, not on every result
            state.config = dict(config)
        if isinstance(result.get(CHECKPOINT_RESTORED), str):
            self._fell_back(trial_id, state, result)
        decision = state.monitor.observe(result, now)
        step = state.monitor.history.step
        numbers = numeric(result)
        state.last_loss = numbers.get(self._loss_name, math.nan)
        if decision.healthy:
            state.pending = (step, numbers)
            if checkpoint is not None:
                state.healthy, state.pending = HealthyCheckpoint(checkpoint, step, numbers), None
        action = self._act(trial_id, state, decision, step, now)
        if action.kind == "continue":
            self._count_outcome(trial_id, state)
            self._maybe_save(now)
        return action

    def _fell_back(self, trial_id: str, state: TrialState, result: Mapping[str, Any]) -> None:
        """The trial could not read the checkpoint it was given and restored an older one. When
        the last healthy checkpoint is one it found unreadable, the restored one takes its place
        (journaled with this result), so a rollback does not read the unreadable file again.
        Its metrics are the replaced checkpoint's with ``validation.step`` set to the restored
        one (Ray's iteration counter runs on from the replaced one, as after the fallback itself).
        """
        healthy, step = state.healthy, result.get(CHECKPOINT_RESTORED_STEP)
        restored, asked = str(result[CHECKPOINT_RESTORED]), str(result.get(CHECKPOINT_UNREADABLE))
        if healthy is None or not isinstance(step, (int, float)) or not math.isfinite(step) or \
                not tried_unreadable(checkpoint_to_state(healthy.checkpoint), asked, restored):
            return
        name = self.cfg.metric_name("validation.step") or "validation.step"
        state.healthy = HealthyCheckpoint(restored, int(step), {**healthy.metrics, name: float(step)})
        self._last_save = -math.inf   # journal it with this result
        logger.info("trial %s: last healthy checkpoint %s cannot be read; now %s (validation %d)",
                    trial_id, checkpoint_to_state(healthy.checkpoint), restored, int(step))

    def _act(self, trial_id: str, state: TrialState, decision: Decision, step: int,
             now: float) -> Action:
        if decision.action == "continue":
            return CONTINUE
        if decision.needs_recovery:
            self._tell_failed(trial_id, state)
        if decision.action == "stop":
            state.finished = True
            self._tell_outcome(trial_id, state)
            record = Intervention.create(trial_id, step, now, "stop", decision.problems,
                                         decision.reasons, state.config, state.config)
            self._record(record)
            return Action("stop", intervention=record)
        kind = decision.action
        if kind == "mutate" and state.healthy is None:
            kind = "restart"   # nothing healthy to roll back to
        self._tell_outcome(trial_id, state)
        new_config = dict(self.planner.propose(trial_id, state.config, decision.acting, kind))
        healthy = state.healthy if kind == "mutate" else None
        if kind == "restart":   # propose() raised the generation: older checkpoints are ignored
            state.healthy = None
        state.monitor.rolled_back(now, kind)
        state.pending = None
        state.outcome_due = self.outcome_reports
        acted = answered(decision.acting)
        record = Intervention.create(trial_id, step, now, kind, acted, decision.reasons,
                                     state.config, new_config,
                                     None if healthy is None else healthy.step,
                                     [p for p in decision.problems if p not in acted])
        state.config = new_config
        self._record(record)
        return Action(kind, new_config, None if healthy is None else healthy.checkpoint,
                      None if healthy is None else dict(healthy.metrics), record)

    def on_error(self, trial_id: str, config: Mapping[str, Any], now: float,
                 error: TrialError | None = None, resume_step: int | None = None) -> Action:
        """A failed trial that will be retried, by the kind of its error (tuner/core/trial_errors.py).

        ``node_lost``: Action("resume") with the config unchanged: the caller resumes the trial
        from its own latest checkpoint (``resume_step``: that checkpoint's validation.step, for
        the record); neither the crash-retry count nor the recovery budget changes.
        ``out_of_memory`` / ``trial_crash`` (also ``error=None``): Action("retry") with the
        kind's adjustments from ``training_recovery.actions`` (default ``batch_size // 2``,
        min 8), from the last healthy checkpoint. A value the adjustment would raise (a batch
        already below the minimum) is kept, and the reason says so: the retry is Ray's
        (``FailureConfig(max_failures)``), so it is neither refused nor disguised.
        """
        error = error or TrialError(TRIAL_CRASH, "unknown", "")
        state = self._trial(trial_id, config, now)
        step = state.monitor.history.step if len(state.monitor.history) else 0
        problem = {"kind": error.kind, "severity": "critical", "metric": "error", "value": None,
                   "threshold": None, "step": step, "message": error.describe()}
        if error.kind == NODE_LOST:
            losses = 1 + sum(1 for i in self.interventions if i.trial_id == str(trial_id)
                             and any(p.get("kind") == NODE_LOST for p in i.problems))
            where = "its latest checkpoint" if resume_step is None else f"validation {resume_step}"
            record = Intervention.create(
                trial_id, step, now, "resume", (problem,),
                (f"{error.describe()} (node loss {losses}); resuming unchanged from {where}",),
                config, config, resume_step)
            self._record(record)
            return Action("resume", dict(config), intervention=record)
        state.retries += 1
        self._tell_outcome(trial_id, state)
        new_config, change = self._error_adjustment(error.kind, config)
        healthy = state.healthy
        record = Intervention.create(
            trial_id, step, now, "retry", (problem,),
            (f"{error.describe()} (retry {state.retries}); {change}",),
            config, new_config, None if healthy is None else healthy.step)
        state.config = new_config
        state.pending = None
        self._record(record)
        return Action("retry", new_config, None if healthy is None else healthy.checkpoint,
                      None if healthy is None else dict(healthy.metrics), record)

    def _error_adjustment(self, kind: str, config: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """The config after the ``training_recovery.actions[kind]`` adjustments, and what changed."""
        new_config, changed, kept = dict(config), [], []
        for adj in self.cfg.training_recovery.actions.get(kind, ()):
            old = config.get(adj.param)
            value = apply_adjustment(adj, old)
            shown = old if old is not None else f"(default {_fmt(adj.default)})"
            if value is None:
                kept.append(f"config has no {adj.param}")
            elif isinstance(old, (int, float)) and adj.mode == "scale" and adj.high <= 1 \
                    and value >= old:
                kept.append(f"{adj.param} {old} is already at the minimum {_fmt(adj.min)}")
            else:
                new_config[adj.param] = value
                changed.append(f"{adj.param} {shown} -> {value}")
        if changed:
            return new_config, "retrying with " + ", ".join(changed)
        reason = "; ".join(kept) or f"no training_recovery.actions.{kind} adjustment"
        return new_config, f"{reason}: retrying unchanged"

    def on_complete(self, trial_id: str, result: Mapping[str, Any] | None = None) -> None:
        """The trial finished (or failed for good): tell any outstanding outcome, save."""
        state = self._trials.get(trial_id)
        if state is None:
            return
        if result:
            state.last_loss = numeric(result).get(self._loss_name, state.last_loss)
        self._tell_outcome(trial_id, state)
        state.finished = True
        self._dirty.add(trial_id)
        self.save()

    # ------------------------------------------------------------------ outcomes
    def _count_outcome(self, trial_id: str, state: TrialState) -> None:
        if state.outcome_due is None:
            return
        state.outcome_due -= 1
        if state.outcome_due <= 0:
            self._tell_outcome(trial_id, state)

    def _tell_failed(self, trial_id: str, state: TrialState) -> None:
        """The trial's last recovery is still within its outcome window and another is needed:
        it did not hold; told +inf (RecoveryPlanner's documented penalty for a failed recovery)."""
        if state.outcome_due is None:
            return
        state.outcome_due = None
        try:
            self.planner.report_outcome(trial_id, math.inf)
        except Exception:  # the study is advisory: a storage hiccup must not kill the sweep
            logger.exception("could not report the failed recovery of trial %s", trial_id)

    def _tell_outcome(self, trial_id: str, state: TrialState) -> None:
        if state.outcome_due is None:
            return
        state.outcome_due = None
        try:
            self.planner.report_outcome(trial_id, float(state.last_loss))
        except Exception:  # the study is advisory: a storage hiccup must not kill the sweep
            logger.exception("could not report the recovery outcome of trial %s", trial_id)

    # ------------------------------------------------------------------ interventions
    def _record(self, intervention: Intervention) -> None:
        self.interventions.append(intervention)
        if self.echo:
            print(intervention.line(), flush=True)
        logger.info("%s", intervention.line())
        for problem in intervention.held_back:   # seen with it, not acted on: the log keeps them
            logger.info("  not acted on: %s", problem.get("message", problem.get("kind")))
        if self.experiment_dir is not None:
            append_jsonl(self.experiment_dir / INTERVENTIONS_FILE, intervention)
        for fn in self._listeners:
            try:
                fn(intervention)
            except Exception:
                logger.exception("intervention listener %r failed", fn)
        self.save()

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything as JSON-able data (tuner/core/supervisor_state.py has the per-trial form)."""
        return {"version": 1, "trials": {t: trial_to_dict(s) for t, s in self._trials.items()},
                "interventions": [i.to_dict() for i in self.interventions],
                "study": {"storage": self.storage, "study_name": self.cfg.optuna.study_name},
                "planner": self.planner.state_dict()}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict` (healthy checkpoints come back as path strings)."""
        check_version(d)
        self._trials = {str(t): trial_from_dict(s, self.cfg) for t, s in d["trials"].items()}
        self.interventions = [Intervention.from_dict(i) for i in d.get("interventions", ())]
        if d.get("planner"):
            self.planner.load_state_dict(d["planner"])
        self._dirty, self._saved_interventions = set(self._trials), len(self.interventions)
        self._lines = {}
        if self._journal is not None:
            self._journal.fresh = True   # the next save writes a snapshot of this state

    def _trial_record(self, trial_id: str) -> dict[str, Any]:
        return trial_record(trial_id, self._trials[trial_id], self.planner.pending.get(trial_id),
                            self.planner.baselines.get(trial_id))

    def _snapshot(self) -> list[str]:
        study = {"storage": self.storage, "study_name": self.cfg.optuna.study_name}
        return [encode(header_record(study)), *(self._lines[t] for t in self._trials),
                *(encode(intervention_record(i.to_dict())) for i in self.interventions)]

    def save(self, now: float | None = None) -> Path | None:
        """Journal what changed since the last save: new interventions, then one line per changed
        trial (O(1) in the number of trials); a snapshot instead when the journal is new to this
        process or due for compaction."""
        if self._journal is None:
            return None
        if now is not None:
            self._last_save = now
        journal = self._journal
        for trial_id in self._dirty:
            self._lines[trial_id] = encode(self._trial_record(trial_id))
        if journal.fresh or journal.needs_compaction(len(self._trials) + len(self.interventions)):
            journal.rewrite(self._snapshot())   # no trial encoded again: O(size) text, once in a while
        else:
            journal.append([*(encode(intervention_record(i.to_dict()))
                              for i in self.interventions[self._saved_interventions:]),
                            *(self._lines[t] for t in self._dirty)])
        self._dirty.clear()
        self._saved_interventions = len(self.interventions)
        return journal.path

    def _maybe_save(self, now: float) -> None:
        if self.experiment_dir is not None and now - self._last_save >= self.persist_every_s:
            self.save(now)

    def load(self) -> bool:
        """Load the journal (or an earlier version's state file) if there is one, and compact it
        into a fresh journal; True when loaded."""
        state = None if self.experiment_dir is None else read_state(self.experiment_dir)
        if state is None:
            return False
        self.load_state_dict(state)
        self.save()
        return True

    @staticmethod
    def saved_trial_ids(experiment_dir: str | Path) -> set[str]:
        """Trial ids in the saved state (empty when there is none)."""
        return saved_trial_ids(experiment_dir)


__all__ = ["Action", "CONTINUE", "HealthyCheckpoint", "JOURNAL_FILE", "Supervisor",
           "checkpoint_to_state"]
