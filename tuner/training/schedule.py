"""Learning-rate schedule of a trial: linear warm-up, then exponential or cosine decay.

With ``s = step - start_step`` (steps since the schedule last (re)started), ``W`` warm-up steps,
``D`` decay steps, peak ``lr`` (the trial's *current* ``learning_rate``) and floor
``lr_min = lr * min_lr_ratio``:

- warm-up, ``s < W``:       ``lr * (s + 1) / W``
- exponential, ``s >= W``:  ``max(lr_min, lr * 0.5 ** ((s - W) / D))``   (halves every D steps)
- cosine, ``s >= W``:       ``lr_min + (lr - lr_min) * (1 + cos(pi * min(1, (s - W) / D))) / 2``
- constant:                 ``lr`` after warm-up

The peak is read from the config at every step, so a changed ``learning_rate`` takes effect at
once on restore, at the same point of the schedule; ``restart(step)`` (``lr_restart: true``)
sets ``start_step = step`` so warm-up runs again from the new peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LRSchedule"]


@dataclass
class LRSchedule:
    """Warm-up + decay; its only state is ``start_step`` (saved in checkpoints)."""

    kind: str = "exponential"
    warmup_steps: int = 50
    decay_steps: int = 4000
    min_lr_ratio: float = 0.01
    start_step: int = 0

    def lr(self, peak: float, step: int) -> float:
        """The learning rate for optimizer step ``step`` (0-based) with peak ``peak``."""
        s = max(0, step - self.start_step)
        if s < self.warmup_steps:
            return peak * (s + 1) / self.warmup_steps
        floor = peak * self.min_lr_ratio
        t = (s - self.warmup_steps) / self.decay_steps
        if self.kind == "exponential":
            return max(floor, peak * 0.5**t)
        if self.kind == "cosine":
            return floor + (peak - floor) * (1.0 + math.cos(math.pi * min(1.0, t))) / 2.0
        return peak

    def restart(self, step: int) -> None:
        """Start the schedule again at ``step`` (warm-up from the current peak)."""
        self.start_step = int(step)

    def state_dict(self) -> dict[str, int]:
        return {"start_step": int(self.start_step)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.start_step = int(state["start_step"])
