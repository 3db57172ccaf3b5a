"""Benchmark-only fault for real trials: a sustained learning-rate spike that AdamW cannot absorb.

``train_tts``'s own ``inject: {explode_after_step}`` multiplies the gradients before clipping;
clipping at ``grad_clip_thresh`` and AdamW's per-parameter normalisation absorb it (tier 2 of
the old benchmark: the "exploding" FIFO trial ended better than the repaired one). A learning
rate that jumps mid-training is what public Tacotron2 reports describe (divergence or lost
alignment after a schedule or restart mistake, cured by rolling back and lowering the rate).

Config keys ``_lr_spike_after_step: S``, ``_lr_spike_factor: K``, ``_lr_spike_threshold: T``
(flat numbers, so Ray Tune's search and a scheduler's config mutation carry them unchanged; S = 0
is off): from optimizer step S on (1-based, like ``tuner/training/faults.py``), while the trial's
configured ``learning_rate`` is above ``T`` (set by the benchmark to 0.75 x the trial's original
learning rate, so halving the rate cures it), every step's scheduled learning rate is multiplied
by ``K``; only ``learning_rate`` decides.

``train_tts_spiked(config)`` is a Ray Tune function trainable: ``train_tts`` with the trial's
``LRSchedule`` replaced by ``SpikedSchedule`` for the duration of the call (the product code
is not changed; the replacement is undone when the trial returns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from tuner.training.schedule import LRSchedule

SPIKE_KEYS = ("_lr_spike_after_step", "_lr_spike_factor", "_lr_spike_threshold")


def spike_keys(after_step: int, factor: float, threshold: float) -> dict[str, float]:
    """The config keys of a spike (``after_step`` 0: no spike)."""
    return dict(zip(SPIKE_KEYS, (int(after_step), float(factor), float(threshold))))


def spike_of(config: Mapping[str, Any]) -> dict[str, float] | None:
    """``{after_step, factor, threshold}`` from a trial config, or None when it has no spike."""
    after = int(config.get(SPIKE_KEYS[0], 0) or 0)
    if after <= 0:
        return None
    return {"after_step": after, "factor": float(config[SPIKE_KEYS[1]]), "threshold": float(config[SPIKE_KEYS[2]])}


@dataclass
class SpikedSchedule(LRSchedule):
    """LRSchedule whose rate is x ``factor`` from step ``after_step`` while the peak > ``threshold``."""

    after_step: int = 0
    factor: float = 1.0
    threshold: float = 0.0

    def lr(self, peak: float, step: int) -> float:
        base = super().lr(peak, step)
        if self.after_step and step + 1 >= self.after_step and peak > self.threshold:
            return base * self.factor
        return base


def spiked_factory(spike: Mapping[str, Any]) -> Any:
    """A drop-in for the ``LRSchedule`` constructor used by ``tuner.training.loop``."""

    def make(*args: Any, **kwargs: Any) -> SpikedSchedule:
        return SpikedSchedule(*args, **kwargs, after_step=int(spike["after_step"]),
                              factor=float(spike["factor"]), threshold=float(spike["threshold"]))

    return make


def run_spiked(config: Mapping[str, Any], session: Any) -> Any:
    """``run_training(config, session)`` with the config's spike applied (if any)."""
    from tuner.training import loop
    from tuner.trainable import run_training

    spike = spike_of(config)
    if spike is None:
        return run_training(config, session)
    original = loop.LRSchedule
    loop.LRSchedule = spiked_factory(spike)  # type: ignore[assignment]
    try:
        return run_training(config, session)
    finally:
        loop.LRSchedule = original  # type: ignore[assignment]


def train_tts_spiked(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: ``train_tts`` plus the optional learning-rate spike."""
    from tuner.training.session import RaySession

    run_spiked(config, RaySession())
