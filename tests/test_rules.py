"""tuner/rules.py: every rule at, just below and just above its thresholds, with NaN and Inf."""
from __future__ import annotations

import pytest

from tuner.config import SmartConfig, config_from_dict, load_config
from tuner.history import History, MissingMetricError
from tuner.rules import (Problem, attention_collapse, diagnose, gate_collapse, gradient_explosion,
                         overfitting, stagnation, training_degradation, validation_loss)

NAN, INF = float("nan"), float("inf")
CFG = load_config()
D = CFG.diagnostics


def results(n: int = 6, **cols: list[float]) -> list[dict[str, float]]:
    """n healthy results (losses falling slowly, grad.norm 10, attention 0.6, gate 0.8); each list
    in `cols` overrides its metric in the last len(list) results. Dots are spelled `_` in names:
    training_loss, validation_loss, grad_norm, attention, gate, gap, early_stop, diagonality."""
    names = {"training_loss": "training.loss", "validation_loss": "validation.loss",
             "grad_norm": "grad.norm", "attention": "validation.attention_score",
             "gate": "validation.gate_accuracy", "gap": "overfitting.gap",
             "early_stop": "validation.early_stop_fraction", "diagonality": "validation.diagonality"}
    out = []
    for i in range(n):
        r = {"training.loss": 2.0 - 0.01 * i, "validation.loss": 2.2 - 0.01 * i, "grad.norm": 10.0,
             "validation.attention_score": 0.6, "validation.gate_accuracy": 0.8, "validation.step": i + 1}
        out.append(r)
    for key, values in cols.items():
        for r, v in zip(out[n - len(values):], values):
            r[names[key]] = v
    for r in out:
        r.setdefault("overfitting.gap", r["validation.loss"] - r["training.loss"])
    return out


def window(n: int = 6, cfg: SmartConfig = CFG, **cols: list[float]) -> History:
    return History.from_results(results(n, **cols), cfg)


def severity(problem: Problem | None) -> str | None:
    return None if problem is None else problem.severity


@pytest.mark.parametrize("norms, loss, expected, metric", [
    ([99.99], 1.0, None, None),
    ([100.0], 1.0, None, None),                       # at the warning threshold: not above
    ([100.01], 1.0, "warning", "grad.norm"),
    ([199.99], 1.0, "warning", "grad.norm"),
    ([200.0], 1.0, "warning", "grad.norm"),           # at the critical threshold: still a warning
    ([200.01], 1.0, "critical", "grad.norm"),
    ([150.0] * 4, 1.0, "warning", "grad.norm"),       # held 4 reports: not yet serious
    ([150.0] * 5, 1.0, "serious", "grad.norm"),       # held serious_after = 5 reports
    ([NAN], 1.0, "critical", "grad.norm"),
    ([INF], 1.0, "critical", "grad.norm"),
    ([-INF], 1.0, "critical", "grad.norm"),
    ([10.0], NAN, "critical", "training.loss"),
    ([10.0], INF, "critical", "training.loss"),
])
def test_gradient_explosion(norms: list[float], loss: float, expected: str | None, metric: str | None) -> None:
    p = gradient_explosion(window(grad_norm=norms, training_loss=[loss]), D.gradient_explosion, D.serious_after)
    assert severity(p) == expected
    assert (p.metric if p else None) == metric


def _trainer_results(rows: list[tuple[float, float, float, float, float, float]]) -> History:
    """Results as train_tts reports them: (grad.norm over taken steps, training.loss,
    skipped, overflows, interval steps, restored_from_nan) per report, healthy otherwise."""
    out = results(len(rows))
    for r, (norm, loss, skipped, overflows, steps, restored) in zip(out, rows):
        r.update({"grad.norm": norm, "training.loss": loss, "training.skipped_steps": skipped,
                  "training.overflow_steps": overflows, "training.interval_steps": steps,
                  "restored_from_nan": restored})
    return History.from_results(out, CFG)


OK = (10.0, 1.0, 0.0, 0.0, 50.0, 0.0)


