"""benchmarks/surrogate.py: determinism, rollback/restore semantics, hyperparameter effects."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.faults import Fault
from benchmarks.surrogate import Calibration, SurrogateTrial, state_from_dict, state_to_dict

BASE = {"learning_rate": 1e-3, "batch_size": 16, "dropout": 0.1, "weight_decay": 1e-6,
        "guided_attention_weight": 1.0}
CONTRACT = ("training.loss", "validation.loss", "grad.norm", "validation.attention_score",
            "validation.gate_accuracy", "overfitting.gap", "validation.step", "validation.early_stop_fraction")


def _curve(sim: SurrogateTrial, config: dict, n: int) -> list[dict[str, float]]:
    return [sim.step(config) for _ in range(n)]


@pytest.mark.parametrize("seed, fault", [(0, None), (7, Fault("gradient_explosion", 6, BASE)), (3, Fault("overfitting", 4, BASE))])
def test_same_inputs_same_curve(seed: int, fault: Fault | None) -> None:
    # repr: NaN reports compare equal as text
    assert repr(_curve(SurrogateTrial(seed, fault), BASE, 12)) == repr(_curve(SurrogateTrial(seed, fault), BASE, 12))


def test_reports_contract_metrics_as_plain_floats() -> None:
    r = SurrogateTrial(0).step(BASE)
    assert set(CONTRACT) <= set(r)
    assert all(type(v) is float for v in r.values())
    assert r["overfitting.gap"] == pytest.approx(r["validation.loss"] - r["training.loss"])


def test_rollback_replays_exactly() -> None:
    sim = SurrogateTrial(4)
    _curve(sim, BASE, 5)
    ckpt = sim.checkpoint()
    first = _curve(sim, BASE, 6)
    sim.restore(ckpt, BASE)
    assert _curve(sim, BASE, 6) == first
    assert first[0]["validation.step"] == 6.0


@pytest.mark.parametrize(
    "change, metric, direction",
    [
        ({"learning_rate": 3e-3}, "validation.loss", -1),   # faster learning: lower loss at the same report
        ({"learning_rate": 3e-4}, "validation.loss", +1),
        ({"guided_attention_weight": 2.0}, "validation.attention_score", +1),   # earlier alignment
        ({"guided_attention_weight": 2.0}, "validation.gate_accuracy", +1),   # the gate rises with the attention
        ({"dropout": 0.5}, "validation.loss", +1),          # higher floor
    ],
)
def test_restore_under_changed_hyperparameters(change: dict, metric: str, direction: int) -> None:
    sim = SurrogateTrial(2)
    _curve(sim, BASE, 4)
    ckpt = sim.checkpoint()
    same = _curve(sim, BASE, 8)[-1][metric]
    sim.restore(ckpt, {**BASE, **change})
    changed = _curve(sim, {**BASE, **change}, 8)[-1][metric]
    assert (changed - same) * direction > 0


def test_restart_from_scratch_uses_the_generation() -> None:
    sim = SurrogateTrial(1)
    first = _curve(sim, BASE, 3)
    sim.restore(None, {**BASE, "_restart_generation": 1})
    again = _curve(sim, BASE, 3)
    assert again[0]["validation.step"] == 1.0
    assert again != first  # new noise draw (seed + generation), like train_tts


@pytest.mark.parametrize("n, lo, hi", [(1, 0.0, math.inf), (40, 0.0, math.inf)])
def test_healthy_curve_is_finite_and_learning(n: int, lo: float, hi: float) -> None:
    curve = _curve(SurrogateTrial(0), BASE, max(n, 2))
    assert all(lo < r["validation.loss"] < hi and math.isfinite(r["grad.norm"]) for r in curve)
    assert curve[-1]["validation.loss"] < curve[0]["validation.loss"]


def test_checkpoint_round_trips_through_json() -> None:
    sim = SurrogateTrial(0, Fault("overfitting", 2, BASE))
    _curve(sim, BASE, 5)
    d = json.loads(json.dumps(state_to_dict(sim.checkpoint())))
    assert state_from_dict(d) == sim.checkpoint()


@pytest.mark.parametrize("content, message", [('{"flor": 1.0}', "unknown calibration constants"), ("{}", None)])
def test_calibration_file(tmp_path, content: str, message: str | None) -> None:
    p = tmp_path / "c.json"
    p.write_text(content)
    if message:
        with pytest.raises(ValueError, match=message):
            Calibration.load(p)
    else:
        assert Calibration.load(p) == Calibration()


@pytest.mark.parametrize("reports, lo, hi", [(1, 0.0, 0.02), (40, 0.07, 0.13)])
def test_gate_scatter_grows_with_the_level(reports: int, lo: float, hi: float) -> None:
    # gate_noise is the scatter on the plateau (0.6); at the floor (0.05) it is 0.05 / 0.6 of it
    cal = Calibration(gate_min=0.05, gate_max=0.6, gate_onset=3.0, gate_width=0.3, gate_noise=0.1, rate=0.2)
    values = [_curve(SurrogateTrial(seed, None, cal), BASE, reports)[-1]["validation.gate_accuracy"] for seed in range(200)]
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    assert lo < std < hi
