"""benchmarks/sweep.py (+ harness, drivers, metrics, overhead, report): a miniature sweep of every
scheduler through the hook harness, the sweep.json keys, and the BENCHMARKS.md section rewrite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks import overhead, report
from benchmarks.harness import TrialRecord, run_population
from benchmarks.metrics import median_inf, percentile, wilson
from benchmarks.scenario import SCHEDULERS, load_scenario
from benchmarks.sweep import main

KEYS = ("compute_to_target", "best_loss_at_budget", "faults_injected", "faults_recovered",
        "false_positive_interventions", "detection_latency_reports", "overhead_us_p50", "overhead_us_p99",
        "compute_lost_share", "usable_models", "usable_per_100_reports", "faulty_usable", "healthy_interventions",
        "healthy_pruned", "compute_to_first_usable", "regret")
TIMING = ("decision_us_p50_in_sweep", "decision_us_p99_in_sweep", "overhead_us_p50", "overhead_us_p99")

MINI = {
    "name": "mini", "trials": 8, "max_reports": 14, "max_concurrent": 4, "budget": 90, "target": 1.0,
    "seeds": [0], "ray_tune_seeds": [], "schedulers": list(SCHEDULERS),
    "search_space": {"learning_rate": {"loguniform": [5e-4, 5e-3]}, "dropout": {"uniform": [0.0, 0.3]},
                     "batch_size": {"choice": [16, 32]}},
    "fixed": {"guided_attention_weight": 1.0, "gate_loss_weight": 1.0},
    "faults": {"gradient_explosion": {"rate": 0.25, "onset": [5, 8], "select": "highest_learning_rate"},
               "corrupt_data": {"rate": 0.125, "onset": [4, 6]}},
    "asha": {"grace_period": 2, "reduction_factor": 2},
    "pbt": {"perturbation_interval": 3, "quantile_fraction": 0.25},
}


@pytest.fixture()
def mini(tmp_path: Path) -> Path:
    p = tmp_path / "mini.yaml"
    p.write_text(yaml.safe_dump(MINI))
    return p


def test_miniature_sweep_writes_every_key(mini: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overhead, "run", lambda schedulers=(), sizes=(1, 100, 1000): {
        n: {str(s): overhead.measure(n, s, overhead._results(60), history=20, min_decisions=20) for s in (1, 100)} for n in schedulers})
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# B\n\nkeep me\n<!-- sweep:begin -->\nOLD-SECTION-TEXT\n<!-- sweep:end -->\ntail stays\n")
    monkeypatch.setattr(report, "BENCHMARKS_MD", md)
    out = tmp_path / "results"
    assert main(["--scenario", str(mini), "--out", str(out), "--no-ray"]) == 0
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["seeds"] == [0] and doc["scenario"]["name"] == "mini"
    for name in SCHEDULERS:
        assert set(KEYS) <= set(doc[name]), name
    assert doc["fifo"]["faults_recovered"] == 0 and doc["fifo"]["detection_latency_reports"] is None
    assert doc["fifo_nan_stop"]["detection_latency_explosion_reports"] == 2   # NaN one report after the explosion
    assert doc["smart"]["overhead_us_p50"] is not None
    assert (out / "best_so_far.png").stat().st_size > 1000
    text = md.read_text()
    assert text.startswith("# B\n\nkeep me\n<!-- sweep:begin -->\n## Fault-injected sweep")
    assert text.endswith("<!-- sweep:end -->\ntail stays\n") and "OLD-SECTION-TEXT" not in text


def _fast_overhead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overhead, "run", lambda schedulers=(), sizes=(1, 100, 1000): {
        n: {str(s): overhead.measure(n, s, overhead._results(60), history=20, min_decisions=20) for s in (1, 100)} for n in schedulers})


def _without_timing(doc: dict) -> dict:
    """sweep.json without wall-clock figures (decision times, overhead, elapsed) and the command line."""
    for key in ("overhead", "elapsed_s", "command"):
        doc.pop(key)
    for name in SCHEDULERS:
        for key in TIMING:
            doc[name].pop(key)
    return doc


def test_same_command_gives_the_same_numbers_twice(mini: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fast_overhead(monkeypatch)
    docs = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert main(["--scenario", str(mini), str(mini), "--out", str(out), "--no-ray", "--no-report"]) == 0
        docs.append(_without_timing(json.loads((out / "sweep.json").read_text())))
    assert docs[0] == docs[1]
    assert docs[0]["pbt"]["healthy_pruned"] + docs[0]["pbt"]["faults_recovered"] > 0   # PBT acted: its draws are seeded


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_identical_population_and_budget(mini: Path, scheduler: str) -> None:
    sc = load_scenario(mini)
    rec = run_population(sc, 0, scheduler)
    base = run_population(sc, 0, "fifo")
    assert rec.compute == base.compute == sc.budget   # the stream keeps proposing until the budget is spent
    shared = set(rec.trials) & set(base.trials)
    assert len(shared) >= min(len(rec.trials), len(base.trials)) - 1 and shared
    assert {t: (rec.trials[t].fault, rec.trials[t].onset, rec.trials[t].healthy) for t in shared} == {
        t: (base.trials[t].fault, base.trials[t].onset, base.trials[t].healthy) for t in shared}


@pytest.mark.parametrize(
    "manifested, actions, latency",
    [(None, [(3, "stop")], None), (5, [], None), (5, [(5, "mutate")], 1), (5, [(2, "exploit"), (7, "stop")], 3)],
)
def test_detection_latency(manifested: int | None, actions: list, latency: int | None) -> None:
    tr = TrialRecord("t", "gradient_explosion", 5, True, False, manifested_at=manifested, actions=actions)
    assert tr.latency == latency


@pytest.mark.parametrize(
    "k, n, lo, hi",
    [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (5, 10, 0.2366, 0.7634), (99, 100, 0.9455, 0.9982)],
)
def test_wilson(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson(k, n)
    assert got is not None and got[0] == pytest.approx(lo, abs=1e-3) and got[1] == pytest.approx(hi, abs=1e-3)


@pytest.mark.parametrize(
    "values, expected", [([1, 2, 3], 2), ([1, None, None], None), ([4, None, 2], 4), ([], None)],
)
def test_median_inf(values: list, expected: float | None) -> None:
    assert median_inf(values) == expected


@pytest.mark.parametrize("values, q, expected", [([3, 1, 2], 50, 2), (list(range(1, 101)), 99, 99), ([], 50, None)])
def test_percentile(values: list, q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_report_refuses_file_without_markers(tmp_path: Path) -> None:
    md = tmp_path / "B.md"
    md.write_text("# nothing here\n")
    with pytest.raises(report.ReportError, match="markers"):
        report.write_section({"scenario": {}}, md)
    assert md.read_text() == "# nothing here\n"