@pytest.mark.parametrize("last, expected, metric", [
    ((10.0, 1.0, 1.0, 0.0, 50.0, 0.0), None, None),          # one skipped step (nan_at_step): the safeguard
    ((10.0, 1.0, 10.0, 0.0, 50.0, 0.0), None, None),         # share 0.2: at the threshold, not above
    ((10.0, 1.0, 11.0, 0.0, 50.0, 0.0), "critical", "training.skipped_steps"),   # 0.22 > 0.2
    ((10.0, 1.0, 30.0, 30.0, 50.0, 0.0), None, None),        # fp16 GradScaler overflows: not an explosion
    ((10.0, 1.0, 30.0, 19.0, 50.0, 0.0), "critical", "training.skipped_steps"),  # 11 of them not overflows
    ((NAN, NAN, 50.0, 0.0, 50.0, 0.0), "critical", "training.skipped_steps"),    # nothing taken
    ((NAN, NAN, 50.0, 50.0, 50.0, 0.0), "critical", "grad.norm"),   # only overflows, nothing taken
    ((10.0, 1.0, 0.0, 0.0, 50.0, 1.0), "critical", "restored_from_nan"),         # non-finite parameters
    ((250.0, 1.0, 0.0, 0.0, 50.0, 0.0), "critical", "grad.norm"),
])
def test_gradient_explosion_with_skipped_steps(last: tuple, expected: str | None, metric: str | None) -> None:
    p = gradient_explosion(_trainer_results([OK, last]), D.gradient_explosion, D.serious_after)
    assert severity(p) == expected
    assert (p.metric if p else None) == metric


def test_non_finite_validation_loss_is_an_explosion_with_skipped_steps_reported() -> None:
    h = _trainer_results([OK, OK])
    rows = list(h)
    rows[-1]["validation.loss"] = NAN
    p = gradient_explosion(History.from_results(rows, CFG), D.gradient_explosion)
    assert (severity(p), p.metric if p else None) == ("critical", "validation.loss")


def test_skipped_share_threshold_is_configurable() -> None:
    cfg = config_from_dict({"diagnostics": {"gradient_explosion": {"critical_skipped_share": 0.01}}})
    p = gradient_explosion(_trainer_results([OK, (10.0, 1.0, 1.0, 0.0, 50.0, 0.0)]), cfg.diagnostics.gradient_explosion)
    assert severity(p) == "critical" and "1.0 of 50.0" in p.message


def test_message_names_metric_value_threshold_and_step() -> None:
    p = gradient_explosion(window(7, grad_norm=[312.4]), D.gradient_explosion)
    assert p is not None
    assert p.message == "grad.norm 312.4 > 200.0 (critical) at validation 7"
    assert (p.kind, p.value, p.threshold, p.step) == ("gradient_explosion", 312.4, 200.0, 7)


@pytest.mark.parametrize("gaps, expected", [
    ([1.99], None),
    ([2.0], None),
    ([2.01], "warning"),
    ([5.0], "warning"),
    ([5.01], "critical"),
    ([3.0] * 5, "serious"),
    ([3.0] * 4, "warning"),
    ([NAN], None),                                    # non-finite: left to the loss rules
    ([INF], None),
])
def test_overfitting_gap(gaps: list[float], expected: str | None) -> None:
    p = overfitting(window(gap=gaps), D.overfitting, D.serious_after)
    assert severity(p) == expected


@pytest.mark.parametrize("val, train, expected", [
    ([1.0, 1.02, 1.04, 1.06, 1.08, 1.1], [1.0, 0.9, 0.8, 0.7, 0.6, 0.5], "serious"),   # rose 5 times
    ([1.02, 1.02, 1.04, 1.06, 1.08, 1.1], [1.0, 0.9, 0.8, 0.7, 0.6, 0.5], None),       # rose 4 times
    ([1.0, 1.02, 1.04, 1.06, 1.08, 1.1], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], None),        # training rising too
    ([1.0, 1.02, 1.04, NAN, 1.08, 1.1], [1.0, 0.9, 0.8, 0.7, 0.6, 0.5], None),         # NaN breaks the run
])
def test_overfitting_rising_validation_loss(val: list[float], train: list[float], expected: str | None) -> None:
    rows = results(6, validation_loss=val, training_loss=train)
    for r in rows:
        r.pop("overfitting.gap")                      # derived from the losses when not reported
    p = overfitting(History.from_results(rows, CFG), D.overfitting, D.serious_after)
    assert severity(p) == expected


STAG = config_from_dict({"diagnostics": {"stagnation": {"window": 3, "critical_window": 6,
                                                         "min_delta": 0.25}}})


