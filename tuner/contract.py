"""The names every layer shares (ARCHITECTURE.md's contract), defined once: no torch, no Ray.

The metrics a trainable reports, the hyperparameters an intervention records, the restart
generation key, the experiment folder's file names, the kinds of action taken on a trial
(`ActionKind`), `numeric` (the numbers of a result) and the two number formats: `fmt` for
detection messages, `fmt_value` for tables and records.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Mapping, get_args

# ---------------------------------------------------------------- metrics (contract names)
TRAINING_LOSS = "training.loss"
VALIDATION_LOSS = "validation.loss"
GRAD_NORM = "grad.norm"
ATTENTION_SCORE = "validation.attention_score"
GATE_ACCURACY = "validation.gate_accuracy"
OVERFITTING_GAP = "overfitting.gap"
VALIDATION_STEP = "validation.step"
EARLY_STOP_FRACTION = "validation.early_stop_fraction"    # optional
DIAGONALITY = "validation.diagonality"                    # optional
# optional: the interval's skipped / GradScaler-overflow / all steps, in-process restores so far
SKIPPED_STEPS = "training.skipped_steps"
OVERFLOW_STEPS = "training.overflow_steps"
INTERVAL_STEPS = "training.interval_steps"
RESTORED_FROM_NAN = "restored_from_nan"
CONTRACT_METRICS: tuple[str, ...] = (
    TRAINING_LOSS, VALIDATION_LOSS, GRAD_NORM, ATTENTION_SCORE, GATE_ACCURACY, OVERFITTING_GAP,
    VALIDATION_STEP, EARLY_STOP_FRACTION, DIAGONALITY,
    SKIPPED_STEPS, OVERFLOW_STEPS, INTERVAL_STEPS, RESTORED_FROM_NAN,
)

# ---------------------------------------------------------------- checkpoint fallback
# Not metrics: with its first report after a restore that could not read the checkpoint it was
# given and read an older one (tuner/training/checkpoint.py: load_readable_checkpoint), the
# trial names both folders; the Supervisor then moves its last healthy checkpoint off the
# unreadable one. Absent from every other report.
CHECKPOINT_UNREADABLE = "checkpoint.unreadable"       # str: the folder it was given
CHECKPOINT_RESTORED = "checkpoint.restored"           # str: the older folder it restored
CHECKPOINT_RESTORED_STEP = "checkpoint.restored_step"  # float: that checkpoint's validation.step

# ---------------------------------------------------------------- trial config
# A "restart" raises it by one; the trainable ignores checkpoints of older generations.
GENERATION_KEY = "_restart_generation"
# The hyperparameters an Intervention records (contract names, plus the recovery flags and knobs
# the documented actions touch).
HYPERPARAMETERS: tuple[str, ...] = (
    "learning_rate", "batch_size", "dropout", "weight_decay", "grad_clip_thresh",
    "guided_attention_weight", "gate_loss_weight", "gate_threshold", "gate_pos_weight", "seed",
    "reset_attention", "lr_restart", GENERATION_KEY,
)

# ---------------------------------------------------------------- what happens to a trial
# Decision.action (policy), Action.kind (supervisor), Intervention.action (the records) and the
# benchmark's Verdict.action: plain strings, so records and JSON keep them as they are.
# continue: nothing (never recorded); mutate: roll back to the last healthy checkpoint with new
# hyperparameters; restart: from scratch with new hyperparameters; stop: early stopping or a spent
# recovery budget; retry: after a crash or out of memory; resume: unchanged, after a lost node.
ActionKind = Literal["continue", "mutate", "restart", "stop", "retry", "resume"]
ACTION_KINDS: tuple[ActionKind, ...] = get_args(ActionKind)
RECOVERY_ACTIONS: tuple[ActionKind, ...] = ("mutate", "restart")   # what the recovery planner proposes

# ---------------------------------------------------------------- experiment folder
INTERVENTIONS_FILE = "interventions.jsonl"      # one Intervention per line
JOURNAL_FILE = "smart_tuner_state.jsonl"        # the Supervisor's state journal (.jsonl: Ray's
                                                # restore syncs only *.json/*.pkl)
LEGACY_STATE_FILE = "smart_tuner_state.json"    # the whole-state file of earlier versions (read only)
SWEEP_FILE = "smart_tuner_sweep.json"           # the sweep settings, for resume
SMART_CONFIG_FILE = "smart_tuner_config.yaml"   # the smart_tuner overrides in force
RECOVERY_DB = "recovery.db"                     # the recovery study's default SQLite file


# ---------------------------------------------------------------- values
def numeric(result: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of a result as floats: ints, floats and numpy scalars; bools, strings
    and nested dicts dropped. NaN and +-Inf are kept (they are the signal)."""
    out: dict[str, float] = {}
    for key, value in result.items():
        kind = type(value)
        if kind is float or kind is int:      # most values: no further checks (bool is not int here)
            out[str(key)] = float(value)
        elif kind not in _NEVER_NUMBERS and (isinstance(value, (int, float)) or _numpy_number(value)):
            out[str(key)] = float(value)
    return out


# Types that are never numbers above (bool dropped by rule, the others fail both checks): Ray's own
# result keys (strings, None, the config dict) skip the isinstance and numpy checks (~0.3 us each).
_NEVER_NUMBERS = frozenset({bool, str, type(None), dict, list, tuple})


def _numpy_number(value: Any) -> bool:
    kind = type(value)
    return kind.__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "iuf"


def fmt(x: float) -> str:
    """A number for a detection message: 200.0, 312.4, 0.0003657, nan, inf."""
    if not math.isfinite(x):
        return str(x)
    return f"{x:.1f}" if float(x).is_integer() and abs(x) < 1e6 else f"{x:.4g}"


def fmt_value(value: Any) -> str:
    """A value for a table or record: floats to 4 significant digits (nan, inf), others as str."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


__all__ = [
    "ACTION_KINDS", "ATTENTION_SCORE", "ActionKind", "CHECKPOINT_RESTORED", "CHECKPOINT_RESTORED_STEP",
    "CHECKPOINT_UNREADABLE", "CONTRACT_METRICS", "DIAGONALITY",
    "EARLY_STOP_FRACTION", "GATE_ACCURACY", "GENERATION_KEY", "GRAD_NORM", "HYPERPARAMETERS",
    "INTERVAL_STEPS", "INTERVENTIONS_FILE", "JOURNAL_FILE", "LEGACY_STATE_FILE", "OVERFITTING_GAP",
    "OVERFLOW_STEPS", "RECOVERY_ACTIONS", "RECOVERY_DB", "RESTORED_FROM_NAN", "SKIPPED_STEPS",
    "SMART_CONFIG_FILE", "SWEEP_FILE", "TRAINING_LOSS", "VALIDATION_LOSS", "VALIDATION_STEP", "fmt",
    "fmt_value", "numeric",
]
