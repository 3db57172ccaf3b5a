"""tuner/core/config_legacy.py: Smart Tuner V2's config layout and metric names, mapped in one line each."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from tuner.cli import main
from tuner.core.config import ConfigError, SmartConfig, config_from_dict, load_config
from tuner.core.policy import TrialMonitor
from tuner.core.rules import diagnose
from tuner.raytune.sweep import smart_config

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "examples" / "smart_tuner_v2_config.yaml"


def _params(cfg: SmartConfig, kind: str) -> tuple[str, ...]:
    return tuple(a.param for a in cfg.training_recovery.actions[kind])


def test_the_design_documents_example_loads_with_the_mapped_values(capsys: pytest.CaptureFixture) -> None:
    cfg = load_config(EXAMPLE)
    d = cfg.diagnostics
    # critical 10 from problem_detection; the instability warning (50) cannot exceed it -> 10
    assert (d.gradient_explosion.warning, d.gradient_explosion.critical) == (10.0, 10.0)
    assert (d.overfitting.critical_gap, d.overfitting.rising_window) == (5.0, 50)
    assert (d.stagnation.window, d.stagnation.critical_window, d.stagnation.min_delta) == (100, 150, 0.0005)
    assert (d.attention.critical, d.attention.warning) == (0.3, 0.3)
    assert (cfg.early_stopping.enabled, cfg.early_stopping.patience, cfg.early_stopping.min_delta) \
        == (True, 200, 0.001)
    assert cfg.training_recovery.enabled is True
    assert _params(cfg, "gradient_explosion") == ("learning_rate",)
    assert _params(cfg, "stagnation") == ("lr_restart",)
    assert _params(cfg, "attention_collapse") == ("reset_attention",)
    assert _params(cfg, "overfitting") == _params(load_config(), "overfitting")   # untouched
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 11 and all(line.startswith(f"smart-tuner: {EXAMPLE}: Smart Tuner V2 key ")
                                    for line in lines)
    assert any("diagnostics.instability.grad_norm_threshold 50.0 -> diagnostics.gradient_explosion.warning "
               "10.0 (lowered to 10.0" in line and "rule text says 100.0; your file's values win" in line
               for line in lines)


@pytest.mark.parametrize("text, read, expected, says", [
    ("diagnostics: {instability: {grad_norm_threshold: 50.0}}",
     lambda c: (c.diagnostics.gradient_explosion.warning, c.diagnostics.gradient_explosion.critical),
     (50.0, 200.0), "-> diagnostics.gradient_explosion.warning 50.0 (the design document's rule text "
                    "says 100.0; your file's values win)"),
    ("diagnostics: {instability: {grad_norm_threshold: 300}}",
     lambda c: (c.diagnostics.gradient_explosion.warning, c.diagnostics.gradient_explosion.critical),
     (300.0, 300.0), "default diagnostics.gradient_explosion.critical 200.0 -> 300 (raised to 300"),
    ("diagnostics: {overfitting: {threshold: 4.0}}", lambda c: c.diagnostics.overfitting.critical_gap,
     4.0, "-> diagnostics.overfitting.critical_gap 4.0 (the design document's rule text says 5.0"),
    ("diagnostics: {overfitting: {window_size: 50}}", lambda c: c.diagnostics.overfitting.rising_window,
     50, "diagnostics.overfitting.window_size 50 -> diagnostics.overfitting.rising_window 50"),
    ("diagnostics: {stagnation: {window_size: 150}}", lambda c: c.diagnostics.stagnation.critical_window,
     150, "diagnostics.stagnation.window_size 150 -> diagnostics.stagnation.critical_window 150"),
    ("diagnostics: {stagnation: {window_size: 300}}",
     lambda c: (c.diagnostics.stagnation.critical_window, c.diagnostics.history_size),
     (300, 301), "default diagnostics.history_size 200 -> 301"),
    ("training_recovery: {problem_detection: {gradient_explosion: {threshold: 10.0}}}",
     lambda c: (c.diagnostics.gradient_explosion.warning, c.diagnostics.gradient_explosion.critical),
     (10.0, 10.0), "default diagnostics.gradient_explosion.warning 100.0 -> 10.0"),
    ("training_recovery: {problem_detection: {loss_plateau: {patience: 100}}}",
     lambda c: c.diagnostics.stagnation.window, 100,
     "training_recovery.problem_detection.loss_plateau.patience 100 -> diagnostics.stagnation.window 100"),
    ("training_recovery: {problem_detection: {attention_collapse: {threshold: 0.5}}}",
     lambda c: (c.diagnostics.attention.critical, c.diagnostics.attention.warning), (0.5, 0.5),
     "default diagnostics.attention.warning 0.3 -> 0.5"),
    ("early_stopping: {patience_epochs: 200}", lambda c: c.early_stopping.patience, 200,
     "early_stopping.patience_epochs 200 -> early_stopping.patience 200"),
    ("training_recovery: {problem_detection: {gradient_explosion: {action: reduce_lr}}}",
     lambda c: _params(c, "gradient_explosion"), ("learning_rate",),
     "-> training_recovery.actions.gradient_explosion: learning_rate {scale: [0.25, 0.5]"),
    ("training_recovery: {problem_detection: {loss_plateau: {action: lr_restart}}}",
     lambda c: _params(c, "stagnation"), ("lr_restart",), "without today's batch_size, seed"),
    ("training_recovery: {problem_detection: {attention_collapse: {action: attention_reset}}}",
     lambda c: _params(c, "attention_collapse"), ("reset_attention",),
     "-> training_recovery.actions.attention_collapse: reset_attention {set: true} only"),
    ("training_recovery: {problem_detection: {gradient_explosion: {action: lr_restart}}}",
     lambda c: _params(c, "gradient_explosion"), ("lr_restart",),
     "-> training_recovery.actions.gradient_explosion: lr_restart {set: true} only"),
])
def test_each_legacy_key_alone(tmp_path: Path, capsys: pytest.CaptureFixture, text: str,
                               read: Callable[[SmartConfig], Any], expected: Any, says: str) -> None:
    path = tmp_path / "v2.yaml"
    path.write_text(text + "\n")
    assert read(load_config(path)) == expected
    err = capsys.readouterr().err
    assert says in err and err.count("\n") >= 1
    assert read(config_from_dict(__import__("yaml").safe_load(text))) == expected   # a dict alike


@pytest.mark.parametrize("text, old, new", [
    ("diagnostics: {instability: {grad_norm_threshold: 50}, gradient_explosion: {warning: 60}}",
     "diagnostics.instability.grad_norm_threshold", "diagnostics.gradient_explosion.warning"),
    ("early_stopping: {patience_epochs: 200, patience: 100}",
     "early_stopping.patience_epochs", "early_stopping.patience"),
    ("diagnostics: {overfitting: {threshold: 5.0, critical_gap: 4.0}}",
     "diagnostics.overfitting.threshold", "diagnostics.overfitting.critical_gap"),
    ("training_recovery: {problem_detection: {loss_plateau: {action: lr_restart}},\n"
     "  actions: {stagnation: {lr_restart: {set: true}}}}",
     "training_recovery.problem_detection.loss_plateau.action", "training_recovery.actions.stagnation"),
])
def test_a_file_mixing_both_layouts_for_one_setting_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture, text: str, old: str, new: str) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and old in message and new in message and str(path) in message
    space = tmp_path / "space.yaml"
    space.write_text("num_samples: 1\nconfig: {preset: tiny}\n")
    assert main(["tune", "--search-space", str(space), "--config", str(path)]) == 2   # the CLI too
    err = capsys.readouterr().err
    assert err.startswith("smart-tuner: error: ") and err.count("\n") == 1 and old in err and new in err


@pytest.mark.parametrize("text, expected", [
    ("diagnostics: {instability: {grad_norm_treshold: 50}}",
     "unknown key diagnostics.instability.grad_norm_treshold in {path}; did you mean 'grad_norm_threshold'?"),
    ("training_recovery: {problem_detection: {loss_plateau: {threshold: 5}}}",
     "unknown key training_recovery.problem_detection.loss_plateau.threshold in {path}; allowed: action, "
     "patience"),
    ("training_recovery: {problem_detection: {gradient_explosion: {action: reduce_rl}}}",
     "'reduce_rl' is not a Smart Tuner V2 action in {path}; did you mean 'reduce_lr'?"),
    ("diagnostics: {overfitting: {window_size: 1}}",
     "diagnostics.overfitting.rising_window must be >= 2, got 1 in {path} (set from the Smart Tuner V2 "
     "key diagnostics.overfitting.window_size)"),
    ("training_recovery: {problem_detection: {loss_plateau: {patience: 150}}}\n"
     "diagnostics: {stagnation: {critical_window: 120}}",     # today's key set by the user: no move
     "diagnostics.stagnation.critical_window must be >= window (150), got 120 in {path}"),
])
def test_bad_v2_values_get_one_line_naming_the_v2_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "v2.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).endswith(expected.format(path=path))
    assert "\n" not in str(info.value)


def test_v2_file_over_a_search_space_section_in_todays_layout(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    """--config wins over the space's section even when they use different layouts for one setting."""
    space = {"diagnostics": {"gradient_explosion": {"warning": 70.0}},
             "training_recovery": {"min_training_time": 30}}
    cfg, overrides = smart_config(space, str(EXAMPLE))
    assert cfg.diagnostics.gradient_explosion.warning == 10.0
    assert cfg.training_recovery.min_training_time == 30.0
    assert "problem_detection" not in overrides["training_recovery"]     # saved in today's layout
    assert capsys.readouterr().err.count("Smart Tuner V2 key") == 11      # announced once
    v2_space = {"early_stopping": {"patience_epochs": 50}}
    cfg, _ = smart_config(v2_space, None)
    assert cfg.early_stopping.patience == 50
    assert "search space smart_tuner section: Smart Tuner V2 key early_stopping.patience_epochs 50" \
        in capsys.readouterr().err


