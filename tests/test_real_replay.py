"""The real sweep's recorded trials (benchmarks/results/real_sweep.json) replayed through the
Supervisor, without training and without Ray: what the rules decide offline on the reports of the
unscheduled trials must be what SmartScheduler decided live on the same trials in real Ray Tune.

The replay clock is ``training.step`` x 1.06 s (benchmarks/probes/record_bank.py), so a 300-step
trial never passes the 600 s guard and only the unambiguous rules (explosions, the validation-loss
jump, non-finite values) can act: they are compared with the live run's explosion interventions
at the damaged report. The live trials are deterministic up to their first intervention, so
FIFO's reports are what Smart Tuner's trial saw until it acted.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from benchmarks.probes.record_bank import replay
from benchmarks.real_sweep import trial_reports

REAL = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "real_sweep.json"
LIVE = re.compile(r"trial \w+_(\d+) validation (\d+): mutate \(gradient_explosion")


def _doc() -> dict[str, Any]:
    return json.loads(REAL.read_text())


def _replayed(doc: dict[str, Any], variant: str, scheduler: str) -> dict[int, tuple[str | None, int | None]]:
    """config index -> (first action, 1-based report) of the replay of ``scheduler``'s recorded trials."""
    out = {}
    for i, reps in trial_reports(doc["raw"][variant][scheduler], len(doc["configs"])).items():
        reports = [{**{k: math.nan if v is None else v for k, v in r.items() if k not in ("index", "t", "lr")},
                    "validation.step": float(n)} for n, r in enumerate(reps, start=1)]
        got = replay({"name": f"{variant}-{i}", "config": dict(doc["configs"][i]), "reports": reports})
        out[i] = (got["action"], got["report"])
    return out


def test_the_transient_trials_replayed_get_the_explosion_interventions_they_got_live() -> None:
    doc = _doc()
    live: dict[int, int] = {}   # config index -> validation of its first explosion mutation
    for line in doc["raw"]["transient"]["smart"]["interventions"]:
        if m := LIVE.search(line):
            live.setdefault(int(m.group(1)), int(m.group(2)))
    replayed = _replayed(doc, "transient", "fifo")
    assert live, "the live run has no explosion intervention to compare with"
    assert {i: report for i, (action, report) in replayed.items() if action} == live
    assert {action for action, _ in replayed.values() if action} == {"mutate"}


def test_the_natural_trials_replayed_get_no_intervention() -> None:
    """Session 2's natural/Smart Tuner run (reports identical to FIFO's) had no intervention live;
    offline neither."""
    doc = _doc()
    assert not doc["raw"]["natural"]["smart"]["interventions"]
    assert {i: a for i, (a, _) in _replayed(doc, "natural", "smart").items() if a} == {}
