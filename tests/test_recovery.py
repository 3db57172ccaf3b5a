"""tuner/core/recovery.py: documented adjustments, Optuna proposals inside their regions, SQLite study
reuse and told outcomes."""
from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tuner.core.config import Adjustment, config_from_dict, load_config
from tuner.core.recovery import RecoveryPlanner, apply_adjustment, plan, storage_url
from tuner.core.rules import Problem

optuna.logging.set_verbosity(optuna.logging.WARNING)
CFG = load_config()
BASE = {"learning_rate": 1e-3, "batch_size": 32, "dropout": 0.1, "weight_decay": 0.0,
        "grad_clip_thresh": 5.0, "guided_attention_weight": 1.0, "gate_loss_weight": 1.0,
        "gate_threshold": 0.5, "seed": 7, "preset": "tiny"}


def problem(kind: str, severity: str = "critical") -> Problem:
    return Problem(kind, severity, "grad.norm", 300.0, 200.0, 5, f"{kind} ({severity}) at validation 5")


def propose(kind: str, config: dict | None = None, planner: RecoveryPlanner | None = None, **kw) -> dict:
    planner = planner or RecoveryPlanner(CFG, None, seed=0)
    return planner.propose("t1", dict(BASE, **(config or {})), [problem(kind, **kw)], "mutate")


def test_learning_rate_at_least_halves_on_explosion_over_many_draws() -> None:
    planner = RecoveryPlanner(CFG, None, seed=1)
    for i in range(40):
        new = propose("gradient_explosion", planner=planner)
        assert 0.25e-3 * (1 - 1e-9) <= new["learning_rate"] <= 0.5e-3 * (1 + 1e-9)
        planner.report_outcome("t1", new["learning_rate"] * 1e3)
    assert len(planner.study.trials) == 40


@pytest.mark.parametrize("kind, key, old, expected", [
    ("gradient_explosion", "grad_clip_thresh", 5.0, 2.5),
    ("gradient_explosion", "grad_clip_thresh", 20.0, 5.0),        # at most 5.0
    ("gradient_explosion", "grad_clip_thresh", 0.6, 0.5),         # at least 0.5
    ("gradient_explosion", "grad_clip_thresh", None, 2.5),        # from the default 5.0
    ("stagnation", "batch_size", None, 8),                        # from train_tts's default 16
    ("overfitting", "dropout", 0.1, 0.2),
    ("overfitting", "dropout", 0.3, 0.4),
    ("overfitting", "dropout", 0.45, 0.5),                        # capped at 0.5
    ("overfitting", "dropout", 0.5, 0.5),
    ("overfitting", "dropout", None, 0.2),
    ("stagnation", "batch_size", 32, 16),
    ("stagnation", "batch_size", 17, 8),
    ("stagnation", "batch_size", 12, 8),                          # 6 floored at 8
    ("stagnation", "batch_size", 8, 8),
    ("stagnation", "seed", 7, 8),                                 # reshuffle
    ("stagnation", "lr_restart", None, True),
    ("attention_collapse", "reset_attention", None, True),
])
def test_documented_adjustments(kind: str, key: str, old, expected) -> None:
    config = dict(BASE)
    if old is None:
        config.pop(key, None)
    else:
        config[key] = old
    new = RecoveryPlanner(CFG, None, seed=0).propose("t", config, [problem(kind)], "mutate")
    assert new[key] == expected
    assert type(new[key]) is type(expected)


@pytest.mark.parametrize("kind, key, old, low, high", [
    ("overfitting", "learning_rate", 1e-3, 0.5e-3, 0.8e-3),
    ("gradient_explosion", "learning_rate", None, 0.25e-3, 0.5e-3),   # from train_tts's default 1e-3
    ("overfitting", "weight_decay", 0.0, 2e-6, 1e-5),             # from 1e-6 when 0
    ("overfitting", "weight_decay", 1e-4, 2e-4, 1e-3),
    ("attention_collapse", "guided_attention_weight", 1.0, 1.5, 3.0),
    ("gate_collapse", "gate_loss_weight", 2.0, 3.0, 6.0),
    ("gate_collapse", "gate_pos_weight", None, 6.0, 10.0),        # from the default 5.0
    ("gate_collapse", "gate_threshold", 0.5, 0.3, 0.7),
    ("validation_loss", "learning_rate", 1e-3, 0.25e-3, 0.5e-3),
    ("training_degradation", "learning_rate", 1e-3, 0.25e-3, 0.5e-3),
])
def test_optuna_proposals_stay_inside_the_documented_region(kind: str, key: str, old, low: float,
                                                            high: float) -> None:
    planner = RecoveryPlanner(CFG, None, seed=3)
    config = dict(BASE)
    if old is None:
        config.pop(key, None)
    else:
        config[key] = old
    drawn = []
    for i in range(25):
        new = planner.propose(f"t{i}", config, [problem(kind)], "mutate")
        assert low * (1 - 1e-9) <= new[key] <= high * (1 + 1e-9), (key, new[key])
        drawn.append(new[key])
        planner.report_outcome(f"t{i}", abs(new[key] - (low + high) / 2))
    assert len(set(drawn)) > 10                                   # a region, not a point


