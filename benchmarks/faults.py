"""Injected faults of the surrogate trials: what each does to the curves, and what cures it.

A fault belongs to one trial. It has a kind, an onset (the validation report, 1-based, from
which it shows) and the trial's *original* hyperparameters, against which its cure condition is
judged. While a fault is *active* (report index >= onset and the trial's current config does not
satisfy the cure) it changes the trial's state and metrics as below; once cured, its damage heals
(or, for divergence, stays until the trial is rolled back to a checkpoint from before it).

| kind | effect while active | cure condition (current config vs original) |
|---|---|---|
| gradient_explosion | first active report: grad.norm x ``EXPLOSION_GRAD`` (> 1e3), losses x3; then the weights are NaN: every loss and grad.norm NaN until a rollback | learning_rate <= ``EXPLOSION_CURE_LR`` x original (halving cures, x0.8 does not) |
| overfitting | validation.loss stops improving at the onset and rises by ``slope`` (relative) per report; training.loss keeps falling | dropout >= original + 0.05, or weight_decay >= 2 x original (>= 1e-6), or learning_rate <= 0.8 x original |
| stagnation | no learning progress; losses frozen (no noise) | ``lr_restart`` flag set, or batch_size != original |
| attention_collapse | attention score -> 0.02, validation.loss + 30% | guided_attention_weight >= 1.5 x original, or ``reset_attention`` flag set |
| gate_collapse | gate accuracy -> 0.05, early-stop fraction -> 0.8, validation.loss + 20% | gate_loss_weight >= 1.5 x original, or gate_pos_weight >= 1.2 x original |
| corrupt_data | losses grow x1.5 per report, grad.norm x10 per report; NaN 5 reports after onset | none: unrecoverable (only stopping saves compute) |

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

EXPLOSION_CURE_LR = 0.6          # lr <= 0.6 x original cures an explosion
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

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is unknown; use one of {', '.join(FAULT_KINDS)}")
        if self.onset < 1:
            raise ValueError(f"fault onset must be a report index >= 1, got {self.onset!r}")

    @property
    def recoverable(self) -> bool:
        return self.kind not in UNRECOVERABLE

    def cured(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` satisfies this fault's cure condition (see the module table)."""
        b, c = self.base, config
        if self.kind == "gradient_explosion":
            return _num(c, "learning_rate", 0.0) <= EXPLOSION_CURE_LR * _num(b, "learning_rate", 0.0)
        if self.kind == "overfitting":
            wd0 = _num(b, "weight_decay", 0.0)
            return (
                _num(c, "dropout", 0.0) >= _num(b, "dropout", 0.0) + 0.05 - 1e-12
                or _num(c, "weight_decay", 0.0) >= max(2.0 * wd0, 1e-6)
                or _num(c, "learning_rate", 0.0) <= 0.8 * _num(b, "learning_rate", 0.0)
            )
        if self.kind == "stagnation":
            return bool(c.get("lr_restart")) or int(_num(c, "batch_size", 0)) != int(_num(b, "batch_size", 0))
        if self.kind == "attention_collapse":
            return bool(c.get("reset_attention")) or _num(c, "guided_attention_weight", 1.0) >= 1.5 * _num(
                b, "guided_attention_weight", 1.0
            )
        if self.kind == "gate_collapse":
            return _num(c, "gate_loss_weight", 1.0) >= 1.5 * _num(b, "gate_loss_weight", 1.0) or _num(
                c, "gate_pos_weight", 5.0
            ) >= 1.2 * _num(b, "gate_pos_weight", 5.0)
        return False  # corrupt_data

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
