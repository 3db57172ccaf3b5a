"""Intervention: the record of every decision other than "continue" (ARCHITECTURE.md).

Kept in the scheduler's saved state, printed as one line when it happens (`line()`), appended to
`interventions.jsonl` in the experiment folder (`append_jsonl`, one JSON object per line) and
logged to MLflow. Values are plain JSON types; NaN/Inf floats are written as Python's json
writes them (NaN, Infinity) and read back unchanged by `tuner.reporting.analysis_io.read_json_lines` + `Intervention.from_dict`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, cast

from tuner.contract import HYPERPARAMETERS, RECOVERY_ACTIONS, ActionKind, fmt_value


def hyperparameters(config: Mapping[str, Any] | None, keys: Iterable[str] = HYPERPARAMETERS) -> dict[str, Any]:
    """The hyperparameters of a trial config (only the keys present), for the record."""
    return {k: config[k] for k in keys if config is not None and k in config}


@dataclass(frozen=True)
class Intervention:
    trial_id: str
    step: int                                   # validation.step of the result that triggered it
    time: float                                 # wall-clock time (s since the epoch)
    action: ActionKind                          # "mutate" | "restart" | "stop" | "retry" | "resume"
    problems: tuple[dict[str, Any], ...] = ()   # each: kind, severity, metric, value, threshold, step, message
    reasons: tuple[str, ...] = ()
    old_config: dict[str, Any] = field(default_factory=dict)   # hyperparameters only
    new_config: dict[str, Any] = field(default_factory=dict)
    rolled_back_to: int | None = None           # validation.step of the checkpoint, None = from scratch / none
    held_back: tuple[dict[str, Any], ...] = ()  # problems seen with it but not acted on (guards, warnings)

    @classmethod
    def create(cls, trial_id: str, step: int, time: float, action: ActionKind, problems: Iterable[Any] = (),
               reasons: Iterable[str] = (), old_config: Mapping[str, Any] | None = None,
               new_config: Mapping[str, Any] | None = None, rolled_back_to: int | None = None,
               held_back: Iterable[Any] = ()) -> Intervention:
        """Build from Problem objects (or dicts) and whole trial configs (filtered to hyperparameters).

        ``problems``: what the action answers; ``held_back``: problems seen at the same report
        that were not acted on (warnings, or held back by the guards)."""
        def as_dicts(items: Iterable[Any]) -> tuple[dict[str, Any], ...]:
            return tuple(p.to_dict() if hasattr(p, "to_dict") else dict(p) for p in items)

        return cls(str(trial_id), int(step), float(time), action, as_dicts(problems), tuple(reasons),
                   hyperparameters(old_config), hyperparameters(new_config),
                   None if rolled_back_to is None else int(rolled_back_to), as_dicts(held_back))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"], d["reasons"] = [dict(p) for p in self.problems], list(self.reasons)
        d["held_back"] = [dict(p) for p in self.held_back]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Intervention:
        return cls(trial_id=str(d["trial_id"]), step=int(d["step"]), time=float(d["time"]),
                   action=cast(ActionKind, str(d["action"])),
                   problems=tuple(dict(p) for p in d.get("problems", ())),
                   reasons=tuple(d.get("reasons", ())), old_config=dict(d.get("old_config") or {}),
                   new_config=dict(d.get("new_config") or {}), rolled_back_to=d.get("rolled_back_to"),
                   held_back=tuple(dict(p) for p in d.get("held_back") or ()))

    def changes(self) -> dict[str, tuple[Any, Any]]:
        """Hyperparameters whose value changed: name -> (old, new)."""
        keys = list(self.old_config) + [k for k in self.new_config if k not in self.old_config]
        return {k: (self.old_config.get(k), self.new_config.get(k)) for k in keys
                if self.old_config.get(k) != self.new_config.get(k) and k in self.new_config}

    def line(self) -> str:
        """One-line printout, e.g. ``[smart-tuner] trial t1 validation 7: mutate (gradient_explosion:
        grad.norm 312.4 > 200.0 (critical) at validation 7) learning_rate 0.01 -> 0.004; rolled back
        to validation 5``."""
        # a stop is explained by its reason (early stopping, budget); a recovery by its worst problem
        use_reason = self.reasons and (self.action not in RECOVERY_ACTIONS or not self.problems)
        worst = self.reasons[-1] if use_reason else self.problems[0]["message"] if self.problems else ""
        kinds = ", ".join(dict.fromkeys(p["kind"] for p in self.problems)) or "no problem"
        # a key the trial config did not set ran at the trainable's default: say so, not "None"
        changes = ", ".join(f"{k} {'(default)' if a is None else _short(a)} -> {_short(b)}"
                            for k, (a, b) in self.changes().items())
        where = ("" if self.action == "stop" else _resumed_from(self.rolled_back_to)
                 if self.action == "resume" else "; from scratch" if self.rolled_back_to is None
                 else f"; rolled back to validation {self.rolled_back_to}")
        parts = f"[smart-tuner] trial {self.trial_id} validation {self.step}: {self.action} ({kinds}: {worst})"
        return parts + (f" {changes}" if changes else "") + where


def _resumed_from(step: int | None) -> str:
    """Where a "resume" (lost node) continues: the trial's own latest checkpoint."""
    return "; from its latest checkpoint" if step is None else f"; resumed from validation {step}"


def _short(value: Any) -> str:
    return repr(value) if isinstance(value, str) else fmt_value(value)


def append_jsonl(path: str | Path, intervention: Intervention) -> None:
    """Append `intervention` as one JSON line to `path` (folders created), flushed at once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(intervention.to_json() + "\n")
        f.flush()


__all__ = ["HYPERPARAMETERS", "Intervention", "append_jsonl", "hyperparameters"]
