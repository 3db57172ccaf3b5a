"""benchmarks/probes/record_real.py: the calibration fits recover known constants from synthetic runs."""

from __future__ import annotations

import json
import math
import random
from dataclasses import fields
from pathlib import Path

import pytest

from benchmarks.probes.record_real import BANK_KEYS, LOSS_KEYS, SKIP_STEPS, _logit_fit, fit, fit_decay, fit_with_bank


@pytest.mark.parametrize("floor, rates", [(2.0, [0.005, 0.01]), (0.5, [0.004]), (3.0, [0.004, 0.004, 0.008])])
def test_joint_decay_fit_recovers_floor_and_rates(floor: float, rates: list[float]) -> None:
    runs = [[(s, floor + 7.0 * math.exp(-r * s)) for s in range(0, 1000, 50)] for r in rates]
    got_floor, per_run = fit_decay(runs)
    assert got_floor == pytest.approx(floor, rel=0.03)
    for (rate, loss0, resid), want in zip(per_run, rates):
        assert rate == pytest.approx(want, rel=0.1) and loss0 == pytest.approx(floor + 7.0, rel=0.05)


@pytest.mark.parametrize("onset, width", [(3.0, 0.5), (5.0, 1.5)])
def test_logit_fit_recovers_sigmoid(onset: float, width: float) -> None:
    pts = [(p / 10, 0.01 + 0.84 / (1 + math.exp(-(p / 10 - onset) / width))) for p in range(0, 80)]
    got = _logit_fit(pts, 0.01, 0.85)
    assert got is not None and got[0] == pytest.approx(onset, rel=0.02) and got[1] == pytest.approx(width, rel=0.02)


def test_logit_fit_needs_points_off_the_floor() -> None:
    assert _logit_fit([(1.0, 0.0), (2.0, 0.0), (3.0, 0.0)], -1e-3, 0.95) is None


def _write_runs(tmp_path: Path, dropout: float) -> None:
    for tag, lr, rate in (("a", 1e-3, 0.004), ("b", 3e-3, 0.008)):
        reports = [{"training.step": s, "validation.loss": 2.0 + 8 * math.exp(-rate * (s - SKIP_STEPS)),
                    "grad.norm": 10.0 if s < 100 else 3.0, "overfitting.gap": 0.2,
                    "validation.attention_score": 0.01 + 0.001 * s, "validation.gate_accuracy": 0.0,
                    "validation.early_stop_fraction": 0.0} for s in range(20, 1001, 20)]
        config = {"learning_rate": lr, "dropout": dropout, "guided_attention_weight": 1.0}
        (tmp_path / f"real_{tag}.json").write_text(json.dumps({"tag": tag, "config": config, "reports": reports}))


def test_fit_from_recorded_files(tmp_path: Path) -> None:
    _write_runs(tmp_path, dropout=0.1)
    cal, info = fit(sorted(tmp_path.glob("real_*.json")))
    assert cal.floor == pytest.approx(2.0, rel=0.05)
    assert cal.lr_exponent == pytest.approx(math.log(2) / math.log(3), rel=0.1)
    assert cal.grad0 == pytest.approx(10.0) and cal.gate_min == 0.0
    assert len(info["runs"]) == 2 and "2 real tiny-Tacotron2 runs" in cal.source


@pytest.mark.parametrize("dropout, factor", [(0.1, 1.0), (0.5, 1.0 + 0.8 * 0.4 ** 2)])
def test_fitted_floor_is_mapped_to_the_optimum(tmp_path: Path, dropout: float, factor: float) -> None:
    # the runs' floor (2.0) is the surrogate's floor at their dropout: c.floor = 2.0 / penalty
    _write_runs(tmp_path, dropout=dropout)
    cal, _ = fit(sorted(tmp_path.glob("real_*.json")))
    assert cal.floor * factor == pytest.approx(2.0, rel=0.05)


def test_fit_without_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="run `record` first"):
        fit([])


