"""Issue-8 metrics on hand-built records: the one "usable" definition, what counts as an
intervention, compute lost, regret; and that cures belong to the trial, not to tuner/core/config.yaml."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from benchmarks.drivers import SimTrial, Verdict
from benchmarks.faults import Fault
from benchmarks.harness import RunRecord, TrialRecord, _one_report, run_population
from benchmarks.metrics import user_metrics
from benchmarks.scenario import load_scenario, population
from benchmarks.surrogate import SurrogateTrial
from benchmarks.usable import ATTENTION_MIN, GATE_MIN, is_usable, why_unusable

GOOD = {"validation.loss": 2.5, "grad.norm": 3.0, "validation.attention_score": 0.7, "validation.gate_accuracy": 0.6}
BASE = {"learning_rate": 2e-3, "batch_size": 16, "dropout": 0.1, "weight_decay": 1e-6,
        "guided_attention_weight": 1.0, "gate_loss_weight": 1.0, "gate_pos_weight": 5.0}


@pytest.mark.parametrize(
    "change, reason",
    [
        ({}, None),
        ({"validation.loss": math.nan}, "not finite"),
        ({"validation.loss": math.inf}, "not finite"),
        ({"grad.norm": math.nan}, "not finite"),
        ({"validation.attention_score": ATTENTION_MIN - 0.01}, "attention"),
        ({"validation.gate_accuracy": GATE_MIN - 0.01}, "gate accuracy"),
        ({"validation.loss": 2.61}, "target"),
        ({"validation.loss": 2.6}, None),   # at the target is usable
    ],
)
def test_usable_definition(change: dict, reason: str | None) -> None:
    got = why_unusable({**GOOD, **change}, target=2.6)
    assert (got is None) if reason is None else (got is not None and reason in got)


def test_gate_threshold_is_the_gate_rules_warning() -> None:
    cfg = yaml.safe_load((Path(__file__).resolve().parent.parent / "tuner" / "core" / "config.yaml").read_text())
    assert GATE_MIN == cfg["diagnostics"]["gate"]["warning"]


def test_a_diverging_trial_is_unusable() -> None:
    sim = SurrogateTrial(3, Fault("gradient_explosion", 4, BASE))
    for _ in range(12):
        sim.step(BASE)
    assert sim.state.damage.diverged and not is_usable(sim.clean_metrics(BASE), target=100.0)
    healthy = SurrogateTrial(3, None)
    for _ in range(40):
        healthy.step(BASE)
    assert is_usable(healthy.clean_metrics(BASE), target=3.0)


class _Stopper:
    """A driver that answers every report with ``verdict``."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict, self.completed = verdict, []

    def result(self, trial, result, checkpoint, now):  # noqa: ANN001, ANN201
        return self.verdict

    def complete(self, trial, result):  # noqa: ANN001, ANN201
        self.completed.append(trial.trial_id)


@pytest.mark.parametrize(
    "verdict, at_report, finished, actions",
    [
        (Verdict("stop", "prune"), 4, True, []),            # ASHA's STOP at max_t: completion
        (Verdict("stop", "prune"), 2, False, ["prune"]),    # ASHA's STOP before max_t: pruning
        (Verdict("stop", "stop"), 4, False, ["stop"]),      # a real stop at the last report stays a stop
    ],
)
def test_asha_completion_at_max_t_is_not_an_intervention(verdict: Verdict, at_report: int, finished: bool,
                                                         actions: list[str]) -> None:
    sc = load_scenario(Path(__file__).resolve().parent.parent / "benchmarks" / "scenarios" / "default.yaml")
    from dataclasses import replace

    sc = replace(sc, max_reports=4)
    rec = RunRecord("asha", 0)
    tr = rec.trials["t"] = TrialRecord("t", None, None, True, True)
    sim, trial = SurrogateTrial(0, None), SimTrial("t", BASE)
    running = [trial]
    for _ in range(at_report - 1):
        sim.step(BASE)
    driver = _Stopper(verdict)
    _one_report(sc, rec, driver, trial, sim, None, running, 0.0)
    assert tr.finished is finished and [a for _, a in tr.actions] == actions and running == []


