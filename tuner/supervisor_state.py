"""Per-trial records of the Supervisor and their JSON form (``smart_tuner_state.json``).

A :class:`TrialState` is everything the Supervisor knows about one trial: its TrialMonitor
(history, early stopping, recovery budget), the config it was last given, its last healthy
checkpoint, the healthy result still waiting for its checkpoint, the outcome countdown after a
recovery, the latest validation.loss and the crash-retry count. Checkpoints are kept as the
caller gives them (Ray ``Checkpoint`` objects, paths) and written as path strings, so a state
read back holds paths. NaN/Inf floats are written as Python's json writes them and read back
unchanged. Files are replaced atomically (write a temporary file, then ``os.replace``), so a
driver killed mid-write leaves the previous state intact.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.config import SmartConfig
from tuner.policy import TrialMonitor

STATE_FILE = "smart_tuner_state.json"
STATE_VERSION = 1


@dataclass
class HealthyCheckpoint:
    """A checkpoint reported with a healthy result. metrics: plain numbers reported with it."""
    checkpoint: Any
    step: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrialState:
    """What the Supervisor keeps per trial (see the module docstring)."""
    monitor: TrialMonitor
    config: dict[str, Any] = field(default_factory=dict)      # the config the trial was last given
    healthy: HealthyCheckpoint | None = None
    pending: tuple[int, dict[str, float]] | None = None       # healthy result whose checkpoint is unseen
    outcome_due: int | None = None                            # reports left until the outcome is told
    last_loss: float = math.nan                               # validation.loss of the latest result
    retries: int = 0
    finished: bool = False


def checkpoint_to_state(checkpoint: Any) -> str:
    """A checkpoint as a JSON-able path: ``checkpoint.path`` (Ray), or the path/str itself."""
    if isinstance(checkpoint, str):
        return checkpoint
    path = getattr(checkpoint, "path", None)   # ray.tune.Checkpoint (its __fspath__ raises)
    return str(path) if path is not None else os.fspath(checkpoint)


def trial_to_dict(state: TrialState) -> dict[str, Any]:
    """JSON-able dict of one TrialState (the healthy checkpoint as a path string)."""
    healthy = None if state.healthy is None else {
        "checkpoint": checkpoint_to_state(state.healthy.checkpoint), "step": state.healthy.step,
        "metrics": dict(state.healthy.metrics)}
    return {"monitor": state.monitor.state_dict(), "config": dict(state.config), "healthy": healthy,
            "pending": None if state.pending is None else list(state.pending),
            "outcome_due": state.outcome_due, "last_loss": state.last_loss,
            "retries": state.retries, "finished": state.finished}


def trial_from_dict(d: Mapping[str, Any], cfg: SmartConfig) -> TrialState:
    """The TrialState of :func:`trial_to_dict` (its monitor rebuilt under ``cfg``)."""
    monitor = TrialMonitor(cfg, start_time=0.0)
    monitor.load_state_dict(d["monitor"])
    h, pending = d.get("healthy"), d.get("pending")
    healthy = None if h is None else HealthyCheckpoint(h["checkpoint"], int(h["step"]),
                                                       dict(h.get("metrics") or {}))
    return TrialState(monitor, dict(d.get("config") or {}), healthy,
                      None if pending is None else (int(pending[0]), dict(pending[1])),
                      d.get("outcome_due"), float(d.get("last_loss", math.nan)),
                      int(d.get("retries", 0)), bool(d.get("finished", False)))


def check_version(d: Mapping[str, Any]) -> None:
    """Refuse a state dict of another format version, naming the version and the fix."""
    if d.get("version") != STATE_VERSION:
        raise ValueError(f"Supervisor state version {d.get('version')!r} is not supported; "
                         f"expected {STATE_VERSION}: resume the sweep with the smart-tuner "
                         "version that started it")


def write_state(folder: str | Path, state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``<folder>/smart_tuner_state.json`` atomically; returns the path."""
    path = Path(folder) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, default=str), encoding="utf-8")   # odd config values as text
    os.replace(tmp, path)
    return path


def read_state(folder: str | Path) -> dict[str, Any] | None:
    """The state saved in ``folder`` (None when there is none)."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def saved_trial_ids(folder: str | Path) -> set[str]:
    """Trial ids in the state saved in ``folder`` (empty when there is none)."""
    state = read_state(folder)
    return set() if state is None else set(state.get("trials", {}))


__all__ = ["HealthyCheckpoint", "STATE_FILE", "TrialState", "check_version", "checkpoint_to_state",
           "read_state", "saved_trial_ids", "trial_from_dict", "trial_to_dict", "write_state"]
