"""Injected faults of the surrogate trials: what each does to the curves, and what cures it.

A fault belongs to one trial. It has a kind, an onset (the validation report, 1-based, from
which it shows) and the trial's *original* hyperparameters, against which its cure condition is
judged. While a fault is *active* (report index >= onset and the trial's current config does not
satisfy the cure) it changes the trial's state and metrics as below; once cured, its damage heals
(or, for divergence, stays until the trial is rolled back to a checkpoint from before it).

| kind | effect while active | cure condition (the trial's own thresholds, drawn per trial) |
|---|---|---|
| gradient_explosion | first active report: grad.norm x ``EXPLOSION_GRAD`` (> 1e3), losses x3; then the weights are NaN: every loss and grad.norm NaN until a rollback | learning_rate <= ``lr_scale_max`` x original (the trial's stability limit) |
| overfitting | validation.loss stops improving at the onset and rises by ``slope`` (relative) per report; training.loss keeps falling | dropout >= original + ``dropout_shift``, or weight_decay >= ``weight_decay_scale`` x original, or learning_rate <= ``lr_scale_max`` x original |
| stagnation | no learning progress; losses frozen (no noise) | batch_size != original, or learning_rate changed by a factor >= ``lr_change`` (either way) |
| attention_collapse | attention score -> 0.02, validation.loss + 30% | guided_attention_weight >= ``guided_attention_scale`` x original |
| gate_collapse | gate accuracy -> 0.05, early-stop fraction -> 0.8, validation.loss + 20% | gate_loss_weight >= ``gate_loss_scale`` x original, or gate_pos_weight >= ``gate_pos_scale`` x original |
| corrupt_data | losses grow x1.5 per report, grad.norm x10 per report; NaN 5 reports after onset | none: unrecoverable (only stopping saves compute) |

Cures belong to the trial, not to any scheduler: each faulty trial draws its thresholds
(``Fault.cure``) from the scenario's ranges (``CURE_RANGES`` by default, ``faults.<kind>.cure``
in a scenario file), independently of Smart Tuner's adjustment regions in tuner/core/config.yaml.
Flags that only Smart Tuner sets (``lr_restart``, ``reset_attention``) cure nothing by
themselves: no recorded real run shows that they do.

NaN policy: faults are the only source of non-finite values in the surrogate; a diverged trial
reports NaN for training.loss, validation.loss, overfitting.gap and grad.norm (never 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

FAULT_KINDS: tuple[str, ...] = (
    "gradient_explosion",
    "overfitting",
    "stagnation",
    "attention_collapse",
    "gate_collapse",
    "corrupt_data",
)
UNRECOVERABLE: frozenset[str] = frozenset({"corrupt_data"})
EXPLOSION_NAN_KINDS: frozenset[str] = frozenset({"gradient_explosion"})

# Default ranges of the per-trial cure thresholds (uniform draws; see the module table).
# A trial is cured when ANY of its thresholds is met. Chosen once, before the comparison, from
# what the thresholds mean, not from tuner/core/config.yaml: a stability limit of the learning rate
# between 0.2x and 0.7x the sampled one (an unstable trial is rarely stable just below its rate,
# and rarely needs less than a fifth); a collapsed attention needs 1.2-2.5x its guided-attention
# weight; a collapsed gate 1.2-2.5x its loss weight or 1.1-2x its positive weight; overfitting
# yields to 0.05-0.2 more dropout, 3-30x the weight decay or 0.3-0.8x the learning rate; a
# stagnating trial needs another batch size or a learning rate moved by 1.5-3x.
CURE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "gradient_explosion": {"lr_scale_max": (0.2, 0.7)},
    "overfitting": {"dropout_shift": (0.05, 0.2), "weight_decay_scale": (3.0, 30.0), "lr_scale_max": (0.3, 0.8)},
    "stagnation": {"batch_size_changed": (1.0, 1.0), "lr_change": (1.5, 3.0)},
    "attention_collapse": {"guided_attention_scale": (1.2, 2.5)},
    "gate_collapse": {"gate_loss_scale": (1.2, 2.5), "gate_pos_scale": (1.1, 2.0)},
    "corrupt_data": {},
}
CURE_KEYS = frozenset(k for ranges in CURE_RANGES.values() for k in ranges)
EXPLOSION_GRAD = 2.0e3           # grad.norm multiplier on the exploding report
CORRUPT_NAN_AFTER = 5            # reports after onset until a corrupt-data trial is NaN


def _num(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key, default)
    return float(default if value is None else value)


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``kind``, ``onset`` (report index, 1-based) and the original config.

    ``slope`` is used by overfitting only: the validation-loss rise per report, as a fraction of
    the trial's loss floor.
    """

    kind: str
    onset: int
    base: Mapping[str, Any] = field(default_factory=dict)
    slope: float = 0.05
    cure: Mapping[str, float] = field(default_factory=dict)   # this trial's thresholds (see the table)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is unknown; use one of {', '.join(FAULT_KINDS)}")
        if self.onset < 1:
            raise ValueError(f"fault onset must be a report index >= 1, got {self.onset!r}")
        unknown = sorted(set(self.cure) - CURE_KEYS)
        if unknown:
            raise ValueError(f"fault cure keys {unknown} are unknown; use some of {sorted(CURE_KEYS)}")
        if not self.cure:   # a hand-built fault: the middle of the default ranges
            object.__setattr__(self, "cure", self.midpoint_cure(self.kind))

    @property
    def recoverable(self) -> bool:
        return self.kind not in UNRECOVERABLE

    def cured(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` meets any of this trial's cure thresholds (see the module table)."""
        b, c, need = self.base, config, self.cure
        if self.kind == "corrupt_data" or not need:
            return False
        lr0, lr = _num(b, "learning_rate", 0.0), _num(c, "learning_rate", 0.0)
        checks = {
            "lr_scale_max": lambda v: lr <= v * lr0,
            "lr_change": lambda v: lr0 > 0 and lr > 0 and abs(math.log(lr / lr0)) >= math.log(v) - 1e-12,
            "dropout_shift": lambda v: _num(c, "dropout", 0.0) >= _num(b, "dropout", 0.0) + v - 1e-12,
            "weight_decay_scale": lambda v: _num(c, "weight_decay", 0.0) >= v * max(_num(b, "weight_decay", 0.0), 1e-7),
            "batch_size_changed": lambda v: int(_num(c, "batch_size", 0)) != int(_num(b, "batch_size", 0)),
            "guided_attention_scale": lambda v: _num(c, "guided_attention_weight", 1.0) >= v * _num(b, "guided_attention_weight", 1.0),
            "gate_loss_scale": lambda v: _num(c, "gate_loss_weight", 1.0) >= v * _num(b, "gate_loss_weight", 1.0),
            "gate_pos_scale": lambda v: _num(c, "gate_pos_weight", 5.0) >= v * _num(b, "gate_pos_weight", 5.0),
        }
        return any(checks[k](float(v)) for k, v in need.items())

    @staticmethod
    def midpoint_cure(kind: str) -> dict[str, float]:
        """The middle of each default range (tests and hand-built faults)."""
        return {k: (lo + hi) / 2 for k, (lo, hi) in CURE_RANGES[kind].items()}

    def active(self, report: int, config: Mapping[str, Any]) -> bool:
        """Whether the fault acts on report ``report`` (1-based) under ``config``."""
        return report >= self.onset and not self.cured(config)


@dataclass(frozen=True)
class Damage:
    """Fault state carried in a surrogate checkpoint (all zero for a healthy trial)."""

    diverged: bool = False        # weights are NaN: every loss NaN until a rollback
    excess: float = 0.0           # extra validation loss, as a fraction of the floor
    attention: float = 0.0        # 0 = healthy attention, 1 = fully collapsed
    gate: float = 0.0             # 0 = healthy gate, 1 = fully collapsed
    corrupt_reports: int = 0      # active corrupt-data reports so far
    exploding: bool = False       # this report is the explosion report
    val_progress: float = -1.0    # overfitting: validation stops improving at this progress (-1: off)


HEAL = 0.4  # damage kept per report once a fault is cured (fast healing: 1 - 0.4 per report)


def advance(fault: Fault | None, damage: Damage, report: int, config: Mapping[str, Any],
            progress: float = 0.0) -> tuple[Damage, bool]:
    """Fault state after report ``report`` under ``config``; also whether learning is frozen.

    ``progress`` is the trial's learning progress before this report (overfitting freezes the
    validation curve there and adds its rising excess on top).

    A diverged trial stays diverged whatever the config (NaN weights do not heal); healing of
    the other damage is geometric (x ``HEAL`` per report) once the fault is cured or absent.
    """
    if damage.diverged:
        return Damage(diverged=True, corrupt_reports=damage.corrupt_reports), True
    active = fault is not None and fault.active(report, config)
    heal = Damage(excess=damage.excess * HEAL, attention=damage.attention * HEAL, gate=damage.gate * HEAL)
    if not active or fault is None:
        return heal, False
    kind = fault.kind
    if kind == "gradient_explosion":
        # The report where it explodes shows a huge finite grad norm; the next one is NaN.
        if damage.exploding:
            return Damage(diverged=True), True
        return Damage(exploding=True, excess=damage.excess), False
    if kind == "overfitting":
        frozen_at = damage.val_progress if damage.val_progress >= 0 else progress
        return Damage(excess=damage.excess + fault.slope, attention=heal.attention, gate=heal.gate,
                      val_progress=frozen_at), False
    if kind == "stagnation":
        return Damage(excess=damage.excess, attention=damage.attention, gate=damage.gate), True
    if kind == "attention_collapse":
        return Damage(excess=max(heal.excess, 0.3), attention=1.0, gate=heal.gate), False
    if kind == "gate_collapse":
        return Damage(excess=max(heal.excess, 0.2), attention=heal.attention, gate=1.0), False
    # corrupt_data
    n = damage.corrupt_reports + 1
    if n > CORRUPT_NAN_AFTER:
        return Damage(diverged=True, corrupt_reports=n), True
    return Damage(excess=(damage.excess + 0.1) * 1.5, corrupt_reports=n), False


def grad_factor(fault: Fault | None, damage: Damage) -> float:
    """Multiplier of the healthy grad.norm (NaN when diverged)."""
    if damage.diverged:
        return math.nan
    if damage.exploding:
        return EXPLOSION_GRAD
    if fault is not None and fault.kind == "corrupt_data" and damage.corrupt_reports:
        return 10.0 ** damage.corrupt_reports
    return 1.0
