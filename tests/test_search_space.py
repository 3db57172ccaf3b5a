"""Tests for tuner/raytune/search_space.py: valid files and each bad input -> a one-line message."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.raytune.search_space import SearchSpaceError, load_search_space, parse_search_space

REPO = Path(__file__).resolve().parents[1]

VALID = """
metric: validation.loss
mode: min
num_samples: 4
max_concurrent: 2
scheduler: asha
resources: {cpu: 1, gpu: 0.5}
config:
  preset: tiny
  data_dir: data/corpus
  model: {attention_dim: 32}
search:
  learning_rate: {loguniform: [3e-4, 3.0e-2]}
  dropout: {uniform: [0.1, 0.5]}
  batch_size: {choice: [8, 16]}
  seed: {randint: [0, 100]}
  model.prenet_dim: {choice: [32, 64]}
smart_tuner:
  training_recovery: {min_training_time: 30}
"""


def test_valid_file_parses_to_param_space(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(VALID)
    space = load_search_space(f)
    assert (space.num_samples, space.max_concurrent, space.scheduler) == (4, 2, "asha")
    assert (space.cpus_per_trial, space.gpus_per_trial) == (1.0, 0.5)
    assert Path(space.config["data_dir"]).is_absolute()
    assert space.smart_tuner == {"training_recovery": {"min_training_time": 30}}
    ps = space.param_space()
    assert ps["preset"] == "tiny"
    assert ps["model"]["attention_dim"] == 32
    assert type(ps["learning_rate"]).__name__ == "Float"
    assert (ps["learning_rate"].lower, ps["learning_rate"].upper) == (3e-4, 3e-2)
    assert type(ps["batch_size"]).__name__ == "Categorical"
    assert type(ps["seed"]).__name__ == "Integer"
    assert type(ps["model"]["prenet_dim"]).__name__ == "Categorical"


def test_defaults_for_minimal_file() -> None:
    space = parse_search_space({"search": {"learning_rate": {"loguniform": [1e-4, 1e-2]}}})
    assert (space.metric, space.mode, space.scheduler, space.num_samples) == (
        "validation.loss", "min", "smart", 8)


@pytest.mark.parametrize("name", ["quickstart.yaml", "tacotron2.yaml"])
def test_shipped_search_spaces_parse(name: str) -> None:
    space = load_search_space(REPO / "search_spaces" / name)
    assert space.search, "a shipped search space searches something"
    assert space.param_space()


@pytest.mark.parametrize(
    "data, expected",
    [
        ([1, 2], "top level must be a mapping"),
        ({"serach": {}}, "unknown key 'serach'; did you mean 'search'"),
        ({"mode": "minimize"}, "mode = 'minimize' is invalid; use min or max"),
        ({"num_samples": 0}, "num_samples = 0 is invalid"),
        ({"num_samples": 2.5}, "num_samples = 2.5 is invalid"),
        ({"max_concurrent": -1}, "max_concurrent = -1 is invalid"),
        ({"scheduler": "hyperband"}, "scheduler = 'hyperband' is invalid; use one of smart, fifo, asha, pbt"),
        ({"resources": {"cpu": 0}}, "resources.cpu = 0 is invalid; use a number > 0"),
        ({"resources": {"gpu": -1}}, "resources.gpu = -1 is invalid"),
        ({"resources": {"tpu": 1}}, "resources.tpu = 1 is invalid; only cpu and gpu"),
        ({"search": {"lr": {"logunifrom": [1, 2]}}}, "unknown search type; did you mean 'loguniform'? use one of"),
        ({"search": {"lr": {"grid": [1, 2]}}}, "unknown search type; use one of loguniform"),
        ({"search": {"lr": [1, 2]}}, "search.lr = [1, 2] is invalid; write exactly one"),
        ({"search": {"lr": {"uniform": [1]}}}, "give two bounds"),
        ({"search": {"lr": {"uniform": [-0.1, 0.5]}}}, "negative bound"),
        ({"search": {"lr": {"loguniform": [0, 0.5]}}}, "low must be > 0 on a log scale"),
        ({"search": {"lr": {"uniform": [0.5, 0.1]}}}, "low must be < high"),
        ({"search": {"lr": {"uniform": ["a", 0.1]}}}, "bounds must be numbers"),
        ({"search": {"seed": {"randint": [0.5, 3]}}}, "bounds must be whole numbers"),
        ({"search": {"bs": {"choice": []}}}, "give a non-empty list"),
        ({"config": {"dropout": 0.1}, "search": {"dropout": {"uniform": [0.1, 0.2]}}},
         "also fixed under config"),
        ({"build_corpus": "yes"}, "build_corpus = 'yes' is invalid; use true or false"),
        ({"smart_tuner": [1]}, "smart_tuner = [1] is invalid"),
    ],
)
def test_bad_input_message(data: object, expected: str) -> None:
    with pytest.raises(SearchSpaceError) as info:
        parse_search_space(data, "space.yaml")
    message = str(info.value)
    assert expected in message
    assert message.startswith("space.yaml")
    assert "\n" not in message


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, "not found; pass an existing YAML file"),
        ("search: {lr: [1, 2\n", "invalid YAML at line"),
    ],
)
def test_bad_file(tmp_path: Path, text: str | None, expected: str) -> None:
    f = tmp_path / "bad.yaml"
    if text is not None:
        f.write_text(text)
    with pytest.raises(SearchSpaceError, match=expected) as info:
        load_search_space(f)
    assert "\n" not in str(info.value)
