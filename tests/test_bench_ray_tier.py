"""benchmarks/ray_tier.py: rebuilding a run record from a per-report log (no Ray needed here;
the real Ray Tune path runs in `python -m benchmarks.sweep --scenario benchmarks/scenarios/ray_tune.yaml`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.ray_tier import rebuild
from benchmarks.scenario import load_scenario, population
from benchmarks.surrogate import Calibration

SCENARIO = Path(__file__).resolve().parent.parent / "benchmarks" / "scenarios" / "ray_tune.yaml"


def _line(t: int, trial: str, report: int, lr: float, val: float | None = 2.5, active: bool = False) -> str:
    return json.dumps({"t": t, "trial": trial, "report": report, "config": {"learning_rate": lr},
                       "val": val, "active": active, "diverged": val is None})


@pytest.mark.parametrize(
    "reports, expect_actions, expect_stopped",
    [
        ([(1, 1.0), (2, 1.0), (3, 1.0)], [], False),                         # plain, still running at the end
        ([(1, 1.0), (2, 1.0), (2, 0.5), (3, 0.5)], [(2, "restore")], False),  # rollback with a new lr
        ([(1, 1.0), (2, 1.0), (1, 0.5)], [(2, "restart")], False),            # restart from scratch
    ],
)
def test_rebuild_infers_actions(tmp_path: Path, reports: list, expect_actions: list, expect_stopped: bool) -> None:
    sc = replace(load_scenario(SCENARIO), budget=10, max_concurrent=1)
    specs = population(sc, 0)
    tid = specs[0].trial_id
    lr0 = specs[0].config["learning_rate"]
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(_line(i, tid, r, lr0 * f) for i, (r, f) in enumerate(reports)) + "\n")
    rec = rebuild(sc, Calibration.load(), 0, "x", specs, log)
    tr = rec.trials[tid]
    assert tr.actions == expect_actions and tr.stopped is expect_stopped and rec.compute == len(reports)


def test_rebuild_marks_early_end_as_stop(tmp_path: Path) -> None:
    sc = replace(load_scenario(SCENARIO), budget=50, max_concurrent=1)
    specs = population(sc, 0)
    a, b = specs[0].trial_id, specs[1].trial_id
    lines = [_line(0, a, 1, 1.0), _line(1, a, 2, 1.0)] + [_line(2 + i, b, i + 1, 1.0) for i in range(10)]
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n")
    rec = rebuild(sc, Calibration.load(), 0, "x", specs, log)
    assert rec.trials[a].stopped and rec.trials[a].actions == [(2, "stop")]
    assert not rec.trials[b].stopped
