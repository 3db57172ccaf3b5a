"""tuner/core/supervisor_state.py: checkpoint paths, per-trial JSON round trip, versions, files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.factories import quadratic_metrics
from tuner.core.config import config_from_dict
from tuner.core.policy import TrialMonitor
from tuner.core.supervisor_state import (JOURNAL_FILE, LEGACY_STATE_FILE, HealthyCheckpoint,
                                    StateJournal, TrialState, check_version, checkpoint_to_state,
                                    encode, fold, header_record, intervention_record, read_state,
                                    saved_trial_ids, trial_from_dict, trial_record, trial_to_dict)

CFG = config_from_dict({})


class _RayLikeCheckpoint:
    """Like ray.tune.Checkpoint: a ``path`` attribute and an ``__fspath__`` that refuses."""

    path = "/storage/exp/trial/checkpoint_000003"

    def __fspath__(self) -> str:
        raise TypeError("use .path")


@pytest.mark.parametrize("checkpoint, expected", [
    ("/a/b", "/a/b"),
    (Path("/a/b"), "/a/b"),
    (_RayLikeCheckpoint(), "/storage/exp/trial/checkpoint_000003"),
])
def test_checkpoint_to_state(checkpoint: Any, expected: str) -> None:
    assert checkpoint_to_state(checkpoint) == expected


def _state(healthy: bool, last_loss: float) -> TrialState:
    monitor = TrialMonitor(CFG, start_time=5.0)
    for step in (1, 2):
        monitor.observe(quadratic_metrics(step, 0.1, False), now=5.0 + step)
    return TrialState(
        monitor, {"learning_rate": 0.1, "_restart_generation": 1},
        HealthyCheckpoint(_RayLikeCheckpoint(), 2, {"validation.step": 2.0}) if healthy else None,
        (2, {"validation.step": 2.0}) if not healthy else None, 3, last_loss, 1, False)


@pytest.mark.parametrize("healthy, last_loss", [(True, 1.5), (False, math.nan), (True, math.inf)])
def test_trial_round_trip(healthy: bool, last_loss: float) -> None:
    d = json.loads(json.dumps(trial_to_dict(_state(healthy, last_loss))))   # through real JSON
    back = trial_from_dict(d, CFG)
    assert json.dumps(trial_to_dict(back), sort_keys=True) == json.dumps(d, sort_keys=True)
    assert back.monitor.history.step == 2 and back.config["_restart_generation"] == 1
    if healthy:
        assert back.healthy.checkpoint == "/storage/exp/trial/checkpoint_000003"
    else:
        assert back.healthy is None and back.pending == (2, {"validation.step": 2.0})
    assert (math.isnan(back.last_loss) and math.isnan(last_loss)) or back.last_loss == last_loss


@pytest.mark.parametrize("state, ok", [({"version": 1}, True), ({"version": 2}, False), ({}, False)])
def test_check_version(state: dict, ok: bool) -> None:
    if ok:
        check_version(state)
    else:
        with pytest.raises(ValueError, match="version"):
            check_version(state)


def test_journal_folds_to_the_latest_line_per_trial(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    assert read_state(folder) is None and saved_trial_ids(folder) == set()
    journal = StateJournal(folder)
    journal.rewrite([encode(header_record({"storage": None, "study_name": "s"}))])
    first, second = _state(True, 1.0), _state(True, 2.0)
    journal.append([encode(trial_record("a", first, 3, 4.5)),
                    encode(intervention_record({"trial_id": "a"}))])
    journal.append([encode(trial_record("b", first, None, None)),
                    encode(trial_record("a", second, None, None))])
    assert journal.lines == 5 and not list(folder.glob("*.tmp"))
    state = read_state(folder)
    assert state["trials"]["a"]["last_loss"] == 2.0 and set(state["trials"]) == {"a", "b"}
    assert state["interventions"] == [{"trial_id": "a"}]
    assert state["planner"] == {"pending": {}, "baselines": {}}    # a's outcome was told
    assert state["study"] == {"storage": None, "study_name": "s"}
    assert saved_trial_ids(folder) == {"a", "b"}
    check_version(state)


def test_journal_header_of_another_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_FILE).write_text(json.dumps({"kind": "header", "format": 9}) + "\n")
    with pytest.raises(ValueError, match=f"{JOURNAL_FILE}: journal format 9 is not supported"):
        fold(tmp_path / JOURNAL_FILE)


def test_the_journal_wins_over_an_earlier_versions_file(tmp_path: Path) -> None:
    (tmp_path / LEGACY_STATE_FILE).write_text(json.dumps({"version": 1, "trials": {"old": {}}}))
    assert saved_trial_ids(tmp_path) == {"old"}
    StateJournal(tmp_path).rewrite([encode(header_record({})),
                                    encode(trial_record("new", _state(False, 1.0), None, None))])
    assert saved_trial_ids(tmp_path) == {"new"}


@pytest.mark.parametrize("lines, live, due", [(10, 5, False), (1001, 400, True),
                                              (1001, 600, False), (2001, 1000, True)])
def test_compaction_threshold(tmp_path: Path, lines: int, live: int, due: bool) -> None:
    journal = StateJournal(tmp_path)
    journal.lines = lines
    assert journal.needs_compaction(live) is due
