"""BatchNorm statistics are re-estimated before validation (refresh_batchnorm), and the
mixed-precision path (bf16 / fp16 with GradScaler) runs on CPU, reporting the contract metrics."""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import torch

from model.data import FeatureSet, make_loader
from model.loss import Tacotron2Loss
from model.tacotron2 import Tacotron2, Tacotron2Config
from tuner.trainable import LocalSession, run_training
from tuner.training.evaluate import refresh_batchnorm, validate

from tests.test_trainable import SMALL_MODEL


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def _model(features: FeatureSet) -> Tacotron2:
    torch.manual_seed(0)
    cfg = Tacotron2Config.preset("tiny", n_symbols=len(features.symbols), n_mels=features.audio.n_mels,
                                 **SMALL_MODEL)
    return Tacotron2(cfg)


def _norms(model: torch.nn.Module) -> list[torch.nn.BatchNorm1d]:
    return [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]


def test_refresh_replaces_stale_statistics_and_touches_nothing_else(features: FeatureSet) -> None:
    model = _model(features)
    train = list(make_loader(features, list(range(12)), 4, model.cfg.n_frames_per_step, shuffle=False))
    val = list(make_loader(features, list(range(12, 24)), 4, model.cfg.n_frames_per_step, shuffle=False))
    loss = Tacotron2Loss()
    for m in _norms(model):  # statistics that lag far behind the weights
        m.running_mean.fill_(3.0)
        m.running_var.fill_(40.0)
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    model.train()
    stale, _ = validate(model, loss, val, torch.device("cpu"), nullcontext, 0.5)
    torch.manual_seed(1)  # the prenet's dropout stays on in eval mode (the loop seeds it the same way)
    assert refresh_batchnorm(model, train, torch.device("cpu"), nullcontext) == len(train)
    fresh, _ = validate(model, loss, val, torch.device("cpu"), nullcontext, 0.5)
    first = [(m.running_mean.clone(), m.running_var.clone()) for m in _norms(model)]
    # the statistics no longer depend on what they were: a second refresh from other stale values agrees
    for m in _norms(model):
        m.running_mean.fill_(-1.0)
    torch.manual_seed(1)
    refresh_batchnorm(model, train, torch.device("cpu"), nullcontext)
    for (mean, var), m in zip(first, _norms(model)):
        assert torch.allclose(mean, m.running_mean) and torch.allclose(var, m.running_var)
        assert m.momentum == 0.1  # restored
    assert fresh["validation.loss"] != stale["validation.loss"]  # validation reads the new statistics
    assert model.training  # mode restored
    for k, v in model.state_dict().items():
        if k in weights:
            assert torch.equal(v, weights[k]), k
    assert refresh_batchnorm(model, [], torch.device("cpu"), nullcontext) == 0


@pytest.fixture(scope="module")
def base(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return {
        "data_dir": str(corpus_dir), "cache_dir": str(tmp_path_factory.mktemp("cache")),
        "model": SMALL_MODEL, "batch_size": 3, "max_steps": 4, "validation_interval": 2,
        "num_threads": 1, "tensorboard": False, "warmup_steps": 2, "lr_schedule": "constant", "seed": 7,
    }


def test_refresh_changes_validation_only(base: dict[str, Any], tmp_path: Path) -> None:
    """Training is untouched by the refresh (same losses and norms); only validation reads it."""
    runs = [LocalSession(tmp_path / str(n)) for n in (0, 12)]
    for n, session in zip((0, 12), runs):
        run_training({**base, "batchnorm_refresh": n}, session)
    off, on = (s.reports for s in runs)
    for a, b in zip(off, on):
        assert (a["training.loss"], a["grad.norm"]) == (b["training.loss"], b["grad.norm"])
    assert [a["validation.loss"] for a in off] != [b["validation.loss"] for b in on]


CONTRACT = ("training.loss", "validation.loss", "grad.norm", "validation.attention_score",
            "validation.gate_accuracy", "overfitting.gap", "validation.step", "training.skipped_steps")


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_on_cpu_reports_the_contract(base: dict[str, Any], tmp_path: Path, amp: str) -> None:
    trainer, session = None, LocalSession(tmp_path)
    trainer = run_training({**base, "amp": amp, "device": "cpu"}, session)
    assert trainer.amp == amp
    assert trainer.scaler.is_enabled() == (amp == "fp16")
    for report in session.reports:
        assert all(isinstance(report[k], float) for k in CONTRACT)
        assert math.isfinite(report["validation.loss"]) and math.isfinite(report["training.loss"])
    if amp == "fp16":
        # GradScaler starts at 2**16: its routine overflows are skipped steps it answers by lowering
        # the scale, counted apart so that the explosion rule does not read them as an explosion
        overflows = sum(r["training.overflow_steps"] for r in session.reports)
        assert overflows == sum(r["training.skipped_steps"] for r in session.reports)
        assert trainer.scaler.get_scale() == 2.0 ** 16 * 0.5 ** overflows
    else:
        assert all(r["training.skipped_steps"] == 0 for r in session.reports)


def test_amp_auto_is_full_precision_on_cpu(base: dict[str, Any], tmp_path: Path) -> None:
    trainer = run_training({**base, "max_steps": 2, "device": "cpu"}, LocalSession(tmp_path))
    assert trainer.amp == "none"
