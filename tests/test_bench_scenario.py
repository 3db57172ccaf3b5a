"""benchmarks/scenario.py: validation errors (table), population sampling and fault assignment."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from benchmarks.scenario import ScenarioError, load_scenario, population, trial_spec, trial_stream

DEFAULT = Path(__file__).resolve().parent.parent / "benchmarks" / "scenarios" / "default.yaml"


def _write(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(DEFAULT.read_text())
    for k, v in changes.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"trials": 0}, r"trials = 0 is invalid; use an integer >= 2"),
        ({"trials": None}, r"trials = None is invalid"),
        ({"target": -1}, r"target = -1 is invalid; use a validation.loss value > 0"),
        ({"seeds": []}, r"seeds = \[\] is invalid"),
        ({"schedulers": ["fifo", "hyperband"]}, r"schedulers = .* use a non-empty list from fifo"),
        ({"budgett": 3}, r"unknown fields = \['budgett'\]"),
        ({"search_space": {"dropout": {"uniform": [0, 1]}}}, r"including learning_rate"),
        ({"search_space": {"learning_rate": {"loguniform": [0, 1]}}}, r"search_space.learning_rate.loguniform"),
        ({"search_space": {"learning_rate": {"normal": [0, 1]}}}, r"search_space.learning_rate = "),
        ({"faults": {"meltdown": {"rate": 0.1, "onset": [1, 2]}}}, r"faults.meltdown = 'meltdown' is invalid"),
        ({"faults": {"stagnation": {"rate": 1.5, "onset": [1, 2]}}}, r"faults.stagnation.rate = 1.5"),
        ({"faults": {"stagnation": {"rate": 0.1, "onset": [5, 99]}}}, r"faults.stagnation.onset = \[5, 99\].*<= max_reports \(40\)"),
        ({"faults": {"stagnation": {"rate": 0.3, "onset": [1, 2]}, "overfitting": {"rate": 0.3, "onset": [1, 2]}}},
         r"keep at least half of the trials healthy"),
        ({"faults": {"stagnation": {"rate": 0.1, "onset": [1, 2], "select": "worst"}}}, r"faults.stagnation.select"),
        ({"faults": {"stagnation": {"rate": 0.1, "onset": [1, 2], "cure": {"lr_scale_max": [0.2, 0.5]}}}},
         r"faults.stagnation.cure = .* keys from \['batch_size_changed', 'lr_change'\]"),
        ({"faults": {"gradient_explosion": {"rate": 0.1, "onset": [1, 2], "cure": {"lr_scale_max": [0.5, 0.2]}}}},
         r"faults.gradient_explosion.cure = .* 0 < lo <= hi"),
    ],
)
def test_validation_errors(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(_write(tmp_path, **changes))
    assert "\n" not in str(err.value) and "s.yaml" in str(err.value)


@pytest.mark.parametrize("text, message", [(": : :\n  - [", "not valid YAML"), ("- 1\n- 2\n", "must be a mapping")])
def test_unreadable_files(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="scenario file not found"):
        load_scenario(tmp_path / "nope.yaml")


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_population_faults_and_determinism(seed: int) -> None:
    sc = load_scenario(DEFAULT)
    pop = population(sc, seed)
    assert pop == population(sc, seed)
    faulty = [t for t in pop if t.fault is not None]
    assert 0 < len(faulty) <= sc.trials * 0.6
    lo, hi = sc.search_space["learning_rate"]["loguniform"]
    edge = math.exp(math.log(hi) - 0.10 * (math.log(hi) - math.log(lo)))   # top 10% of the lr range explode
    for t in pop:
        explodes = t.fault is not None and t.fault.kind == "gradient_explosion"
        assert explodes is (t.config["learning_rate"] >= edge)
    for t in faulty:
        rule = next(r for r in sc.faults if r.kind == t.fault.kind)
        assert rule.onset[0] <= t.fault.onset <= rule.onset[1]
        for key, (a, b) in rule.cure.items():   # the trial's own cure thresholds, drawn from the scenario
            assert a <= t.fault.cure[key] <= b


def test_stream_is_the_same_for_every_consumer() -> None:
    sc = load_scenario(DEFAULT)
    stream = trial_stream(sc, 2000)
    first = [next(stream) for _ in range(200)]
    assert first[:30] == population(sc, 2000)            # a longer sweep sees the same first trials
    assert trial_spec(sc, 2000, 150) == first[150]        # any trial alone is the same as in the stream
    share = sum(t.fault is not None for t in first) / len(first)
    assert 0.2 <= share <= 0.4                            # the scenario's 30%, within sampling error


def test_evaluation_seeds_differ_from_development_seeds(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"seeds = \[2000\] is invalid; evaluation seeds must differ"):
        load_scenario(_write(tmp_path, development_seeds=[2000, 5]))
    sc = load_scenario(DEFAULT)
    assert sc.development_seeds and not set(sc.seeds) & set(sc.development_seeds)
