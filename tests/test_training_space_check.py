"""tuner/training/space_check.py: search-space keys and ranges against train_tts's own limits."""

from __future__ import annotations

from typing import Any

import pytest

from tuner.training.settings import TrainConfigError
from tuner.training.space_check import check_fixed, check_searched


@pytest.mark.parametrize("config", [
    {}, {"preset": "tiny", "max_steps": 10, "dropout": 0.9, "data_dir": "/x", "cache_dir": None},
    {"model": {"decoder_rnn_dim": 64}, "inject": {"nan_at_step": 3}, "num_threads": None},
])
def test_fixed_config_accepted(config: dict[str, Any]) -> None:
    check_fixed(config)


@pytest.mark.parametrize("config, expected", [
    ({"max_step": 200}, "config.max_step: unknown train_tts config key 'max_step'; did you mean "
                        "'max_steps'?"),
    ({"zzz": 1}, "config.zzz: unknown train_tts config key 'zzz'; known: amp, batch_size"),
    ({"dropout": 1.5}, "'dropout' must be a number in [0, 0.9], got 1.5"),
    ({"data_dir": 3}, "'data_dir' must be a folder path, got 3"),
    ({"model": {"decoder_rnn_dm": 64}}, "config.model.decoder_rnn_dm: unknown Tacotron2Config "
                                        "field 'decoder_rnn_dm'; did you mean 'decoder_rnn_dim'?"),
    ({"model": {"prenet_dim": 0}}, "config.model: Tacotron2Config.prenet_dim must be >= 1, got 0"),
    ({"inject": {"nan_at_stp": 1}}, "'inject' must be a mapping with keys"),
])
def test_fixed_config_refused(config: dict[str, Any], expected: str) -> None:
    with pytest.raises(TrainConfigError) as info:
        check_fixed(config)
    assert expected in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name, kind, args", [
    ("learning_rate", "loguniform", (1e-4, 1e-2)),
    ("dropout", "uniform", (0.0, 0.9)),
    ("batch_size", "randint", (1, 33)),
    ("batch_size", "choice", (8, 16)),
    ("lr_schedule", "choice", ("cosine", "constant")),
    ("seed", "randint", (0, 1000)),
    ("model.dropout", "uniform", (0.1, 0.5)),
    ("model.decoder_rnn_dim", "choice", (64, 128)),
    ("inject.explode_factor", "uniform", (1.5, 3.0)),
])
def test_search_accepted(name: str, kind: str, args: tuple[Any, ...]) -> None:
    check_searched(name, kind, args, {"preset": "tiny"})


@pytest.mark.parametrize("name, kind, args, expected", [
    ("lerning_rate", "loguniform", (1e-4, 1e-2),
     "search.lerning_rate: unknown train_tts config key 'lerning_rate'; did you mean "
     "'learning_rate'?"),
    ("dropout", "uniform", (0.5, 1.5), "search.dropout.uniform = [0.5, 1.5] reaches 1.5, outside "
                                        "what train_tts allows: must be a number in [0, 0.9]"),
    ("gate_threshold", "uniform", (0.0, 0.5), "reaches 0.0"),
    ("batch_size", "randint", (0, 32), "reaches 0, outside what train_tts allows: must be an "
                                       "integer >= 1"),
    ("batch_size", "uniform", (8, 32), "batch_size is an integer; search it with randint or choice"),
    ("lr_schedule", "uniform", (0, 1), "lr_schedule is not a number; search it with choice"),
    ("lr_schedule", "choice", ("cosine", "step"), "must be one of 'exponential', 'cosine', "
                                                  "'constant', got 'step'"),
    ("dropout.x", "uniform", (0.1, 0.2), "train_tts key 'dropout' has no sub-keys"),
    ("optim.lr", "uniform", (0.1, 0.2), "search.optim.lr: unknown train_tts config key"),
    ("model.decoder_rnn_dm", "choice", (64,), "did you mean 'decoder_rnn_dim'?"),
    ("model.prenet_dim", "randint", (0, 64), "search.model.prenet_dim.randint = [0, 64] reaches 0"),
    ("model.prenet_dim", "uniform", (16, 64), "prenet_dim is an integer"),
    ("inject.nan_at_stp", "randint", (1, 5), "unknown inject key 'nan_at_stp'; did you mean "
                                             "'nan_at_step'?"),
])
def test_search_refused(name: str, kind: str, args: tuple[Any, ...], expected: str) -> None:
    with pytest.raises(TrainConfigError) as info:
        check_searched(name, kind, args, {"preset": "tiny"})
    assert expected in str(info.value) and "\n" not in str(info.value)