def test_loss_decay_taken_from_the_loss_runs(tmp_path: Path) -> None:
    # short runs (attention/gate) + long runs (loss decay): LOSS_KEYS come from the long runs
    long_dir, short_dir = tmp_path / "long", tmp_path / "short"
    long_dir.mkdir()
    short_dir.mkdir()
    _write_runs(long_dir, dropout=0.1)
    for tag, lr in (("s1", 1e-3), ("s2", 4e-3)):
        reports = [{"training.step": s, "validation.loss": 5.0 + 20 * math.exp(-0.001 * s), "grad.norm": 4.0,
                    "overfitting.gap": 0.1, "validation.attention_score": 0.05 + 0.8 / (1 + math.exp(-(s - 200) / 40)),
                    "validation.gate_accuracy": 0.05 + 0.6 / (1 + math.exp(-(s - 250) / 40)),
                    "validation.early_stop_fraction": 0.0} for s in range(50, 701, 50)]
        (short_dir / f"real_{tag}.json").write_text(json.dumps({"tag": tag, "config": {"learning_rate": lr}, "reports": reports}))
    base, _ = fit(sorted(long_dir.glob("real_*.json")), fit_from=SKIP_STEPS)
    cal, info = fit(sorted(short_dir.glob("real_*.json")), sorted(long_dir.glob("real_*.json")))
    for key in LOSS_KEYS:
        assert getattr(cal, key) == getattr(base, key)
    assert cal.grad0 == pytest.approx(4.0) and 0.55 < cal.gate_max < 0.66
    assert any("not identified" in n for n in info["notes"])


@pytest.mark.parametrize("noise", [0.0, 0.01, 0.05])
def test_noise_is_the_report_to_report_scatter_not_the_curves_misfit(noise: float) -> None:
    # a run that falls in steps (not an exponential: the fit's residual is large) with independent
    # relative noise: the fitted noise is that noise (the 0.002 lower bound for a smooth curve)
    rng = random.Random(0)
    runs = []
    for tag, lr in (("a", 1e-3), ("b", 3e-3)):
        reports = []
        for s in range(50, 4001, 50):
            clean = 2.0 + 6.0 / (1 + math.exp((s - 500) / 60)) + 3.0 * math.exp(-s / 800)
            reports.append({"training.step": s, "validation.loss": clean * (1 + noise * rng.gauss(0, 1)),
                            "grad.norm": 3.0, "overfitting.gap": -0.1})
        runs.append({"tag": tag, "config": {"learning_rate": lr}, "reports": reports})
    cal, _ = fit(runs, plateau_from=1000)
    assert cal.noise == pytest.approx(max(noise, 0.002), rel=0.25, abs=0.001)
    assert cal.gap < 0   # validation below training (dropout on in training) is kept, not clipped to 0


def test_fit_with_bank_takes_only_the_bank_keys_from_the_bank(tmp_path: Path) -> None:
    # base runs (loss decay, onsets) + 2,000-step bank runs: BANK_KEYS from the bank, the rest as the base fit
    _write_runs(tmp_path, dropout=0.1)
    paths = sorted(tmp_path.glob("real_*.json"))
    rng = random.Random(1)
    runs = [{"tag": f"bank{i}", "config": {"learning_rate": 2e-3},
             "reports": [{"training.step": s, "validation.loss": (1.5 + 8 * math.exp(-s / 400)) * (1 + 0.01 * rng.gauss(0, 1)),
                          "overfitting.gap": -0.1, "grad.norm": 3.0, "validation.attention_score": 0.9,
                          "validation.gate_accuracy": 0.95 + 0.02 * rng.gauss(0, 1)} for s in range(50, 2001, 50)]}
             for i in range(2)]
    base, _ = fit(paths)
    cal, info = fit_with_bank(runs, paths, None)
    for key in {f.name for f in fields(cal)} - set(BANK_KEYS) - {"source"}:
        assert getattr(cal, key) == getattr(base, key), key
    assert cal.noise == pytest.approx(0.01, rel=0.3) and cal.gap < 0 and cal.attn_max == pytest.approx(0.9)
    assert cal.gate_max == pytest.approx(0.95, abs=0.01) and cal.gate_noise == pytest.approx(0.02, rel=0.3)
    assert "bank0, bank1" in cal.source and info["bank"]["runs"]
