"""tuner/core/policy.py: TrialMonitor decisions: recovery, guards, serious accumulation, early stopping,
budget, window reset after rollback, persistence."""
from __future__ import annotations

import json

import pytest

from tuner.core.config import SmartConfig, config_from_dict, load_config
from tuner.core.policy import Decision, TrialMonitor

NAN = float("nan")
CFG = load_config()
LATE = 700.0    # past min_training_time (600 s)
EARLY = 10.0


def result(step: int, **over: float) -> dict[str, float]:
    """A healthy result at validation `step`; keyword names use `_` for `.`: grad_norm, attention, ..."""
    names = {"grad_norm": "grad.norm", "attention": "validation.attention_score",
             "gate": "validation.gate_accuracy", "training_loss": "training.loss",
             "validation_loss": "validation.loss"}
    r = {"training.loss": 2.0 - 0.01 * step, "validation.loss": 2.2 - 0.01 * step, "grad.norm": 10.0,
         "validation.attention_score": 0.6, "validation.gate_accuracy": 0.8, "validation.step": float(step)}
    r.update({names[k]: v for k, v in over.items()})
    r["overfitting.gap"] = r["validation.loss"] - r["training.loss"]
    return r


def run(rows: list[dict[str, float]], now: float, cfg: SmartConfig = CFG) -> tuple[TrialMonitor, list[Decision]]:
    m = TrialMonitor(cfg, start_time=0.0)
    return m, [m.observe(r, now) for r in rows]


@pytest.mark.parametrize("healthy_before, bad, now, action", [
    (0, {"grad_norm": NAN}, EARLY, "restart"),          # broken from the first report: nothing to roll back to
    (3, {"grad_norm": NAN}, EARLY, "mutate"),           # unambiguous: acted on inside the guards
    (3, {"training_loss": float("inf")}, EARLY, "mutate"),
    (3, {"grad_norm": 250.0}, EARLY, "mutate"),
    (3, {"grad_norm": 150.0}, LATE, "continue"),        # a warning never intervenes
    (3, {"attention": 0.01}, EARLY, "continue"),        # slow-to-judge: held back by min_training_time
    (1, {"attention": 0.01}, LATE, "continue"),         # held back by min_validation_steps (step 2 < 3)
    (3, {"attention": 0.01}, LATE, "mutate"),           # collapsed after a healthy period
    (3, {"gate": 0.05}, LATE, "mutate"),
    (3, {"validation_loss": 150.0}, LATE, "restart"),
    (3, {"validation_loss": NAN}, EARLY, "mutate"),     # non-finite: unambiguous; roll back
    (3, {"validation_loss": NAN, "grad_norm": NAN}, EARLY, "mutate"),
    (3, {"training_loss": 2.5}, LATE, "restart"),       # degradation: (1.99 - 2.5) / 1.99 < -0.1
])
def test_recovery_actions(healthy_before: int, bad: dict, now: float, action: str) -> None:
    rows = [result(s) for s in range(1, healthy_before + 1)] + [result(healthy_before + 1, **bad)]
    _, decisions = run(rows, now)
    assert [d.action for d in decisions[:-1]] == ["continue"] * healthy_before
    assert decisions[-1].action == action, decisions[-1].reasons


def test_critical_since_the_first_report_restarts_from_scratch() -> None:
    rows = [result(s, attention=0.01) for s in range(1, 6)]
    m, decisions = run(rows[:4], EARLY)                 # untrained attention inside the guards: fine
    assert [d.action for d in decisions] == ["continue"] * 4
    assert all(d.healthy for d in decisions)            # guard-period checkpoints may be rolled back to
    late = m.observe(rows[4], LATE)
    assert (late.action, late.healthy) == ("restart", False)


def test_held_back_decision_says_why() -> None:
    _, decisions = run([result(1), result(2), result(3, attention=0.01)], EARLY)
    assert decisions[-1].action == "continue"
    assert "held back by the guards: 10 s of 600 s" in decisions[-1].reasons[-1]


@pytest.mark.parametrize("bad, action", [
    ({"grad_norm": 150.0, "gate": 0.3, "training_loss": 1.5, "validation_loss": 1.7}, "mutate"),  # 3 serious (frozen losses)
    ({"grad_norm": 150.0, "gate": 0.3}, "continue"),                   # only 2
])
def test_serious_problems_accumulate(bad: dict, action: str) -> None:
    rows = [result(s) for s in range(1, 4)] + [result(s, **bad) for s in range(4, 9)]   # held 5 reports
    _, decisions = run(rows, LATE)
    assert [d.action for d in decisions] == ["continue"] * 7 + [action]
    serious = [p for p in decisions[-1].problems if p.severity == "serious"]
    assert len(serious) == (3 if action == "mutate" else 2)
    assert not any(p.severity == "critical" for p in decisions[-1].problems)


ES = config_from_dict({"early_stopping": {"patience": 3, "min_delta": 0.01}})


