"""One real Ray Tune run of train_tts (tiny preset made smaller, 3 validations, 1 CPU per trial)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ray import tune  # noqa: E402

from tuner.trainable import train_tts  # noqa: E402
from tuner.training.checkpoint import load_checkpoint  # noqa: E402

pytestmark = pytest.mark.ray

CONTRACT = ("training.loss", "validation.loss", "grad.norm", "validation.attention_score",
            "validation.gate_accuracy", "overfitting.gap", "validation.step")
EXTRA = ("grad.norm_mean", "training.loss_mel", "training.loss_gate", "training.loss_guided_attention",
         "validation.loss_mel", "validation.early_stop_fraction", "learning_rate", "nan_skips",
         "restored_from_nan", "training.step")


@pytest.fixture
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_train_tts_on_ray_tune_reports_every_metric(corpus_dir: Path, tmp_path: Path, local_ray: None) -> None:
    config = {
        "data_dir": str(corpus_dir), "cache_dir": str(tmp_path / "cache"), "preset": "tiny",
        "model": {"decoder_rnn_dim": 64, "attention_rnn_dim": 64, "postnet_embedding_dim": 32, "prenet_dim": 32},
        "batch_size": 4, "max_steps": 6, "validation_interval": 2,  # threads: the trial's 1 CPU
        "learning_rate": tune.grid_search([1e-3]),
    }
    tuner = tune.Tuner(
        tune.with_resources(train_tts, {"cpu": 1}),
        param_space=config,
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="trainable", verbose=0),
    )
    results = tuner.fit()
    assert not results.errors, results.errors
    result = results[0]
    history = result.metrics_dataframe
    assert list(history["validation.step"]) == [1.0, 2.0, 3.0]
    for name in CONTRACT + EXTRA:
        assert all(isinstance(v, float) and math.isfinite(v) for v in history[name]), (name, list(history[name]))
    assert list(history["num_threads"]) == [1.0, 1.0, 1.0]
    state = load_checkpoint(result.checkpoint.path)  # weights_only=True
    assert (state["step"], state["validation_step"]) == (6, 3)
    assert list(Path(result.path, "tensorboard").glob("events.out.tfevents.*"))
