"""benchmarks/scenario.py: validation errors (table), population sampling and fault assignment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmarks.scenario import ScenarioError, load_scenario, population

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
    assert len(faulty) == round(sc.fault_rate * sc.trials)
    assert len(faulty) <= sc.trials / 2
    explode = [t for t in faulty if t.fault.kind == "gradient_explosion"]
    top = sorted(pop, key=lambda t: -t.config["learning_rate"])[: len(explode)]
    assert {t.trial_id for t in explode} == {t.trial_id for t in top}   # fastest learners explode
    for t in faulty:
        rule = next(r for r in sc.faults if r.kind == t.fault.kind)
        assert rule.onset[0] <= t.fault.onset <= rule.onset[1]
