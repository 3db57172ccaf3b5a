"""Tests for tuner/reporting/analysis.py on a constructed experiment folder (Ray's trial-folder layout)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tuner.reporting.analysis import (ExperimentNotFoundError, analyze, load_trials, split_segments)
from tuner.core.interventions import Intervention, append_jsonl

T0 = 1_700_000_000.0


def _result(trial_id: str, step: int, *, loss: float, grad: float, t: float,
            attention: float = 0.6, gate: float = 0.8) -> dict:
    return {"trial_id": trial_id, "validation.step": step, "training_iteration": step,
            "training.loss": loss, "validation.loss": loss + 0.1, "overfitting.gap": 0.1,
            "grad.norm": grad, "validation.attention_score": attention,
            "validation.gate_accuracy": gate, "timestamp": int(t), "done": False}


def _trial(exp: Path, trial_id: str, lr: float, rows: list[dict], error: str | None = None) -> None:
    d = exp / f"train_tts_{trial_id}_lr={lr}"
    d.mkdir(parents=True)
    (d / "params.json").write_text(json.dumps({"learning_rate": lr, "preset": "tiny"}))
    (d / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if error is not None:
        (d / "error.txt").write_text(error)


@pytest.fixture()
def experiment(tmp_path: Path) -> Path:
    exp = tmp_path / "sweep"
    # healthy: loss falls
    _trial(exp, "healthy", 1e-3, [_result("healthy", s, loss=2.0 / s, grad=3.0, t=T0 + s)
                                  for s in range(1, 7)])
    # exploded at validation 4, rolled back to 3 with a lower lr, then fine
    rows = [_result("boom", s, loss=2.0 / s, grad=4.0, t=T0 + s) for s in range(1, 4)]
    rows.append(_result("boom", 4, loss=float("nan"), grad=312.4, t=T0 + 4))
    rows += [_result("boom", s, loss=1.5 / s, grad=2.0, t=T0 + 10 + s) for s in range(4, 8)]
    _trial(exp, "boom", 8e-3, rows)  # Ray rewrites params.json with the mutated config
    append_jsonl(exp / "interventions.jsonl", Intervention.create(
        "boom", 4, T0 + 4.5, "mutate",
        problems=[{"kind": "gradient_explosion", "severity": "critical", "metric": "grad.norm",
                   "value": 312.4, "threshold": 200.0, "step": 4,
                   "message": "grad.norm 312.4 > 200.0 (critical) at validation 4"}],
        old_config={"learning_rate": 2e-2}, new_config={"learning_rate": 8e-3}, rolled_back_to=3))
    # diverged under FIFO: no intervention, ends NaN
    rows = [_result("fifo", s, loss=2.0 / s, grad=5.0, t=T0 + s) for s in range(1, 4)]
    rows += [_result("fifo", s, loss=float("nan"), grad=float("inf"), t=T0 + s) for s in (4, 5)]
    _trial(exp, "fifo", 3e-2, rows)
    # crashed before any result
    _trial(exp, "oom", 1e-3, [], error="Traceback ...\nRuntimeError: CUDA out of memory")
    (exp / "not_a_trial").mkdir()
    return exp


def test_analysis_issues_outcomes_and_recommendations(experiment: Path) -> None:
    analysis = analyze(experiment)
    by_id = {t.trial_id: t for t in analysis.trials}
    assert set(by_id) == {"healthy", "boom", "fifo", "train_tts_oom_lr=0.001"}
    assert {k: t.outcome for k, t in by_id.items()} == {
        "healthy": "finished", "boom": "recovered", "fifo": "diverged",
        "train_tts_oom_lr=0.001": "crashed"}
    assert by_id["healthy"].issues == []
    boom = by_id["boom"].issues[0]
    assert boom.startswith("grad.norm 312.4 > 200.0 (critical) at validation 4; mutate: "
                           "learning_rate 0.02 -> 0.008, rolled back to validation 3; recovered: "
                           "validation.loss")
    assert any("grad.norm" in i and "no intervention" in i for i in by_id["fifo"].issues)
    assert by_id["train_tts_oom_lr=0.001"].issues == ["crashed: RuntimeError: CUDA out of memory"]
    assert math.isnan(by_id["fifo"].final["validation.loss"])
    assert by_id["boom"].markers == [(4.0, "mutate")]  # the report at step 4 triggered it
    # x = step, every report kept: the exploding one (312.4) and the step back after the rollback
    assert by_id["boom"].curves["grad.norm"] == ([1.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0, 7.0],
                                                 [4.0, 4.0, 4.0, 312.4, 2.0, 2.0, 2.0, 2.0])
    recs = "\n".join(analysis.recommendations)
    assert "gradient explosion in 2 trial(s)" in recs and "lower learning_rate" in recs
    assert "narrow the search range to <= 0.001" in recs
    assert "1 trial(s) crashed" in recs


@pytest.mark.parametrize(
    "steps, expected",
    [
        ([1, 2, 3], [[1, 2, 3]]),
        ([1, 2, 3, 3, 4], [[1, 2, 3], [3, 4]]),
        ([1, 2, 1, 2, 3], [[1, 2], [1, 2, 3]]),
        ([], []),
    ],
)
def test_split_segments_at_rollbacks(steps: list[int], expected: list[list[int]]) -> None:
    segments = split_segments([{"validation.step": s} for s in steps])
    assert [[r["validation.step"] for r in seg] for seg in segments] == expected


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p / "missing", "not found; check NAME and --storage"),
        (lambda p: p, "holds no trial results"),
    ],
)
def test_missing_experiment(tmp_path: Path, make, expected: str) -> None:
    with pytest.raises(ExperimentNotFoundError, match=expected):
        load_trials(make(tmp_path))


@pytest.mark.parametrize("journal", [True, False])
def test_interventions_from_scheduler_state_when_jsonl_missing(experiment: Path,
                                                               journal: bool) -> None:
    from tuner.reporting.analysis import load_interventions
    from tuner.core.supervisor_state import StateJournal, encode, header_record, intervention_record

    jsonl = experiment / "interventions.jsonl"
    records = load_interventions(experiment)
    if journal:
        StateJournal(experiment).rewrite([encode(header_record({})),
                                          *(encode(intervention_record(r)) for r in records)])
    else:   # the whole-state file of earlier versions
        (experiment / "smart_tuner_state.json").write_text(json.dumps(
            {"version": 1, "trials": {}, "interventions": records}))
    jsonl.unlink()
    assert load_interventions(experiment) == records
    assert {t.trial_id: t.outcome for t in analyze(experiment).trials}["boom"] == "recovered"


def test_all_trials_exploded_moves_the_range_down(experiment: Path) -> None:
    import shutil

    for d in experiment.iterdir():
        if d.name.startswith(("train_tts_healthy_", "train_tts_oom_")):
            shutil.rmtree(d)
    recs = analyze(experiment).recommendations
    assert "learning_rate: every trial exploded, the lowest starting at 0.02; move the search " \
           "range below 0.02" in recs


@pytest.mark.parametrize("failures, retried, outcome", [
    (1, 1, "finished"),    # node lost once, resumed, finished: error.txt alone is no crash
    (2, 1, "crashed"),     # a second failure that was not retried: the trial ended in it
    (1, 0, "crashed"),
])
def test_outcome_after_a_retried_error(tmp_path: Path, failures: int, retried: int,
                                       outcome: str) -> None:
    exp = tmp_path / "sweep"
    error = "".join(f"Failure # {n} (occurred at 2026-12-01_12:00:0{n})\nThe actor died because "
                    "its node has died. Node Id: 5f3a\n" for n in range(1, failures + 1))
    rows = [_result("t", s, loss=2.0 / s, grad=3.0, t=T0 + s) for s in (1, 2)]
    rows += [_result("t", s, loss=2.0 / s, grad=3.0, t=T0 + 10 + s) for s in (3, 4)]
    _trial(exp, "t", 1e-3, rows, error=error)
    for _ in range(retried):
        append_jsonl(exp / "interventions.jsonl", Intervention.create(
            "t", 2, T0 + 5.5, "resume", problems=[{"kind": "node_lost", "message": "node lost"}],
            reasons=["node lost (ActorDiedError: ...); resuming unchanged from validation 2"],
            old_config={"learning_rate": 1e-3}, new_config={"learning_rate": 1e-3},
            rolled_back_to=2))
    (trial,) = analyze(exp).trials
    assert trial.outcome == outcome
    word = "retried after" if outcome == "finished" else "crashed"
    assert f"{word}: The actor died because its node has died. Node Id: 5f3a" in trial.issues


def test_early_warning_listed_apart_and_only_the_acted_explosion_recommends(tmp_path: Path) -> None:
    """A young trial with a collapsed attention (held back by the guards: 40 s < 600 s) and an
    explosion at validation 4 that was acted on (the exploding report kept in result.json)."""
    exp = tmp_path / "sweep"
    rows = [dict(_result("young", s, loss=2.0 / s, grad=3.0, t=T0 + s, attention=0.02),
                 **{"time_total_s": 10.0 * s, "training.step": 25 * s}) for s in range(1, 4)]
    rows.append(dict(_result("young", 4, loss=2.5, grad=5.0e4, t=T0 + 4, attention=0.02),
                     **{"time_total_s": 40.0, "training.step": 100}))
    rows += [dict(_result("young", s, loss=1.0 / s, grad=3.0, t=T0 + 10 + s, attention=0.02),
                  **{"time_total_s": 40.0 + s, "training.step": 25 * s}) for s in (4, 5)]
    _trial(exp, "young", 8e-3, rows)
    explosion = {"kind": "gradient_explosion", "severity": "critical", "metric": "grad.norm",
                 "value": 5.0e4, "threshold": 200.0, "step": 4,
                 "message": "grad.norm 5e+04 > 200.0 (critical) at validation 4"}
    held = {"kind": "attention_collapse", "severity": "critical", "step": 4,
            "message": "validation.attention_score 0.02 < 0.05 (critical) at validation 4"}
    append_jsonl(exp / "interventions.jsonl", Intervention.create(
        "young", 4, T0 + 4.5, "mutate", problems=[explosion], held_back=[held],
        old_config={"learning_rate": 8e-3}, new_config={"learning_rate": 3e-3}, rolled_back_to=3))

    analysis = analyze(exp)
    (trial,) = analysis.trials
    assert trial.problem_kinds == {"gradient_explosion"}
    assert len(trial.issues) == 1 and trial.issues[0].startswith("grad.norm 5e+04 > 200.0")
    assert any("attention" in e and "not acted on" in e for e in trial.early)
    recs = "\n".join(analysis.recommendations)
    assert "gradient explosion in 1 trial(s)" in recs
    assert "attention" not in recs and "texts match their audio" not in recs
    steps, grads = trial.curves["grad.norm"]
    assert steps == [25.0, 50.0, 75.0, 100.0, 100.0, 125.0] and max(grads) == 5.0e4
    assert trial.markers == [(100.0, "mutate")]

    from tuner.reporting.analysis_report import to_markdown, write_html, write_report

    write_report(analysis)
    text = to_markdown(analysis)
    early = text.index("## Early, not acted on")
    assert "attention_score 0.02" in text[early:text.index("## Recommendations")]
    html = write_html(analysis).read_text()
    assert html.count("data:image/png;base64,") == len(analysis.images) >= 1
    assert "Early, not acted on" in html and "src=\"curves_" not in html