def test_several_problems_combine_most_severe_first_one_change_per_param() -> None:
    problems = [problem("overfitting", "serious"), problem("gradient_explosion", "critical"),
                problem("gate_collapse", "warning")]
    pairs = plan(CFG, problems)
    assert [(k, a.param) for k, a in pairs] == [
        ("gradient_explosion", "learning_rate"), ("gradient_explosion", "grad_clip_thresh"),
        ("overfitting", "dropout"), ("overfitting", "weight_decay")]   # warnings do not act
    new = RecoveryPlanner(CFG, None, seed=0).propose("t", BASE, problems, "mutate")
    assert new["learning_rate"] <= 0.5e-3 and new["dropout"] == 0.2
    assert new["gate_threshold"] == 0.5


def test_only_warnings_still_get_their_adjustments() -> None:
    assert [a.param for _, a in plan(CFG, [problem("stagnation", "warning")])] == \
        ["lr_restart", "batch_size", "seed"]


def test_restart_raises_generation_and_earlier_flags_are_cleared() -> None:
    planner = RecoveryPlanner(CFG, None, seed=0)
    first = planner.propose("t", BASE, [problem("attention_collapse")], "restart")
    assert first["_restart_generation"] == 1 and first["reset_attention"] is True
    second = planner.propose("t", first, [problem("gradient_explosion")], "restart")
    assert second["_restart_generation"] == 2 and second["reset_attention"] is False
    assert BASE.get("_restart_generation") is None                 # the input is not modified
    assert second["preset"] == "tiny"                              # other keys kept


def test_outcomes_are_told_to_the_study() -> None:
    planner = RecoveryPlanner(CFG, None, seed=0)
    planner.propose("a", BASE, [problem("gradient_explosion")], "mutate")
    planner.propose("b", BASE, [problem("gradient_explosion")], "mutate")
    planner.propose("c", BASE, [problem("gradient_explosion")], "mutate")
    planner.propose("c", BASE, [problem("gradient_explosion")], "mutate")   # c's first recovery failed
    planner.report_outcome("a", 0.7)
    planner.report_outcome("b", math.nan)
    planner.report_outcome("unknown", 1.0)                                  # ignored
    trials = planner.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE,
                                         TrialState.RUNNING]
    assert trials[0].value == 0.7 and trials[2].value == math.inf
    assert planner.state_dict()["pending"] == {"c": 3}


@pytest.mark.parametrize("baseline, told", [(2.0, 0.25), (None, 0.5), (0.0, 0.5), (math.nan, 0.5)])
def test_outcome_relative_to_the_baseline(baseline: float | None, told: float) -> None:
    planner = RecoveryPlanner(CFG, None, seed=0)
    planner.propose("t", BASE, [problem("gradient_explosion")], "mutate", baseline=baseline)
    planner.report_outcome("t", 0.5)
    assert planner.study.trials[0].value == told
    assert planner.baselines == {}


def test_fixed_changes_do_not_ask_the_study() -> None:
    planner = RecoveryPlanner(CFG, None, seed=0)
    planner.propose("t", BASE, [problem("stagnation")], "mutate")
    assert planner.study.trials == [] and planner.pending == {}


def test_sqlite_study_is_created_and_reused(tmp_path: Path) -> None:
    url = storage_url(CFG, tmp_path / "exp")
    assert url == f"sqlite:///{(tmp_path / 'exp').resolve() / 'recovery.db'}"
    first = RecoveryPlanner(CFG, url, seed=0)
    first.propose("t1", BASE, [problem("gradient_explosion")], "mutate")
    first.report_outcome("t1", 0.5)
    first.propose("t2", BASE, [problem("overfitting")], "mutate")
    assert (tmp_path / "exp" / "recovery.db").is_file()
    state = first.state_dict()

    second = RecoveryPlanner(CFG, url, seed=0)                    # a resumed sweep: load_if_exists
    second.load_state_dict(state)
    assert len(second.study.trials) == 2
    second.report_outcome("t2", 0.25)
    assert [t.value for t in second.study.trials] == [0.5, 0.25]


@pytest.mark.parametrize("cfg_storage, experiment, expected", [
    (None, None, None),
    ("postgresql://db/optuna", "/x", "postgresql://db/optuna"),
])
def test_storage_url(cfg_storage: str | None, experiment: str | None, expected: str | None) -> None:
    cfg = config_from_dict({"optuna": {"storage": cfg_storage}})
    assert storage_url(cfg, experiment) == expected


@pytest.mark.parametrize("adjustment, old, drawn, expected", [
    (Adjustment("x", "scale", 0.5, 0.5), 3.0, None, 1.5),
    (Adjustment("x", "scale", 0.25, 0.5, log=True), 4.0, 0.3, 1.2),
    (Adjustment("x", "shift", 0.1, 0.1, max=0.5), 0.45, None, 0.5),
    (Adjustment("x", "value", 0.3, 0.7), 0.9, 0.4, 0.4),
    (Adjustment("x", "set", value=True), None, None, True),
    (Adjustment("x", "scale", 0.5, 0.5), None, None, None),       # no old value, no default: unchanged
    (Adjustment("x", "scale", 0.5, 0.5), "abc", None, None),
    (Adjustment("x", "scale", 2.0, 2.0, default=1e-6), 0.0, None, 2e-6),
    (Adjustment("x", "scale", 0.5, 0.5, integer=True, min=8), 9, None, 8),
])
def test_apply_adjustment(adjustment: Adjustment, old, drawn, expected) -> None:
    assert apply_adjustment(adjustment, old, drawn) == expected


def test_removed_adjustment_is_not_applied() -> None:
    cfg = config_from_dict({"training_recovery": {"actions": {"overfitting": {"dropout": None}}}})
    new = RecoveryPlanner(cfg, None, seed=0).propose("t", BASE, [problem("overfitting")], "mutate")
    assert new["dropout"] == BASE["dropout"]
