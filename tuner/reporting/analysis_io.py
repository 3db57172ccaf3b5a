"""Reading a sweep folder for the failure analysis (tuner/reporting/analysis.py).

What Ray Tune leaves in ``<storage>/<name>``: one folder per trial with ``result.json`` (one JSON
result per line, oldest first), ``params.json`` (the trial's initial config) and ``error.txt``
when it crashed. What Smart Tuner adds: ``interventions.jsonl`` (one Intervention per line), and
the scheduler's state journal ``smart_tuner_state.jsonl`` (which also keeps the interventions).
Lines cut short by a killed process are skipped, so a dead sweep can be read too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.contract import INTERVENTIONS_FILE
from tuner.errors import UserError

__all__ = ["ExperimentNotFoundError", "TrialRecord", "load_trials", "load_interventions", "read_json_lines"]


class ExperimentNotFoundError(UserError):
    """The experiment folder is missing or holds no trial results."""


@dataclass
class TrialRecord:
    """What one trial left on disk."""

    trial_id: str
    path: Path
    config: dict[str, Any]
    results: list[dict[str, Any]]
    error: str | None = None


def read_json_lines(path: str | Path) -> list[Any]:
    """The JSON values of a JSON-lines file, oldest first, tolerant of what a running or killed
    writer leaves: blank lines, a line cut short (skipped) and undecodable bytes (replaced)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a killed process: keep the rest
            continue
    return rows


def load_trials(experiment_dir: str | Path) -> list[TrialRecord]:
    """Every trial folder (one holding ``result.json`` or ``error.txt``) of an experiment."""
    exp = Path(experiment_dir)
    if not exp.is_dir():
        raise ExperimentNotFoundError(
            f"experiment folder {str(exp)!r} not found; check NAME and --storage (default ./runs)")
    trials = []
    for d in sorted(p for p in exp.iterdir() if p.is_dir()):
        result_file, error_file = d / "result.json", d / "error.txt"
        if not result_file.is_file() and not error_file.is_file():
            continue
        results = read_json_lines(result_file) if result_file.is_file() else []
        params = d / "params.json"
        config = json.loads(params.read_text()) if params.is_file() else {}
        trial_id = str(results[0].get("trial_id")) if results and "trial_id" in results[0] \
            else d.name
        error = error_file.read_text(errors="replace").strip() if error_file.is_file() else None
        trials.append(TrialRecord(trial_id, d, config, results, error))
    if not trials:
        raise ExperimentNotFoundError(
            f"experiment folder {str(exp)!r} holds no trial results (no */result.json); "
            "was the sweep started?")
    return trials


def load_interventions(experiment_dir: str | Path) -> list[dict[str, Any]]:
    """All Intervention records of ``interventions.jsonl`` in the folder (oldest first).

    When that file is missing, the ones kept in the scheduler's saved state (its journal
    ``smart_tuner_state.jsonl``, or an earlier version's ``smart_tuner_state.json``) are used.
    """
    from tuner.core.supervisor_state import read_state

    path = Path(experiment_dir) / INTERVENTIONS_FILE
    if path.is_file():
        return read_json_lines(path)
    try:
        state = read_state(experiment_dir)
    except (json.JSONDecodeError, ValueError):
        return []
    return [] if state is None else list(state.get("interventions", []))