# ----------------------------------------------------------------------------- metric names
def _results(gate_name: str, attention_name: str = "validation.attention_score", n: int = 4) -> list[dict]:
    return [{"training.loss": 1.0 - 0.01 * i, "validation.loss": 1.2 - 0.01 * i, "grad.norm": 1.0,
             attention_name: 0.9, gate_name: 0.05, "overfitting.gap": 0.2, "validation.step": i}
            for i in range(1, n + 1)]


@pytest.mark.parametrize("gate_name, attention_name", [
    ("validation.gate_accuracy", "validation.attention_score"),
    ("validation.gate_mean", "validation.attention_score"),      # the design document's MLflow name
    ("gate_accuracy", "attention_alignment_score"),              # its early_stop_controller names
])
def test_a_trainable_reporting_v2_metric_names_is_judged_by_the_gate_rule(gate_name: str,
                                                                          attention_name: str) -> None:
    cfg = load_config()
    [gate] = [p for p in diagnose(_results(gate_name, attention_name), cfg) if p.kind == "gate_collapse"]
    assert (gate.severity, gate.value, gate.metric) == ("critical", 0.05, "validation.gate_accuracy")
    monitor = TrialMonitor(cfg, start_time=0.0)            # the Supervisor's path: History.for_config
    for result in _results(gate_name, attention_name):
        decision = monitor.observe(result, now=1e6)
    assert "gate_collapse" in {p.kind for p in decision.problems}


def test_the_reported_name_wins_over_v2_names_and_a_user_mapping_replaces_the_list() -> None:
    both = [dict(r, **{"validation.gate_mean": 0.9}) for r in _results("validation.gate_accuracy")]
    assert "gate_collapse" in {p.kind for p in diagnose(both, load_config())}   # 0.05 read, not 0.9
    cfg = config_from_dict({"metrics": {"validation.gate_accuracy": "my_gate"}})
    assert cfg.metric_alternatives.get("my_gate") is None
    with pytest.raises(KeyError, match="my_gate"):
        diagnose(_results("validation.gate_mean"), cfg)
    with pytest.raises(ConfigError, match="metrics.validation.gate_accuracy must be a non-empty string"):
        config_from_dict({"metrics": {"validation.gate_accuracy": ["a", None]}})