@pytest.mark.parametrize("val, expected", [
    ([1.0, 2.0, 2.0, 0.75], None),                    # improvement 0.25 = min_delta: enough
    ([1.0, 2.0, 2.0, 0.8], "serious"),                # 0.2 < 0.25
    ([1.0, 2.0, 2.0, 0.5], None),
    ([0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5], "critical"),   # nothing better for 6 reports
    ([1.0, 2.0, NAN, 0.5], None),                     # NaN skipped when looking for the best
    ([1.0, NAN, NAN, NAN], None),                     # no finite recent value: not judged
    ([1.0, 1.0, 1.0, 1.0], "serious"),
    ([1.0, 0.5], None),                               # too little data
])
def test_stagnation_improvement(val: list[float], expected: str | None) -> None:
    rule = STAG.diagnostics.stagnation
    p = stagnation(History.from_results(results(len(val), validation_loss=val), STAG), rule)
    assert severity(p) == expected


@pytest.mark.parametrize("frozen, expected", [(4, None), (5, "serious"), (9, "serious"), (10, "critical")])
def test_stagnation_frozen_metrics(frozen: int, expected: str | None) -> None:
    h = window(12, training_loss=[0.7] * frozen, validation_loss=[0.9] * frozen)
    assert severity(stagnation(h, D.stagnation)) == expected


@pytest.mark.parametrize("val, train, expected", [
    # best 1.0 five reports ago; the last 2 reports must both be more than 20% above it (limit 1.2)
    ([1.0, 1.1, 1.05, 1.15, 1.2, 1.2], [1.0, 0.9, 0.85, 0.8, 0.75, 0.7], None),
    ([1.0, 1.1, 1.05, 1.15, 1.21, 1.21], [1.0, 0.9, 0.85, 0.8, 0.75, 0.7], "critical"),
    ([1.0, 1.1, 1.05, 1.15, 1.18, 1.21], [1.0, 0.9, 0.85, 0.8, 0.75, 0.7], None),      # one noisy report
    ([1.0, 1.1, 1.05, 1.15, 1.21, 1.21], [1.0, 0.9, 0.85, 0.8, 0.75, 1.1], None),      # training rose
    ([1.1, 1.0, 1.1, 1.05, 1.25, 1.25], [1.0, 0.9, 0.85, 0.8, 0.75, 0.7], None),       # best too recent
    ([1.0, 1.1, NAN, 1.15, 1.21, 1.21], [1.0, 0.9, 0.85, 0.8, 0.75, 0.7], "critical"),
    ([1.0, 1.1, 1.05, 1.15, NAN, 1.21], [1.0, 0.9, 0.85, 0.8, 0.75, 0.7], None),       # NaN is not above
])
def test_overfitting_sustained_rise_above_the_best(val: list[float], train: list[float],
                                                   expected: str | None) -> None:
    h = window(6, validation_loss=val, training_loss=train, gap=[0.5] * 6)
    assert severity(overfitting(h, D.overfitting, D.serious_after)) == expected


def test_stagnation_default_window_on_a_slow_healthy_trial_is_quiet() -> None:
    assert stagnation(window(60), D.stagnation) is None


@pytest.mark.parametrize("scores, expected", [
    ([0.3001] * 5, None),
    ([0.3] * 5, None),                               # at the threshold: not below
    ([0.2999], "warning"),
    ([0.05], "warning"),
    ([0.0499], "critical"),
    ([0.2] * 5, "serious"),
    ([0.2] * 4, "warning"),
    ([NAN], None),
    ([INF], None),
    ([0.9, 0.9, 0.9, 0.9, 0.75], "warning"),        # degrading: down 0.15 from the best of 5
    ([0.9, 0.9, 0.9, 0.9, 0.81], None),             # down 0.09
])
def test_attention_collapse(scores: list[float], expected: str | None) -> None:
    p = attention_collapse(window(attention=scores), D.attention, D.serious_after)
    assert severity(p) == expected


@pytest.mark.parametrize("diag, expected", [([0.8, 0.8, 0.8, 0.8, 0.6], "warning"), ([0.8] * 5, None)])
def test_attention_diagonality_degrading(diag: list[float], expected: str | None) -> None:
    p = attention_collapse(window(diagonality=diag), D.attention, D.serious_after)
    assert severity(p) == expected
    assert p is None or p.metric == "validation.diagonality"


