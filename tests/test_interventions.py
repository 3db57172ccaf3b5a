"""tuner/core/interventions.py: the Intervention record, its JSON form, one-line printout and JSONL file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuner.reporting.analysis_io import read_json_lines
from tuner.core.interventions import Intervention, append_jsonl, hyperparameters
from tuner.core.rules import Problem

EXPLOSION = Problem("gradient_explosion", "critical", "grad.norm", 312.4, 200.0, 7,
                    "grad.norm 312.4 > 200.0 (critical) at validation 7")
OLD = {"learning_rate": 0.01, "batch_size": 32, "data_dir": "/data", "model": {"x": 1}}
NEW = {"learning_rate": 0.004, "batch_size": 32, "grad_clip_thresh": 2.5, "data_dir": "/data"}


def make(action: str = "mutate", rolled_back_to: int | None = 5) -> Intervention:
    reason = "recovery budget spent: 3 of 3 recoveries used" if action == "stop" else f"{action}: critical problem"
    return Intervention.create("t1", 7, 1000.0, action, [EXPLOSION], [EXPLOSION.message, reason],
                               OLD, NEW if action != "stop" else OLD, rolled_back_to)


def test_create_keeps_hyperparameters_only() -> None:
    i = make()
    assert i.old_config == {"learning_rate": 0.01, "batch_size": 32}
    assert i.new_config == {"learning_rate": 0.004, "batch_size": 32, "grad_clip_thresh": 2.5}
    assert i.problems[0]["metric"] == "grad.norm" and i.problems[0]["threshold"] == 200.0


@pytest.mark.parametrize("intervention", [make(), make("restart", None), make("stop", None)])
def test_json_round_trip(intervention: Intervention) -> None:
    text = intervention.to_json()
    assert "\n" not in text
    assert Intervention.from_dict(json.loads(text)) == intervention


@pytest.mark.parametrize("intervention, expected", [
    (make(), "[smart-tuner] trial t1 validation 7: mutate (gradient_explosion: grad.norm 312.4 > 200.0 "
             "(critical) at validation 7) learning_rate 0.01 -> 0.004, grad_clip_thresh (default) -> 2.5; "
             "rolled back to validation 5"),
    (make("restart", None), "[smart-tuner] trial t1 validation 7: restart (gradient_explosion: grad.norm "
                            "312.4 > 200.0 (critical) at validation 7) learning_rate 0.01 -> 0.004, "
                            "grad_clip_thresh (default) -> 2.5; from scratch"),
    (make("stop", None), "[smart-tuner] trial t1 validation 7: stop (gradient_explosion: recovery budget "
                         "spent: 3 of 3 recoveries used)"),
    (Intervention("t2", 9, 1.0, "stop", reasons=("early stopping: validation.loss did not improve",)),
     "[smart-tuner] trial t2 validation 9: stop (no problem: early stopping: validation.loss did not improve)"),
])
def test_line(intervention: Intervention, expected: str) -> None:
    assert intervention.line() == expected


def test_append_jsonl_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "exp" / "interventions.jsonl"
    records = [make(), make("restart", None), make("stop", None)]
    for r in records:
        append_jsonl(path, r)
        assert path.read_text().count("\n") == records.index(r) + 1   # flushed at once
    assert [Intervention.from_dict(d) for d in read_json_lines(path)] == records
    assert all(json.loads(line)["trial_id"] == "t1" for line in path.read_text().splitlines())


def test_non_finite_values_survive_the_file(tmp_path: Path) -> None:
    nan = Problem("gradient_explosion", "critical", "grad.norm", float("nan"), 200.0, 3,
                  "grad.norm nan is not finite (critical) at validation 3")
    path = tmp_path / "interventions.jsonl"
    append_jsonl(path, Intervention.create("t", 3, 0.0, "restart", [nan]))
    value = Intervention.from_dict(read_json_lines(path)[0]).problems[0]["value"]
    assert value != value                                             # NaN


@pytest.mark.parametrize("config, expected", [
    (None, {}),
    ({"learning_rate": 1e-3, "preset": "tiny"}, {"learning_rate": 1e-3}),
    ({"reset_attention": True, "_restart_generation": 2}, {"reset_attention": True, "_restart_generation": 2}),
])
def test_hyperparameters(config: dict | None, expected: dict) -> None:
    assert hyperparameters(config) == expected


def test_line_names_only_the_problems_acted_on_and_held_back_survives_the_file(
        tmp_path: Path) -> None:
    explosion = {"kind": "gradient_explosion", "severity": "critical",
                 "message": "grad.norm 312 > 200.0 (critical) at validation 4"}
    early = {"kind": "attention_collapse", "severity": "critical",
             "message": "validation.attention_score 0.02 < 0.05 (critical) at validation 4"}
    iv = Intervention.create("t1", 4, 1.0, "mutate", problems=[explosion], held_back=[early],
                             old_config={"learning_rate": 0.01},
                             new_config={"learning_rate": 0.004}, rolled_back_to=3)
    assert "(gradient_explosion: grad.norm 312" in iv.line()
    assert "attention" not in iv.line()

    append_jsonl(tmp_path / "i.jsonl", iv)
    (back,) = [Intervention.from_dict(d) for d in read_json_lines(tmp_path / "i.jsonl")]
    assert back == iv and back.held_back == (early,)
