"""Fault injection for tests and benchmarks: the trial config's ``inject`` mapping.

Keys (step S is the optimizer step after which ``training.step`` == S, counted from 1):

- ``nan_at_step: S`` — the loss of step S is multiplied by NaN, so its gradients are NaN: the
  step is skipped (``nan_skips`` + 1) and ``grad.norm`` of that interval is NaN.
- ``explode_after_step: S`` (alias ``explode_lr_after_step``) — from step S on, while the trial's
  configured ``learning_rate`` is above ``explode_lr_threshold``, gradients are multiplied by
  ``explode_factor`` (default 1e4) before clipping, so ``grad.norm`` explodes. A recovery that
  lowers the learning rate to the threshold or below cures it.
- ``explode_lr_threshold`` — default: 0.75 x the learning rate the trial first trained with
  (kept in its checkpoint), so halving the LR cures an explosion; 0 makes it incurable by LR.
- ``nan_params_at_step: S`` — after step S's update one weight becomes NaN: the loop restores
  the last checkpoint in-process (``restored_from_nan`` + 1).
- ``lr_spike_at_step: S``, ``lr_spike_steps: W`` (default 50), ``lr_spike_factor: K`` (default
  20.0) — a transient learning-rate spike: steps S..S+W-1 train at K x their scheduled learning
  rate (``group["lr"]``; the reported ``learning_rate`` is the one applied). Its end depends on no
  hyperparameter: it lasts W steps whatever the trial's ``learning_rate`` or a scheduler changes.
  S = 0 is off.

``nan_at_step``, ``nan_params_at_step`` and the spike are one-shot faults, like a transient
hardware, data or schedule glitch: each fires once per trial. The loop records a fired fault in
``injected_faults.json`` in the trial folder, so a trial rolled back by the scheduler to a
checkpoint before S (or resumed after a crash) trains through step S again without it, instead of
re-firing after every rollback. The spike is recorded there when its LAST step, S+W-1, has run:
after that, a rollback to a checkpoint before S (or a resume) trains through S..S+W-1 at the
scheduled rate. Until then the window is unfinished: a trial that crashes or is restored from a
checkpoint before S+W-1 replays the window's steps from its checkpoint on (all of S..S+W-1 from
a checkpoint before S) spiked. (An in-process restore after non-finite parameters does not rewind
the step count, so the window just goes on.)

The explosion (``explode_after_step``) is a persistent fault by design: it lasts while the
learning rate stays above its threshold, so a recovery that does not lower it enough explodes
again, is told to the recovery study as failed, and the recovery budget ends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FaultInjector"]

DEFAULT_EXPLODE_FACTOR = 1e4
ONE_SHOT = ("nan_at_step", "nan_params_at_step")
SPIKE = "lr_spike_at_step"   # the spike's key in injected_faults.json
DEFAULT_SPIKE_STEPS = 50
DEFAULT_SPIKE_FACTOR = 20.0
FIRED_FILE = "injected_faults.json"
DEFAULT_THRESHOLD_RATIO = 0.75


@dataclass(frozen=True)
class FaultInjector:
    """Answers, per step, which fault (if any) the loop applies."""

    inject: Mapping[str, float]
    learning_rate: float  # the trial's current configured (peak) learning rate
    initial_learning_rate: float  # the learning rate it first trained with
    fired: frozenset[str] = frozenset()  # one-shot faults this trial has already had

    def loss_factor(self, step: int) -> float:
        """NaN at ``nan_at_step`` (unless it fired before), else 1.0."""
        return float("nan") if self._fires("nan_at_step", step) else 1.0

    def _fires(self, key: str, step: int) -> bool:
        return key not in self.fired and self.inject.get(key) == step

    def grad_factor(self, step: int) -> float:
        """``explode_factor`` from ``explode_after_step`` on while LR > threshold, else 1.0."""
        onset = self.inject.get("explode_after_step", self.inject.get("explode_lr_after_step"))
        if onset is None or step < onset:
            return 1.0
        threshold = self.inject.get(
            "explode_lr_threshold", DEFAULT_THRESHOLD_RATIO * self.initial_learning_rate
        )
        if self.learning_rate <= threshold:
            return 1.0
        return float(self.inject.get("explode_factor", DEFAULT_EXPLODE_FACTOR))

    def _spike_window(self) -> range:
        """Steps S..S+W-1 of a spike that has not fired yet (empty without one)."""
        start = self.inject.get(SPIKE)
        if not start or SPIKE in self.fired:   # absent, or S = 0: off
            return range(0)
        return range(int(start), int(start) + int(self.inject.get("lr_spike_steps", DEFAULT_SPIKE_STEPS)))

    def lr_factor(self, step: int) -> float:
        """``lr_spike_factor`` inside the spike's window (unless it fired before), else 1.0."""
        if step in self._spike_window():
            return float(self.inject.get("lr_spike_factor", DEFAULT_SPIKE_FACTOR))
        return 1.0

    def corrupt_params(self, step: int) -> bool:
        """True at ``nan_params_at_step`` (unless it fired before)."""
        return self._fires("nan_params_at_step", step)

    def firing(self, step: int) -> set[str]:
        """The one-shot faults that fire at ``step`` (to be recorded as fired); the spike at its
        window's last step."""
        window = self._spike_window()
        return {k for k in ONE_SHOT if self._fires(k, step)} | ({SPIKE} if window and step == window[-1] else set())
