"""TrainSettings.from_config: defaults, type/range checks with one-line messages, paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuner.training.settings import DEFAULTS, TrainConfigError, TrainSettings


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    (tmp_path / "metadata.csv").write_text("a|b|b\n")
    return tmp_path


@pytest.mark.parametrize("key, value", [
    ("learning_rate", 0.0), ("learning_rate", float("nan")), ("learning_rate", "1e-3"), ("batch_size", 2.5),
    ("batch_size", True), ("dropout", 0.95), ("gate_threshold", 0.0), ("gate_threshold", 1.0), ("weight_decay", -1e-6),
    ("val_fraction", 0.6), ("device", "tpu"), ("lr_schedule", "step"), ("reset_attention", "yes"),
    ("num_threads", 0), ("model", [1]), ("inject", "nan_at_step"), ("_restart_generation", -1),
])
def test_bad_value_names_key_and_value(dataset: Path, key: str, value: Any) -> None:
    with pytest.raises(TrainConfigError) as info:
        TrainSettings.from_config({"data_dir": str(dataset), key: value})
    message = str(info.value)
    assert key.split(".")[0] in message and repr(value)[:6] in message and "\n" not in message


@pytest.mark.parametrize("config, field, expected", [
    ({}, "learning_rate", DEFAULTS["learning_rate"]),
    ({"batch_size": 8.0}, "batch_size", 8),
    ({"no_such_key": 1}, "batch_size", DEFAULTS["batch_size"]),  # unknown keys are ignored
    ({"_restart_generation": 2}, "restart_generation", 2),
    ({"inject": {"nan_at_step": 30}}, "inject", {"nan_at_step": 30.0}),
    ({"inject": {"lr_spike_at_step": 151, "lr_spike_steps": 50, "lr_spike_factor": 20}}, "inject",
     {"lr_spike_at_step": 151.0, "lr_spike_steps": 50.0, "lr_spike_factor": 20.0}),
])
def test_values(dataset: Path, config: dict[str, Any], field: str, expected: Any) -> None:
    assert getattr(TrainSettings.from_config({"data_dir": str(dataset), **config}), field) == expected


@pytest.mark.parametrize("inject, name", [({"lr_spike_steps": 0}, "inject.lr_spike_steps"),
                                          ({"lr_spike_factor": 0.0}, "inject.lr_spike_factor")])
def test_bad_lr_spike_names_its_inject_key(dataset: Path, inject: dict[str, Any], name: str) -> None:
    with pytest.raises(TrainConfigError, match=name.replace(".", r"\.")) as info:
        TrainSettings.from_config({"data_dir": str(dataset), "inject": inject})
    assert "\n" not in str(info.value)


def test_relative_paths_resolve_against_base_dir(dataset: Path) -> None:
    settings = TrainSettings.from_config({"data_dir": dataset.name, "cache_dir": "c"}, base_dir=dataset.parent)
    assert settings.data_dir == dataset and settings.cache_dir == dataset.parent / "c"


def test_missing_dataset_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match="smart-tuner corpus DIR"):
        TrainSettings.from_config({"data_dir": str(tmp_path)})
