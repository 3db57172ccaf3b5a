"""Policy: a trial's problems + guards + budget -> Decision (continue / mutate / restart / stop).

`TrialMonitor` is the per-trial state machine the scheduler drives (one per trial, no Ray):
`observe(result, now)` records the result, runs the rules and decides:

1. Recovery is called for by any critical problem, or by at least
   `diagnostics.serious_problems_for_restart` serious ones at once. Warnings never intervene.
2. Guards: until the trial has trained `min_training_time` seconds (since its start or its last
   restart from scratch) *and* reached `validation.step` >= `min_validation_steps`, recovery
   triggered by slow-to-judge rules (attention, gate, stagnation, overfitting, degradation,
   validation loss, serious grad-norm) is held back, since early training legitimately looks bad.
   Non-finite values and critical explosions (a grad.norm above the critical limit, a jump of the
   validation loss) are unambiguous and are acted on at once: waiting only trains a broken model
   longer.
3. Action: "restart" (from scratch) when nothing healthy exists to roll back to (no healthy
   result since the trial (re)started), when the critical problem has been critical at every
   report since the (re)start (e.g. attention that never formed), for a finite validation loss
   above its limit and for training degradation; "mutate" (roll back to the last healthy
   checkpoint with new hyperparameters) otherwise, NaN/Inf anywhere included: the weights of the
   last healthy checkpoint were fine, the step that followed them diverged.
4. Budget: a trial that needs a recovery after `max_recoveries_per_trial` is stopped, with the reason.
   `training_recovery.enabled: false` never mutates or restarts.
5. Early stopping: no improvement of `early_stopping.metric` by `min_delta` for `patience`
   reports -> "stop" (checked after recovery, so a sick trial is repaired rather than stopped).

After the scheduler has rolled the trial back it calls `rolled_back(now)`: the window restarts so
stale evidence does not fire again, and the recovery count goes up. What happens next depends on
the fault: the trial trains again from the healthy checkpoint under its new config; a transient
fault (one bad batch, an injected `nan_at_step`, which fires once per trial) does not come back;
a fault the new config does not cure (a learning rate still too high) is detected again, that
recovery is told to the study as failed (+inf), and after `max_recoveries_per_trial` the trial is
stopped instead of being rolled back forever.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, cast

from tuner.core.config import SmartConfig
from tuner.contract import RECOVERY_ACTIONS, ActionKind
from tuner.core.history import History
from tuner.core.rules import Problem, active_rules, diagnose

# Problem kinds whose recovery is a restart from scratch (the model itself is unusable).
RESTART_KINDS = frozenset({"validation_loss", "training_degradation"})


@dataclass(frozen=True)
class Decision:
    action: ActionKind               # "continue" | "mutate" | "restart" | "stop"
    reasons: tuple[str, ...]
    problems: tuple[Problem, ...]
    healthy: bool                    # no critical problem that counts now (its checkpoint may be rolled
                                     # back to); inside the guards only unambiguous ones count
    acting: tuple[Problem, ...] = () # what a recovery answers: every problem, or inside the guards only
                                     # the unambiguous ones (the planner must not "fix" an untrained
                                     # model's attention or gate)
    needs_recovery: bool = False     # a recovery was called for (mutate/restart, or a stop because
                                     # the recovery budget is spent): a recovery still within its
                                     # outcome window did not hold


# The decision on a report without any problem (most reports): one shared, immutable instance.
QUIET = Decision("continue", (), (), True)


def _unambiguous(problem: Problem) -> bool:
    """Non-finite values and critical explosions (grad.norm, a validation-loss jump): never held
    back by the guards."""
    if problem.severity != "critical":
        return False
    return not math.isfinite(problem.value) or problem.kind == "gradient_explosion"


class TrialMonitor:
    """History, early-stopping and recovery-budget state of one trial, and its decisions."""

    def __init__(self, cfg: SmartConfig, start_time: float) -> None:
        self.cfg = cfg
        self.history = History.for_config(cfg)
        self._rules = active_rules(self.history, cfg)   # fixed by the config: found once, not per result
        self.start_time = float(start_time)
        self.recoveries = 0
        self.ever_healthy = False            # a healthy result since the trial (re)started
        self.always_critical: set[str] | None = None   # kinds critical at every report since (re)start
        self.best: float | None = None       # best early-stopping metric so far
        self.reports_since_best = 0
        self.last_action: ActionKind = "continue"
        self._budget_spent = False

    def guarded(self, now: float) -> bool:
        """True while the trial is younger than min_training_time or min_validation_steps."""
        rec = self.cfg.training_recovery
        return now - self.start_time < rec.min_training_time or self.history.step < rec.min_validation_steps

    # ------------------------------------------------------------------ decide
    def observe(self, result: Mapping[str, Any], now: float) -> Decision:
        """Record `result`, diagnose the window and decide what happens to the trial.

        `healthy`: no critical problem that counts now. Inside the guards only unambiguous ones
        (non-finite values, grad.norm above critical) count, so the checkpoints of an untrained
        model whose attention has not formed yet are still healthy ones to roll back to.
        """
        self.history.append(result)
        problems = tuple(diagnose(self.history, self.cfg, self._rules))
        if problems:
            # the one place the guards filter: what counts now, hence what a recovery answers
            acting = tuple(p for p in problems if _unambiguous(p)) if self.guarded(now) else problems
            healthy = not any(p.severity == "critical" for p in acting)
            kinds = {p.kind for p in problems if p.severity == "critical"}
            self.always_critical = kinds if self.always_critical is None else self.always_critical & kinds
        else:   # most results: what the lines above give for no problems, without building it
            acting, healthy, self.always_critical = (), True, set()
        self.ever_healthy = self.ever_healthy or healthy
        self._track_best()
        action, reasons = self._decide(problems, acting, now)
        self.last_action = action
        if action == "continue" and not problems:
            return QUIET
        needs = action in RECOVERY_ACTIONS or (action == "stop" and self._budget_spent)
        return Decision(action, tuple(reasons), problems, healthy, acting, needs)

    def _decide(self, problems: tuple[Problem, ...], acting: tuple[Problem, ...],
                now: float) -> tuple[ActionKind, list[str]]:
        """The action and its reasons. A recovery is called for by the critical problems, or by
        enough serious ones at once; it answers those of them that count now (in `acting`)."""
        if not problems:   # most results: what the lines below give for no problems
            self._budget_spent = False
            stop = self._early_stop_reason()
            return ("stop", [stop]) if stop else ("continue", [])
        rec = self.cfg.training_recovery
        critical = [p for p in problems if p.severity == "critical"]
        serious = [p for p in problems if p.severity == "serious"]
        enough_serious = len(serious) >= self.cfg.diagnostics.serious_problems_for_restart
        trigger = critical or (serious if enough_serious else [])
        reasons = [p.message for p in problems]
        self._budget_spent = False
        if trigger and rec.enabled:
            answered = tuple(p for p in acting if p.severity == trigger[0].severity)
            if not answered:
                return "continue", reasons + [
                    f"recovery held back by the guards: {now - self.start_time:.0f} s of "
                    f"{rec.min_training_time:.0f} s, validation {self.history.step} of "
                    f"{rec.min_validation_steps}"]
            if self.recoveries >= rec.max_recoveries_per_trial:
                self._budget_spent = True
                return "stop", reasons + [
                    f"recovery budget spent: {self.recoveries} of {rec.max_recoveries_per_trial} recoveries "
                    f"used, and {answered[0].kind} needs another"]
            action = self._recovery_action(answered)
            why = "critical problem" if critical else f"{len(serious)} serious problems"
            return action, reasons + [f"{action}: {why} ({', '.join(sorted({p.kind for p in answered}))})"]
        stop = self._early_stop_reason()
        if stop:
            return "stop", reasons + [stop]
        return "continue", reasons

    def _recovery_action(self, acting: tuple[Problem, ...]) -> ActionKind:
        """restart: nothing healthy to roll back to, a problem critical since the first report,
        or a kind whose recovery is a restart; mutate otherwise."""
        if not self.ever_healthy:
            return "restart"
        if any(p.severity == "critical" and p.kind in (self.always_critical or set()) for p in acting):
            return "restart"
        if any(p.kind in RESTART_KINDS and math.isfinite(p.value) for p in acting):
            return "restart"
        return "mutate"       # including non-finite values: the last healthy weights were fine

    # ------------------------------------------------------------------ early stopping
    def _track_best(self) -> None:
        es = self.cfg.early_stopping
        if not es.enabled or not self.history.has(es.metric):
            return
        value = self.history.latest(es.metric)
        if math.isfinite(value) and (self.best is None or value < self.best - es.min_delta):
            self.best, self.reports_since_best = value, 0
        else:
            self.reports_since_best += 1

    def _early_stop_reason(self) -> str | None:
        es = self.cfg.early_stopping
        if not es.enabled or self.reports_since_best < es.patience:
            return None
        best = "none" if self.best is None else f"{self.best:.4g}"
        return (f"early stopping: {es.metric} did not improve on its best {best} by {es.min_delta} "
                f"for {self.reports_since_best} reports (patience {es.patience})")

    # ------------------------------------------------------------------ rollback
    def rolled_back(self, now: float, action: ActionKind | None = None) -> None:
        """The trial was rolled back (mutate) or restarted: count it and restart the window.

        `action` defaults to the last decision's action. After a restart from scratch the
        initial training loss, the healthy flag and the guard clock start over as well.
        """
        action = action or self.last_action
        self.recoveries += 1
        self.reports_since_best = 0
        restart = action == "restart"
        self.history.reset(keep_initial=not restart)
        # After a rollback to a healthy checkpoint nothing has been critical "since the start";
        # after a restart from scratch the start is now.
        self.always_critical = None if restart else set()
        if restart:
            self.ever_healthy = False
            self.start_time = float(now)
        self.last_action = "continue"

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Plain JSON-able state (floats may be NaN/Inf, which Python's json round-trips)."""
        return {"history": self.history.state_dict(), "start_time": self.start_time,
                "recoveries": self.recoveries, "ever_healthy": self.ever_healthy, "best": self.best,
                "always_critical": None if self.always_critical is None else sorted(self.always_critical),
                "reports_since_best": self.reports_since_best, "last_action": self.last_action}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        self.history.load_state_dict(d["history"])
        self.start_time = float(d["start_time"])
        self.recoveries = int(d["recoveries"])
        self.ever_healthy = bool(d["ever_healthy"])
        self.best = d["best"]
        always = d.get("always_critical")
        self.always_critical = None if always is None else set(always)
        self.reports_since_best = int(d["reports_since_best"])
        self.last_action = cast(ActionKind, str(d.get("last_action", "continue")))


__all__ = ["Decision", "TrialMonitor"]