def _tr(tid: str, reports: int, usable: bool, usable_unscheduled: bool, healthy: bool = True,
        actions: list | None = None, last: float = math.nan, clean: float = math.nan) -> TrialRecord:
    return TrialRecord(tid, None if healthy else "gradient_explosion", None if healthy else 5, True, healthy,
                       reports=reports, actions=actions or [], usable=usable, usable_unscheduled=usable_unscheduled,
                       usable_without_fault=True, last_reported=last, clean_loss=clean)


def test_user_metrics_on_hand_built_records() -> None:
    rec = RunRecord("x", 0, compute=100, compute_to_first_usable=30, best_reachable=2.0)
    for t in (
        _tr("ok", 40, True, True, last=2.3, clean=2.25),                         # healthy, usable
        _tr("pruned", 5, False, True, actions=[(5, "prune")], last=4.0, clean=4.1),   # ASHA's normal work
        _tr("mutated", 20, True, True, actions=[(10, "mutate")], last=2.2, clean=2.4),  # intervention on a healthy trial
        _tr("sick", 35, False, False, healthy=False, last=math.nan),             # diverged faulty trial
    ):
        rec.trials[t.trial_id] = t
    m = user_metrics([rec])
    assert m["compute_lost_share"] == pytest.approx(40 / 100)
    assert m["usable_models"] == 2 and m["usable_per_100_reports"] == pytest.approx(2.0)
    assert m["faulty_usable"]["usable"] == 0 and m["faulty_usable"]["faulty"] == 1
    assert m["healthy_interventions"] == 1 and m["healthy_pruned"] == 1 and m["healthy_interventions_trials"] == 1
    assert m["compute_to_first_usable"] == 30
    assert m["compute_lost_split"]["faulty"] == pytest.approx(0.35)
    # the handed model is the lowest LAST REPORTED loss ("mutated", 2.2), judged on its clean loss 2.4
    assert rec.handed is rec.trials["mutated"] and m["regret"] == pytest.approx(0.4)


SCENARIO = Path(__file__).resolve().parent.parent / "benchmarks" / "scenarios" / "default.yaml"
PROBES = [dict(BASE, learning_rate=BASE["learning_rate"] * f) for f in (1.0, 0.6, 0.45, 0.3, 0.15)] + [
    dict(BASE, guided_attention_weight=g) for g in (1.3, 1.8, 2.6)] + [
    dict(BASE, gate_loss_weight=g) for g in (1.3, 2.0, 3.0)] + [dict(BASE, dropout=0.3), dict(BASE, batch_size=8)]


def _cures(sc) -> list:  # noqa: ANN001
    out = []
    for spec in population(sc, 2000):
        if spec.fault is not None:
            probes = [{**spec.config, **{k: v for k, v in p.items() if k != "learning_rate"},
                       "learning_rate": spec.config["learning_rate"] * p["learning_rate"] / BASE["learning_rate"]} for p in PROBES]
            out.append((spec.trial_id, dict(spec.fault.cure), [spec.fault.cured(p) for p in probes]))
    return out


def test_cures_do_not_depend_on_the_schedulers_adjustment_regions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tuner.core.config as tc

    sc = load_scenario(SCENARIO)
    from dataclasses import replace

    small = replace(sc, trials=40, seeds=(2000,), budget=160, max_reports=16)
    before, smart_before = _cures(sc), run_population(small, 2000, "smart").log
    cfg = yaml.safe_load(tc.DEFAULTS_PATH.read_text())
    actions = cfg["training_recovery"]["actions"]
    actions["gradient_explosion"]["learning_rate"]["scale"] = [0.55, 0.6]
    actions["attention_collapse"]["guided_attention_weight"]["scale"] = [1.05, 1.1]
    actions["gate_collapse"]["gate_loss_weight"]["scale"] = [1.05, 1.1]
    moved = tmp_path / "config.yaml"
    moved.write_text(yaml.safe_dump(cfg))
    monkeypatch.setattr(tc, "DEFAULTS_PATH", moved)
    after, smart_after = _cures(sc), run_population(small, 2000, "smart").log
    assert any(any(c) and not all(c) for _, _, c in before)   # the probes separate cured from not cured
    assert after == before
    assert smart_after != smart_before   # ... while the scheduler really ran with the moved regions
