"""Per-trial records of the Supervisor and their journal (``smart_tuner_state.jsonl``).

A :class:`TrialState` is everything the Supervisor knows about one trial: its TrialMonitor
(history, early stopping, recovery budget), the config it was last given, its last healthy
checkpoint, the healthy result still waiting for its checkpoint, the outcome countdown after a
recovery, the latest validation.loss and the crash-retry count. Checkpoints are kept as the
caller gives them (Ray ``Checkpoint`` objects, paths) and written as path strings, so a state
read back holds paths. NaN/Inf floats are written as Python's json writes them and read back
unchanged.

The journal is append-only JSON lines: a header, then one line per intervention and one line per
trial each time the trial changed (its latest line wins), so saving costs O(1) in the number of
trials. It is rewritten whole (a snapshot: header, every trial once, every intervention) only to
compact it, when it holds twice its live lines, and when a sweep resumes; rewrites are atomic
(a temporary file, then ``os.replace``). Its name ends in ``.jsonl`` because on ``Tuner.restore``
Ray 2.60 copies the experiment folder's ``*.json``/``*.pkl`` files to its driver staging folder
and syncs that folder back up later (``ray/tune/execution/experiment_state.py``,
``sync_down_experiment_state``), which reverted the ``smart_tuner_state.json`` of earlier
versions; such a file is still read when a folder has no journal.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.core.config import SmartConfig
from tuner.contract import JOURNAL_FILE, LEGACY_STATE_FILE
from tuner.core.policy import TrialMonitor

JOURNAL_FORMAT = 1
STATE_VERSION = 1
COMPACT_MIN_LINES = 1000

logger = logging.getLogger(__name__)


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


def tried_unreadable(checkpoint: str, asked: str, restored: str) -> bool:
    """True when a trial given the checkpoint folder ``asked`` that restored ``restored`` instead
    found ``checkpoint`` unreadable: it tried the folders beside ``asked`` newest first (their
    names sort in the order they were written, tuner/training/checkpoint.py) down to
    ``restored``, so every one after ``restored`` up to ``asked`` could not be read."""
    path, given, read = Path(checkpoint), Path(asked), Path(restored)
    return path.parent == given.parent == read.parent and read.name < path.name <= given.name


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


# ---------------------------------------------------------------------------- the journal
def encode(record: Mapping[str, Any]) -> str:
    """One journal line (odd config values written as text)."""
    return json.dumps(record, default=str) + "\n"


def header_record(study: Mapping[str, Any]) -> dict[str, Any]:
    """The journal's first line: its format and where the recovery study lives."""
    return {"kind": "header", "format": JOURNAL_FORMAT, "study": dict(study)}


def trial_record(trial_id: str, state: TrialState, planner_pending: int | None,
                 planner_baseline: float | None) -> dict[str, Any]:
    """One journal line: everything about one trial, its planner entries included."""
    return {"kind": "trial", "id": trial_id, "state": trial_to_dict(state),
            "planner": {"pending": planner_pending, "baseline": planner_baseline}}


def intervention_record(intervention: Mapping[str, Any]) -> dict[str, Any]:
    """One journal line per intervention (``Intervention.to_dict()``), in the order they happen."""
    return {"kind": "intervention", "record": dict(intervention)}


class StateJournal:
    """``<folder>/smart_tuner_state.jsonl``: appended to, rewritten whole only to compact.

    ``fresh`` is True until this process first writes: that first write starts the file anew
    (a snapshot), so a journal left by an earlier sweep in the same folder (not loaded) is
    replaced rather than merged, and a line torn by a killed driver is dropped.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / JOURNAL_FILE
        self.fresh = True
        self.lines = 0   # lines in the file since it was last rewritten

    def needs_compaction(self, live: int) -> bool:
        """True once the file holds more than twice the ``live`` lines (and over 1,000)."""
        return self.lines > max(COMPACT_MIN_LINES, 2 * live)

    def append(self, lines: list[str]) -> None:
        """Append :func:`encode`-d lines in one ``write`` (a kill tears at most the last)."""
        if not lines:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(lines))
        self.lines += len(lines)

    def rewrite(self, lines: list[str]) -> None:
        """Replace the file with ``lines`` atomically (a temporary file, then ``os.replace``)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(lines), encoding="utf-8")
        os.replace(tmp, self.path)
        self.fresh, self.lines = False, len(lines)


def fold(path: Path) -> dict[str, Any]:
    """The journal at ``path`` as one state dict (the form of ``Supervisor.state_dict``).

    Later trial lines replace earlier ones; an unreadable line (torn by a killed driver) is
    skipped with a warning naming the file and line.
    """
    trials: dict[str, Any] = {}
    interventions: list[Any] = []
    pending: dict[str, int] = {}
    baselines: dict[str, float] = {}
    study: dict[str, Any] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s line %d is not complete JSON (torn by a killed driver?): "
                               "skipped", path, number)
                continue
            kind = record.get("kind")
            if kind == "header":
                if record.get("format") != JOURNAL_FORMAT:
                    raise ValueError(f"{path}: journal format {record.get('format')!r} is not "
                                     f"supported; expected {JOURNAL_FORMAT}: resume the sweep "
                                     "with the smart-tuner version that started it")
                study = dict(record.get("study") or {})
            elif kind == "trial":
                trial_id, planner = str(record["id"]), record.get("planner") or {}
                trials[trial_id] = record["state"]
                pending.pop(trial_id, None)
                baselines.pop(trial_id, None)
                if planner.get("pending") is not None:
                    pending[trial_id] = int(planner["pending"])
                if planner.get("baseline") is not None:
                    baselines[trial_id] = float(planner["baseline"])
            elif kind == "intervention":
                interventions.append(record["record"])
    return {"version": STATE_VERSION, "trials": trials, "interventions": interventions,
            "study": study, "planner": {"pending": pending, "baselines": baselines}}


def read_state(folder: str | Path) -> dict[str, Any] | None:
    """The state saved in ``folder``: its journal, else a ``smart_tuner_state.json`` written by
    an earlier version (None when there is neither)."""
    journal, legacy = Path(folder) / JOURNAL_FILE, Path(folder) / LEGACY_STATE_FILE
    if journal.is_file():
        return fold(journal)
    if legacy.is_file():
        return json.loads(legacy.read_text(encoding="utf-8"))
    return None


def saved_trial_ids(folder: str | Path) -> set[str]:
    """Trial ids in the state saved in ``folder`` (empty when there is none)."""
    state = read_state(folder)
    return set() if state is None else set(state.get("trials", {}))


__all__ = ["HealthyCheckpoint", "JOURNAL_FILE", "LEGACY_STATE_FILE", "StateJournal", "TrialState",
           "check_version", "checkpoint_to_state", "encode", "fold", "header_record", "intervention_record",
           "read_state", "saved_trial_ids", "trial_from_dict", "trial_record", "trial_to_dict",
           "tried_unreadable"]