@pytest.mark.parametrize("acc, early, expected", [
    ([0.4001], None, None),
    ([0.4], None, None),
    ([0.3999], None, "warning"),
    ([0.1], None, "warning"),
    ([0.0999], None, "critical"),
    ([0.3] * 5, None, "serious"),
    ([NAN], None, None),
    ([0.8], [0.5], None),
    ([0.8], [0.51], "serious"),                       # gate closes early on most utterances
    ([0.8], [NAN], None),
    ([0.05], [0.9], "critical"),
])
def test_gate_collapse(acc: list[float], early: list[float] | None, expected: str | None) -> None:
    cols = {"gate": acc} if early is None else {"gate": acc, "early_stop": early}
    assert severity(gate_collapse(window(**cols), D.gate, D.serious_after)) == expected


@pytest.mark.parametrize("attention, gate, requires, expected", [
    (0.29, 0.0, 0.3, None),          # not aligned yet: a low gate is expected, attention speaks
    (0.3, 0.0, 0.3, "critical"),     # aligned: the gate is judged
    (NAN, 0.0, 0.3, "critical"),     # a NaN score does not hold the rule back
    (0.01, 0.0, 0.0, "critical"),    # requires_attention 0: always judged
])
def test_gate_waits_for_attention(attention: float, gate: float, requires: float, expected: str | None) -> None:
    cfg = config_from_dict({"diagnostics": {"gate": {"requires_attention": requires}}})
    w = window(attention=[attention], gate=[gate], cfg=cfg)
    assert severity(gate_collapse(w, cfg.diagnostics.gate, cfg.diagnostics.serious_after)) == expected


@pytest.mark.parametrize("loss, expected", [
    (99.99, None), (100.0, None), (100.01, "critical"), (NAN, "critical"), (INF, "critical"),
])
def test_validation_loss(loss: float, expected: str | None) -> None:
    assert severity(validation_loss(window(validation_loss=[loss]), D.validation_loss)) == expected


@pytest.mark.parametrize("initial, current, expected", [
    (10.0, 10.99, None),
    (10.0, 11.0, None),                               # progress exactly -0.1
    (10.0, 11.01, "critical"),
    (10.0, NAN, None),                                # non-finite: gradient_explosion's
    (10.0, INF, None),
    (0.0, 5.0, None),                                 # initial <= 0: ratio meaningless
])
def test_training_degradation(initial: float, current: float, expected: str | None) -> None:
    h = History(3, CFG.metrics)
    h.append(results(1, training_loss=[initial])[0])
    for r in results(4, training_loss=[current] * 4):    # the window rolls past the initial loss
        h.append(r)
    assert severity(training_degradation(h, D.training_degradation)) == expected


def test_diagnose_orders_most_severe_first() -> None:
    problems = diagnose(results(6, grad_norm=[150.0], attention=[0.01], gate=[0.3]), CFG)
    assert [(p.kind, p.severity) for p in problems] == [      # the gate waits for attention >= 0.3
        ("attention_collapse", "critical"), ("gradient_explosion", "warning")]
    problems = diagnose(results(6, grad_norm=[150.0], attention=[0.04], diagonality=[0.9], gate=[0.3]),
                        config_from_dict({"diagnostics": {"gate": {"requires_attention": 0.0}}}))
    assert [(p.kind, p.severity) for p in problems] == [
        ("attention_collapse", "critical"), ("gradient_explosion", "warning"), ("gate_collapse", "warning")]


def test_diagnose_healthy_trial_finds_nothing() -> None:
    assert diagnose(results(30), CFG) == []


def test_diagnose_missing_metric_lists_reported_metrics() -> None:
    rows = [{"training.loss": 1.0, "validation.loss": 1.2, "validation.step": 1}]
    with pytest.raises(MissingMetricError, match=r"'grad.norm'.*training.loss, validation.loss, validation.step"):
        diagnose(rows, CFG)


def test_metric_mapped_to_null_skips_its_rule() -> None:
    cfg = config_from_dict({"metrics": {"validation.attention_score": None, "validation.gate_accuracy": None}})
    rows = [{k: v for k, v in r.items() if "attention" not in k and "gate" not in k} for r in results(3)]
    assert diagnose(rows, cfg) == []


def test_disabled_rule_is_skipped() -> None:
    cfg = config_from_dict({"diagnostics": {"gradient_explosion": {"enabled": False}}})
    assert diagnose(results(3, grad_norm=[NAN]), cfg) == []


def test_problem_to_dict() -> None:
    p = gradient_explosion(window(grad_norm=[250.0]), D.gradient_explosion)
    assert p is not None and p.to_dict()["threshold"] == 200.0 and p.to_dict()["kind"] == "gradient_explosion"