@pytest.mark.parametrize("losses, actions", [
    ([1.0, 1.0, 1.0, 1.0], ["continue", "continue", "continue", "stop"]),
    ([1.0, 0.995, 0.991, 0.99], ["continue", "continue", "continue", "stop"]),  # < min_delta each time
    ([1.0, 1.0, 1.0, 0.98, 0.98], ["continue"] * 5),                            # improved in time
    ([1.0, NAN, NAN, NAN], ["continue", "mutate", "mutate", "mutate"]),         # NaN is a problem, not a plateau
])
def test_early_stopping(losses: list[float], actions: list[str]) -> None:
    rows = [result(s, validation_loss=v) for s, v in enumerate(losses, 1)]
    for r in rows:
        r["training.loss"] = 0.5
        r["overfitting.gap"] = r["validation.loss"] - 0.5
    _, decisions = run(rows, EARLY, ES)
    assert [d.action for d in decisions] == actions
    if actions[-1] == "stop":
        assert "early stopping: validation.loss did not improve" in decisions[-1].reasons[-1]


def test_budget_exhaustion_stops_with_the_reason() -> None:
    cfg = config_from_dict({"training_recovery": {"max_recoveries_per_trial": 1}})
    m, _ = run([result(1), result(2)], EARLY, cfg)
    assert m.observe(result(3, grad_norm=NAN), EARLY).action == "mutate"
    m.rolled_back(EARLY)
    assert m.observe(result(3), EARLY).action == "continue"
    last = m.observe(result(4, grad_norm=NAN), EARLY)
    assert last.action == "stop"
    assert "recovery budget spent: 1 of 1" in last.reasons[-1]


def test_rollback_restarts_the_window() -> None:
    rows = [result(s) for s in range(1, 4)]
    rising = [result(s, validation_loss=1.0 + 0.1 * s, training_loss=1.0 - 0.05 * s) for s in range(4, 10)]
    cfg = config_from_dict({"diagnostics": {"serious_problems_for_restart": 1}})
    m, decisions = run(rows + rising, LATE, cfg)
    assert decisions[-1].action == "mutate"             # validation.loss rising while training falls
    m.rolled_back(LATE)
    assert len(m.history) == 0 and m.recoveries == 1
    after = m.observe(result(4), LATE)                  # resumed from the healthy checkpoint
    assert after.action == "continue" and after.problems == ()


def test_explosion_right_after_a_rollback_mutates_again() -> None:
    m, _ = run([result(1), result(2), result(3)], EARLY)
    assert m.observe(result(4, grad_norm=NAN), EARLY).action == "mutate"
    m.rolled_back(EARLY)
    assert m.observe(result(4, grad_norm=500.0), EARLY).action == "mutate"   # not a restart from scratch


def test_restart_resets_guard_clock_and_initial_loss() -> None:
    m, _ = run([result(1, grad_norm=NAN)], EARLY)
    m.rolled_back(now=1000.0, action="restart")
    assert m.history.initial_training_loss is None and m.start_time == 1000.0
    rows = [result(s) for s in range(1, 4)] + [result(4, attention=0.01)]
    assert [m.observe(r, 1100.0).action for r in rows] == ["continue"] * 4   # guarded again


def test_recovery_disabled_never_mutates() -> None:
    cfg = config_from_dict({"training_recovery": {"enabled": False}, "early_stopping": {"patience": 2}})
    m, decisions = run([result(1, validation_loss=2.0), result(2, grad_norm=NAN, validation_loss=2.0)], LATE, cfg)
    assert decisions[-1].action == "continue" and not decisions[-1].healthy
    assert m.observe(result(3, grad_norm=NAN, validation_loss=2.0), LATE).action == "stop"   # early stopping


def test_state_dict_round_trips_through_json() -> None:
    rows = [result(s) for s in range(1, 5)]
    m, _ = run(rows, LATE, ES)
    m.rolled_back(LATE, action="mutate")
    restored = TrialMonitor(ES, start_time=123.0)
    restored.load_state_dict(json.loads(json.dumps(m.state_dict())))
    assert restored.state_dict() == m.state_dict()
    nxt = result(5, validation_loss=5.0)
    assert restored.observe(nxt, LATE) == m.observe(nxt, LATE)


def test_renamed_metrics_flow_through_the_name_map() -> None:
    names = {"training.loss": "train_loss", "validation.loss": "val_loss", "grad.norm": "gn",
             "validation.attention_score": None, "validation.gate_accuracy": None,
             "overfitting.gap": None, "validation.step": "epoch"}
    cfg = config_from_dict({"metrics": names, "early_stopping": {"patience": 2}})
    m = TrialMonitor(cfg, start_time=0.0)
    rows = [{"train_loss": 1.0, "val_loss": 1.2, "gn": 3.0, "epoch": s} for s in (1, 2, 3)]
    assert [m.observe(r, LATE).action for r in rows] == ["continue", "continue", "stop"]
    nan = m.observe({"train_loss": 1.0, "val_loss": 1.2, "gn": NAN, "epoch": 4}, LATE)
    assert nan.action == "mutate" and nan.problems[0].step == 4


@pytest.mark.parametrize("now, expected", [
    (EARLY, ["gradient_explosion"]),                          # guarded: only the unambiguous one
    (LATE, ["attention_collapse", "gradient_explosion"]),     # past the guards: every problem
])
def test_acting_problems_respect_the_guards(now: float, expected: list[str]) -> None:
    rows = [result(1), result(2), result(3), result(4, grad_norm=500.0, attention=0.01)]
    _, decisions = run(rows, now)
    assert sorted(p.kind for p in decisions[-1].acting) == expected
