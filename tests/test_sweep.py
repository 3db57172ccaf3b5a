"""Tests for tuner/raytune/sweep.py: storage, config merge order, schedulers, dataset checks, settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

from tuner.raytune.search_space import parse_search_space
from tuner.raytune.sweep import (SweepError, SweepSettings, attach_listener, ensure_dataset, make_scheduler,
                         resolve_storage, smart_config)

SPACE = parse_search_space({
    "config": {"max_steps": 400, "validation_interval": 25},
    "search": {"learning_rate": {"loguniform": [1e-4, 1e-2]}, "model.prenet_dim": {"choice": [8]}},
    "smart_tuner": {"training_recovery": {"min_training_time": 30, "min_validation_steps": 2}},
}, "space.yaml")


@pytest.mark.parametrize(
    "storage, expected",
    [
        (None, str(Path("runs").resolve())),
        ("s3://bucket/runs", "s3://bucket/runs"),
        ("rel/dir", str(Path("rel/dir").resolve())),
    ],
)
def test_resolve_storage(storage: str | None, expected: str) -> None:
    assert resolve_storage(storage) == expected


@pytest.mark.parametrize(
    "user_file, expected_time, expected_steps",
    [
        (None, 30.0, 2),  # the search space section over the defaults
        ("training_recovery: {min_training_time: 5}\n", 5.0, 2),  # --config over the section
    ],
)
def test_smart_config_merge_order(tmp_path: Path, user_file: str | None, expected_time: float,
                                  expected_steps: int) -> None:
    path = None
    if user_file is not None:
        path = tmp_path / "cfg.yaml"
        path.write_text(user_file)
    cfg, overrides = smart_config(SPACE.smart_tuner, None if path is None else str(path))
    assert cfg.training_recovery.min_training_time == expected_time
    assert cfg.training_recovery.min_validation_steps == expected_steps
    assert overrides["training_recovery"]["min_validation_steps"] == 2


@pytest.mark.parametrize(
    "kind, cls",
    [("fifo", FIFOScheduler), ("asha", ASHAScheduler), ("pbt", PopulationBasedTraining)],
)
def test_ray_schedulers_for_comparison(kind: str, cls: type) -> None:
    from tuner.core.config import load_config

    scheduler = make_scheduler(kind, load_config(), SPACE)
    assert isinstance(scheduler, cls)
    if kind == "asha":
        assert scheduler._max_t == 16  # 400 steps / 25 per validation
    if kind == "pbt":
        assert set(scheduler._hyperparam_mutations) == {"learning_rate"}  # dotted names left out


def test_smart_scheduler_takes_the_listener() -> None:
    from tuner.core.config import load_config

    scheduler = make_scheduler("smart", load_config(), SPACE)
    seen: list = []
    assert attach_listener(scheduler, seen.append)
    assert not attach_listener(FIFOScheduler(), seen.append)


def test_unknown_scheduler() -> None:
    from tuner.core.config import load_config

    with pytest.raises(SweepError, match="--scheduler 'hyperband' is unknown"):
        make_scheduler("hyperband", load_config(), SPACE)


def test_dataset_without_metadata_is_refused(tmp_path: Path) -> None:
    space = parse_search_space({"config": {"data_dir": str(tmp_path / "nothing")}}, "s.yaml")
    with pytest.raises(SweepError, match="holds no metadata.csv; point it at an LJSpeech-layout"):
        ensure_dataset(space)


def test_existing_dataset_gets_absolute_path(corpus_dir: Path, tmp_path: Path) -> None:
    space = parse_search_space({"config": {"data_dir": str(corpus_dir),
                                           "cache_dir": str(tmp_path / "cache")}}, "s.yaml")
    config = ensure_dataset(space)
    assert config["data_dir"] == str(corpus_dir.resolve())
    assert list((tmp_path / "cache").glob("features-*.pt"))


def test_settings_round_trip(tmp_path: Path) -> None:
    settings = SweepSettings("s.yaml", str(tmp_path), "exp", 2, 1, 1.0, 0.0, "smart",
                             "validation.loss", "min", "sqlite:///x.db")
    settings.experiment_dir.mkdir()
    settings.save()
    assert SweepSettings.load(tmp_path / "exp") == settings
    with pytest.raises(SweepError, match="was not started by `smart-tuner tune`"):
        SweepSettings.load(tmp_path)


@pytest.mark.parametrize("url, expected", [
    ("not a url", "optuna.storage 'not a url' cannot be opened (Could not parse SQLAlchemy URL"),
    ("nosuchdb://x/y", "cannot be opened (Can't load plugin: sqlalchemy.dialects:nosuchdb)"),
    ("postgresql://nobody@127.0.0.1:1/x", "optuna.storage 'postgresql://nobody@127.0.0.1:1/x' "
                                          "cannot be opened ("),  # refused, or no driver
    ("sqlite:///{tmp}/a_file/recovery.db", "a_file is a file, not a folder"),
])
def test_bad_optuna_storage_is_one_line(tmp_path: Path, url: str, expected: str) -> None:
    from tuner.errors import UserError
    from tuner.raytune.sweep import check_optuna_storage

    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError) as info:
        check_optuna_storage(url.format(tmp=tmp_path))
    assert expected in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("url", [None, "sqlite:///:memory:", "sqlite:///{tmp}/new/recovery.db"])
def test_good_optuna_storage_is_accepted_and_nothing_is_created(tmp_path: Path,
                                                                url: str | None) -> None:
    from tuner.raytune.sweep import check_optuna_storage

    check_optuna_storage(url if url is None else url.format(tmp=tmp_path))
    assert list(tmp_path.iterdir()) == []
