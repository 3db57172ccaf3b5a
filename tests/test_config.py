"""tuner/core/config.py: packaged defaults, merging, and one-line errors for bad files."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from tuner.core.config import (ConfigError, SmartConfig, config_from_dict, deep_merge, load_config,
                          PROBLEM_KINDS)


def test_defaults_hold_the_architecture_table() -> None:
    cfg = load_config()
    d = cfg.diagnostics
    assert isinstance(cfg, SmartConfig)
    assert (d.gradient_explosion.warning, d.gradient_explosion.critical) == (100.0, 200.0)
    assert (d.overfitting.warning_gap, d.overfitting.critical_gap) == (2.0, 5.0)
    assert d.stagnation.min_delta == 0.0005
    assert (d.attention.warning, d.attention.critical) == (0.3, 0.05)
    assert (d.gate.warning, d.gate.critical) == (0.4, 0.1)
    assert d.validation_loss.critical == 100.0
    assert d.training_degradation.critical == -0.1
    assert d.serious_problems_for_restart == 3
    rec = cfg.training_recovery
    assert (rec.enabled, rec.min_training_time, rec.min_validation_steps, rec.max_recoveries_per_trial) \
        == (True, 600.0, 3, 3)
    assert set(rec.actions) == set(PROBLEM_KINDS) | {"trial_crash", "out_of_memory"}
    assert (cfg.early_stopping.metric, cfg.early_stopping.min_delta) == ("validation.loss", 0.001)
    assert cfg.metrics["grad.norm"] == "grad.norm"
    assert cfg.optuna.storage is None


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_config().diagnostics.gradient_explosion.critical = 1.0  # type: ignore[misc]


def test_user_file_is_merged_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text("diagnostics:\n  gradient_explosion:\n    critical: 500\n"
                    "metrics:\n  grad.norm: grad_norm\n  validation.diagonality: null\n"
                    "training_recovery:\n  actions:\n    overfitting:\n      dropout: null\n"
                    "      weight_decay: {scale: [3, 4]}\n"
                    "early_stopping:\n")
    cfg = load_config(path)
    assert cfg.diagnostics.gradient_explosion.critical == 500.0
    assert cfg.diagnostics.gradient_explosion.warning == 100.0            # untouched default
    assert cfg.metrics["grad.norm"] == "grad_norm"
    assert cfg.metric_name("validation.diagonality") is None
    learning_rate, weight_decay = cfg.training_recovery.actions["overfitting"]   # dropout removed
    assert learning_rate.param == "learning_rate"
    assert (weight_decay.mode, weight_decay.low, weight_decay.high, weight_decay.log) == ("scale", 3.0, 4.0, False)
    assert cfg.early_stopping == load_config().early_stopping                  # empty section: defaults


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == load_config()


@pytest.mark.parametrize("base, over, expected", [
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}, {"a": {"b": 3, "c": 2}}),
    ({"a": {"b": 1}}, {"a": 5}, {"a": 5}),
    ({"a": 1}, {"z": {"y": 2}}, {"a": 1, "z": {"y": 2}}),
    ({"a": {"b": 1}, "c": 2}, {"a": None, "c": None}, {"a": {"b": 1}, "c": None}),   # empty section
])
def test_deep_merge(base: dict, over: dict, expected: dict) -> None:
    assert deep_merge(base, over) == expected


@pytest.mark.parametrize("text, fragments", [
    ("diagnostics:\n  overfitting:\n    critical_gap: -1\n",
     ["diagnostics.overfitting.critical_gap", "must be > 0", "got -1", "my.yaml"]),
    ("diagnostics:\n  gate:\n    warning: high\n",
     ["diagnostics.gate.warning", "number", "'high'", "my.yaml"]),
    ("diagnostics:\n  overfiting:\n    critical_gap: 3\n",
     ["unknown key diagnostics.overfiting", "did you mean 'overfitting'?", "my.yaml"]),
    ("early_stopping:\n  patiense: 5\n", ["early_stopping.patiense", "did you mean 'patience'?"]),
    ("early_stopping:\n  enabled: maybe\n", ["early_stopping.enabled", "true or false", "'maybe'"]),
    ("early_stopping:\n  patience: 2.5\n", ["early_stopping.patience", "integer", "2.5"]),
    ("diagnostics:\n  attention:\n    critical: 0.5\n",
     ["diagnostics.attention.critical", "<= warning (0.3)", "0.5"]),
    ("diagnostics:\n  attention:\n    warning: 1.5\n", ["diagnostics.attention.warning", "<= 1", "1.5"]),
    ("diagnostics:\n  history_size: 10\n", ["diagnostics.history_size", "critical_window", "10"]),
    ("metrics:\n  grad.nrm: g\n", ["metrics.grad.nrm", "did you mean 'grad.norm'?"]),
    ("training_recovery:\n  actions:\n    gradient_explsion: {}\n",
     ["training_recovery.actions.gradient_explsion", "did you mean 'gradient_explosion'?"]),
    ("training_recovery:\n  actions:\n    overfitting:\n      dropout: {shift: [0.1, 0.1], mx: 0.5}\n",
     ["training_recovery.actions.overfitting.dropout.mx", "did you mean 'max'?"]),
    ("training_recovery:\n  actions:\n    overfitting:\n      dropout: {scale: [0.8, 0.5]}\n",
     ["training_recovery.actions.overfitting.dropout.scale", "low <= high", "[0.8, 0.5]"]),
    ("training_recovery:\n  actions:\n    overfitting:\n      dropout: {scale: [1, 2], shift: [1, 2]}\n",
     ["training_recovery.actions.overfitting.dropout", "exactly one of scale/shift/value/set"]),
    ("training_recovery:\n  actions:\n    overfitting:\n      dropout: {scale: 0.5}\n",
     ["training_recovery.actions.overfitting.dropout.scale", "[low, high]", "0.5"]),
    ("training_recovery: 7\n", ["training_recovery must be a mapping", "7"]),
    ("- just\n- a list\n", ["my.yaml must hold a YAML mapping", "list"]),
    ("diagnostics:\n  gradient_explosion: {warning: 100\n", ["invalid YAML at line", "my.yaml:"]),
    ("diagnostics:\n\tgradient_explosion: 1\n", ["invalid YAML at line 2", "my.yaml:"]),
])
def test_bad_file_names_file_field_and_value(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.yaml not found"):
        load_config(tmp_path / "nope.yaml")


def test_config_error_is_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("d, check", [
    ({}, lambda c: c == load_config()),
    ({"training_recovery": {"enabled": False}}, lambda c: c.training_recovery.enabled is False),
    ({"optuna": {"storage": "sqlite:///x.db", "seed": 3}}, lambda c: c.optuna.seed == 3),
])
def test_config_from_dict(d: dict, check) -> None:
    assert check(config_from_dict(d))


def test_config_from_dict_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"optuna.seed must be an integer, got 'x' \(str\) in sweep.yaml"):
        config_from_dict({"optuna": {"seed": "x"}}, source="sweep.yaml")


def test_import_tuner_does_not_import_ray_or_torch() -> None:
    code = ("import sys, tuner; from tuner import load_config, diagnose, Problem, ConfigError; "
            "bad = [m for m in ('ray', 'torch', 'optuna') if m in sys.modules]; "
            "assert not bad, bad; print(callable(tuner.__getattr__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_unknown_attribute_of_tuner_raises_attribute_error() -> None:
    import tuner
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tuner.nope  # noqa: B018


@pytest.mark.parametrize("action, expected", [
    ("gradient_explosion:\n      learnin_rate: {scale: [0.25, 0.5]}",
     "unknown key training_recovery.actions.gradient_explosion.learnin_rate in {f}; "
     "did you mean 'learning_rate'?"),
    ("stagnation:\n      lr_schedule: {scale: [0.5, 0.5]}",
     "training_recovery.actions.stagnation.lr_schedule.scale: lr_schedule is not a number; "
     "change it with set: VALUE in {f}"),
    ("overfitting:\n      dropout: {shift: [0.1, 0.1], max: 1.5}",
     "training_recovery.actions.overfitting.dropout: max 1.5 is outside what train_tts allows for "
     "dropout (a number in [0, 0.9]) in {f}"),
    ("gate_collapse:\n      gate_threshold: {value: [0.3, 1.0]}",
     "value high 1.0 is outside what train_tts allows for gate_threshold (a number in (0, 1))"),
    ("attention_collapse:\n      reset_attention: {set: 'yes'}",
     "training_recovery.actions.attention_collapse.reset_attention.set: 'yes' is not a value "
     "train_tts allows for reset_attention (true or false) in {f}"),
])
def test_adjustment_params_are_train_tts_settings(tmp_path: Path, action: str, expected: str) -> None:
    path = tmp_path / "my.yaml"
    path.write_text(f"training_recovery:\n  actions:\n    {action}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert expected.format(f=path) in str(info.value) and "\n" not in str(info.value)
