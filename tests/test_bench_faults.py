"""benchmarks/faults.py: each fault's signature while active, and its cure condition (tables)."""

from __future__ import annotations

import math

import pytest

from benchmarks.faults import FAULT_KINDS, Fault
from benchmarks.surrogate import SurrogateTrial

BASE = {"learning_rate": 2e-3, "batch_size": 16, "dropout": 0.1, "weight_decay": 1e-6,
        "guided_attention_weight": 1.0, "gate_loss_weight": 1.0, "gate_pos_weight": 5.0}


# Hand-built faults take the middle of each default cure range (faults.CURE_RANGES): explosion
# lr <= 0.45x; overfitting dropout +0.125, weight decay x16.5 or lr <= 0.55x; stagnation another
# batch size or lr moved by x2.25; attention guided attention x1.85; gate loss weight x1.85 or
# positive weight x1.55. Flags only Smart Tuner sets (lr_restart, reset_attention) cure nothing.
@pytest.mark.parametrize(
    "kind, change, cured",
    [
        ("gradient_explosion", {}, False),
        ("gradient_explosion", {"learning_rate": 1e-3}, False),         # halved: above this trial's limit
        ("gradient_explosion", {"learning_rate": 0.9e-3}, True),        # exactly 0.45x
        ("gradient_explosion", {"learning_rate": 5e-4}, True),
        ("overfitting", {}, False),
        ("overfitting", {"dropout": 0.2}, False),                       # +0.1 < +0.125
        ("overfitting", {"dropout": 0.25}, True),
        ("overfitting", {"weight_decay": 1e-5}, False),                 # x10 < x16.5
        ("overfitting", {"weight_decay": 2e-5}, True),
        ("overfitting", {"learning_rate": 1e-3}, True),
        ("stagnation", {}, False),
        ("stagnation", {"lr_restart": True}, False),                    # a flag alone cures nothing
        ("stagnation", {"batch_size": 8}, True),
        ("stagnation", {"learning_rate": 5e-3}, True),                  # x2.5 >= x2.25
        ("stagnation", {"learning_rate": 3e-3}, False),
        ("attention_collapse", {}, False),
        ("attention_collapse", {"guided_attention_weight": 1.5}, False),
        ("attention_collapse", {"guided_attention_weight": 2.0}, True),
        ("attention_collapse", {"reset_attention": True}, False),       # a flag alone cures nothing
        ("gate_collapse", {}, False),
        ("gate_collapse", {"gate_loss_weight": 1.5}, False),
        ("gate_collapse", {"gate_loss_weight": 2.0}, True),
        ("gate_collapse", {"gate_pos_weight": 8.0}, True),
        ("gate_collapse", {"gate_threshold": 0.6}, False),
        ("corrupt_data", {}, False),
        ("corrupt_data", {"learning_rate": 1e-5, "dropout": 0.5, "batch_size": 8, "lr_restart": True,
                          "reset_attention": True, "gate_loss_weight": 3.0}, False),
    ],
)
def test_cure_condition(kind: str, change: dict, cured: bool) -> None:
    fault = Fault(kind, 5, BASE)
    assert fault.cured({**BASE, **change}) is cured
    own = Fault(kind, 5, BASE, cure={k: v * 0.5 if k != "batch_size_changed" else v for k, v in fault.cure.items()})
    if kind in ("gradient_explosion", "attention_collapse") and change:   # a trial with other thresholds
        assert own.cured({**BASE, **change}) is (change.get("learning_rate", 1.0) <= 0.225 * BASE["learning_rate"]
                                                  if kind == "gradient_explosion" else True)
    assert fault.recoverable is (kind != "corrupt_data")


def _run(fault: Fault, reports: int, config: dict | None = None) -> list[dict[str, float]]:
    sim = SurrogateTrial(3, fault)
    return [sim.step(config or BASE) for _ in range(reports)]


@pytest.mark.parametrize(
    "kind, check",
    [
        ("gradient_explosion", lambda before, at, after: at["grad.norm"] > 1e3 and math.isnan(after["validation.loss"])
         and math.isnan(after["grad.norm"])),
        ("overfitting", lambda before, at, after: after["validation.loss"] > before["validation.loss"]
         and after["overfitting.gap"] > before["overfitting.gap"] and after["training.loss"] < before["training.loss"]),
        ("stagnation", lambda before, at, after: at["validation.loss"] == after["validation.loss"]
         and at["training.loss"] == after["training.loss"]),
        ("attention_collapse", lambda before, at, after: after["validation.attention_score"] < 0.05),
        ("gate_collapse", lambda before, at, after: after["validation.gate_accuracy"] < 0.1
         and after["validation.early_stop_fraction"] > 0.5),
        ("corrupt_data", lambda before, at, after: after["grad.norm"] > 100 * before["grad.norm"]),
    ],
)
def test_fault_signature(kind: str, check) -> None:
    onset = 10
    reports = _run(Fault(kind, onset, BASE), onset + 4)
    before, at, after = reports[onset - 2], reports[onset - 1], reports[onset + 3]
    assert all(math.isfinite(r["validation.loss"]) for r in reports[: onset - 1])
    assert check(before, at, after)


@pytest.mark.parametrize("kind", [k for k in FAULT_KINDS if k != "corrupt_data"])
def test_rollback_with_cure_continues_healthy(kind: str) -> None:
    cure = {"gradient_explosion": {"learning_rate": 0.8e-3}, "overfitting": {"dropout": 0.25},
            "stagnation": {"batch_size": 8}, "attention_collapse": {"guided_attention_weight": 2.0},
            "gate_collapse": {"gate_loss_weight": 2.0}}[kind]
    onset = 8
    faulty = SurrogateTrial(5, Fault(kind, onset, BASE))
    for _ in range(onset - 1):
        faulty.step(BASE)
    ckpt = faulty.checkpoint()
    for _ in range(5):
        faulty.step(BASE)
    faulty.restore(ckpt, {**BASE, **cure})
    healthy = SurrogateTrial(5, None)
    for _ in range(onset - 1):
        healthy.step(BASE)
    healthy.restore(healthy.checkpoint(), {**BASE, **cure})
    got = [faulty.step({**BASE, **cure}) for _ in range(10)]
    want = [healthy.step({**BASE, **cure}) for _ in range(10)]
    assert got == want


def test_corrupt_data_diverges_whatever_is_changed() -> None:
    sim = SurrogateTrial(1, Fault("corrupt_data", 4, BASE))
    for _ in range(3):
        sim.step(BASE)
    ckpt = sim.checkpoint()
    for config in ({**BASE, "learning_rate": 1e-5}, {**BASE, "dropout": 0.5, "batch_size": 8, "lr_restart": True}):
        sim.restore(ckpt, config)
        last = [sim.step(config) for _ in range(8)][-1]
        assert math.isnan(last["validation.loss"])


@pytest.mark.parametrize(
    "kind, onset, message",
    [("melting", 3, "fault kind 'melting' is unknown"), ("stagnation", 0, "onset must be a report index >= 1")],
)
def test_bad_fault(kind: str, onset: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault(kind, onset, BASE)
