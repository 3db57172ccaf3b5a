"""Surrogate dynamics of one tiny-Tacotron2 trial, one step = one validation report.

A trial is a deterministic function of (hyperparameters, seed, state): ``SurrogateTrial.step``
advances the state by one report and returns the contract metrics; ``checkpoint()`` /
``restore(checkpoint, config)`` roll it back and continue under changed hyperparameters, as
``train_tts`` does. Noise is keyed on (seed, restart generation, report index, metric), so a
rollback with the same config replays exactly the same curve.

Healthy curves (p = learning progress in e-folds, the sum over reports of the per-report rate):

    rate   = c.rate * (lr / c.lr_ref) ** c.lr_exponent * (batch_size / c.batch_ref) ** 0.2
    floor  = c.floor * (1 + c.lr_floor * log10(lr / c.lr_opt) ** 2
                          + c.dropout_floor * (dropout - c.dropout_opt) ** 2
                          + c.wd_floor * log10(1 + weight_decay / 1e-4))
    validation.loss = (floor + (c.loss0 - floor) * exp(-p_val)) * (1 + damage.excess) * (1 + c.noise * z),
                      p_val = p, or the progress at the overfitting onset while it acts
    training.loss   = validation.loss - c.gap * (1 - dropout) * (1 - exp(-p)) * floor
    grad.norm       = c.grad0 * (c.grad_tail + (1 - c.grad_tail) * exp(-p / 2)) * (lr / c.lr_ref) ** 0.3 * exp(0.2 z)
    attention_score = a_min + (a_max - a_min) * sigmoid((p - onset) / c.attn_width),
                      onset = c.attn_onset / (0.5 + 0.5 * guided_attention_weight)
    gate_accuracy   = g + c.gate_noise * min(1, g / g_max) * z,
                      g = g_min + (g_max - g_min) * sigmoid((p - gate_onset) / c.gate_width),
                      gate_onset = c.gate_onset / (0.5 + 0.5 * guided_attention_weight)
    early_stop_fraction = c.esf0 * (1 - sigmoid((p - gate_onset) / c.gate_width))

The gate onset moves with the attention onset (same guided-attention factor): since
model/metrics.py gives a gate that has not fired yet partial credit (p_end / threshold), real
runs show the gate accuracy rising together with the attention score (0.1 -> 0.7 over steps
50-250 while the attention goes 0.07 -> 0.68), not a long zero phase followed by a late jump.
The gate's scatter is c.gate_noise on its plateau and proportionally less below it (a partial
credit p_end / threshold of 0.15 scatters by a few hundredths in the real runs, the plateau
~0.6 by ~0.1).

z are standard normal draws. The constants (``Calibration``) come from recorded real trials
(benchmarks/calibration/, fitted by benchmarks/probes/record_real.py); faults (benchmarks/faults.py)
modify state and metrics. NaN policy: only a diverged fault state produces NaN.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from benchmarks.faults import Damage, Fault, advance, grad_factor

CALIBRATION_FILE = Path(__file__).parent / "calibration" / "constants.json"


@dataclass(frozen=True)
class Calibration:
    """Constants of the healthy curves (defaults before calibration; see module docstring)."""

    loss0: float = 4.0            # validation.loss before training
    floor: float = 0.6            # best reachable validation.loss at the optimum hyperparameters
    rate: float = 0.12            # e-folds of loss decay per report at lr_ref
    lr_ref: float = 1e-3
    lr_exponent: float = 0.8
    batch_ref: float = 16.0
    lr_opt: float = 2e-3          # learning rate with the lowest floor
    lr_floor: float = 0.15
    dropout_opt: float = 0.1
    dropout_floor: float = 0.8
    wd_floor: float = 0.02
    gap: float = 0.1              # healthy validation - training gap, fraction of floor
    noise: float = 0.01           # relative noise of the losses
    grad0: float = 8.0            # grad.norm at the start (pre-clip)
    grad_tail: float = 0.3
    attn_min: float = 0.08
    attn_max: float = 0.85
    attn_onset: float = 1.5       # e-folds of progress until the attention forms
    attn_width: float = 0.3
    gate_min: float = 0.3
    gate_max: float = 0.95
    gate_onset: float = 1.0       # e-folds of progress until the stop gate becomes accurate
    gate_width: float = 0.5
    gate_noise: float = 0.01      # std of the gate accuracy around its curve on the plateau (absolute)
    esf0: float = 0.4
    source: str = "defaults (not calibrated)"

    @classmethod
    def load(cls, path: str | Path | None = None) -> Calibration:
        """The fitted constants of ``path`` (default: calibration/constants.json) or defaults."""
        p = Path(path) if path is not None else CALIBRATION_FILE
        if not p.exists():
            return cls()
        data = json.loads(p.read_text())
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{p}: unknown calibration constants {unknown}; allowed: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class SurrogateState:
    """Everything a checkpoint holds: reports done, progress, fault damage, restart generation."""

    report: int = 0
    progress: float = 0.0
    damage: Damage = Damage()
    generation: int = 0


def _z(seed: int, generation: int, report: int, salt: int) -> float:
    """Deterministic standard normal draw for (seed, generation, report, metric)."""
    return random.Random(hash((seed, generation, report, salt)) & 0xFFFFFFFF).gauss(0.0, 1.0)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0)))


class SurrogateTrial:
    """One simulated trial: ``step(config)`` -> metrics; ``checkpoint`` / ``restore`` roll back."""

    def __init__(self, seed: int, fault: Fault | None = None, calibration: Calibration | None = None) -> None:
        self.seed = int(seed)
        self.fault = fault
        self.c = calibration or Calibration()
        self.state = SurrogateState()

    def checkpoint(self) -> SurrogateState:
        return self.state

    def restore(self, checkpoint: SurrogateState | None, config: Mapping[str, Any]) -> None:
        """Roll back to ``checkpoint`` (None: start from scratch under the config's generation)."""
        if checkpoint is None:
            self.state = SurrogateState(generation=int(config.get("_restart_generation", 0) or 0))
        else:
            self.state = checkpoint

    def rate(self, config: Mapping[str, Any]) -> float:
        c = self.c
        lr = float(config["learning_rate"])
        bs = float(config.get("batch_size", c.batch_ref))
        return c.rate * (lr / c.lr_ref) ** c.lr_exponent * (bs / c.batch_ref) ** 0.2

    def floor(self, config: Mapping[str, Any]) -> float:
        c = self.c
        lr = float(config["learning_rate"])
        dropout = float(config.get("dropout", c.dropout_opt))
        wd = float(config.get("weight_decay", 0.0))
        return c.floor * (
            1.0
            + c.lr_floor * math.log10(lr / c.lr_opt) ** 2
            + c.dropout_floor * (dropout - c.dropout_opt) ** 2
            + c.wd_floor * math.log10(1.0 + wd / 1e-4)
        )

    def step(self, config: Mapping[str, Any]) -> dict[str, float]:
        """Train one validation interval under ``config`` and return the reported metrics."""
        s = self.state
        report = s.report + 1
        damage, frozen = advance(self.fault, s.damage, report, config, s.progress)
        progress = s.progress if frozen else s.progress + self.rate(config)
        self.state = SurrogateState(report=report, progress=progress, damage=damage, generation=s.generation)
        return self.metrics(config, noisy=not frozen)

    def clean_metrics(self, config: Mapping[str, Any]) -> dict[str, float]:
        """The metrics of the current state without measurement noise (what "usable" judges)."""
        return self.metrics(config, noisy=False)

    def metrics(self, config: Mapping[str, Any], noisy: bool = True) -> dict[str, float]:
        """The contract metrics of the current state (plain floats)."""
        c, s, d = self.c, self.state, self.state.damage
        p, key = s.progress, (self.seed, s.generation, s.report)
        z = (lambda salt: _z(*key, salt)) if noisy else (lambda salt: 0.0)
        floor = self.floor(config)
        decay = math.exp(-p)
        clean = floor + (c.loss0 - floor) * decay
        val_decay = math.exp(-d.val_progress) if d.val_progress >= 0 else decay   # overfitting freezes it
        val = (floor + (c.loss0 - floor) * val_decay) * (1.0 + d.excess) * (1.0 + c.noise * z(1))
        train = clean - c.gap * (1.0 - float(config.get("dropout", 0.1))) * (1.0 - decay) * floor
        train *= 1.0 + c.noise * z(2)
        if d.exploding:
            val, train = 3.0 * val, 3.0 * train
        lr_factor = (float(config["learning_rate"]) / c.lr_ref) ** 0.3
        grad = c.grad0 * (c.grad_tail + (1 - c.grad_tail) * math.exp(-p / 2)) * lr_factor * math.exp(0.2 * z(3))
        grad *= grad_factor(self.fault, d)
        onset = c.attn_onset / (0.5 + 0.5 * float(config.get("guided_attention_weight", 1.0)))
        attn = c.attn_min + (c.attn_max - c.attn_min) * _sigmoid((p - onset) / c.attn_width)
        attn = attn * (1 - d.attention) + 0.02 * d.attention + 0.01 * z(4)
        gate_onset = c.gate_onset / (0.5 + 0.5 * float(config.get("guided_attention_weight", 1.0)))
        gate_rise = _sigmoid((p - gate_onset) / c.gate_width)
        gate = c.gate_min + (c.gate_max - c.gate_min) * gate_rise
        gate = gate * (1 - d.gate) + 0.05 * d.gate
        gate += c.gate_noise * min(1.0, gate / c.gate_max) * z(5)   # scatter grows with the level
        esf = c.esf0 * (1 - gate_rise) * (1 - d.gate) + 0.8 * d.gate
        if d.diverged:
            val = train = grad = math.nan
        return {
            "training.loss": train,
            "validation.loss": val,
            "overfitting.gap": val - train,
            "grad.norm": grad,
            "validation.attention_score": min(max(attn, 0.0), 1.0),
            "validation.gate_accuracy": min(max(gate, 0.0), 1.0),
            "validation.early_stop_fraction": min(max(esf, 0.0), 1.0),
            "validation.step": float(s.report),
            "learning_rate": float(config["learning_rate"]),
        }


def state_to_dict(state: SurrogateState) -> dict[str, Any]:
    """JSON-able form of a checkpoint (for Ray Tune checkpoints)."""
    return asdict(state)


def state_from_dict(d: Mapping[str, Any]) -> SurrogateState:
    return replace(SurrogateState(**{k: v for k, v in d.items() if k != "damage"}), damage=Damage(**d["damage"]))
