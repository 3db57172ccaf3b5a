"""Benchmark scenario files (benchmarks/scenarios/*.yaml): load, validate, sample a population.

A scenario fixes everything a comparison depends on, before it runs: population size and search
space, faults (rates and onset reports), seeds, concurrency, budget, target and schedulers.
Units: one *report* = one validation of one trial (``steps_per_report`` training steps); budget
and compute are counted in trial-reports summed over trials (rollbacks do not refund compute).

Trials come as a *stream* (``trial_spec(scenario, seed, index)``, ``trial_stream``): trial
``index`` of ``seed`` has its own random generator, so its config, noise seed, fault and cure
thresholds are the same whichever scheduler asks for it and however many trials it asks for (a
searcher that keeps proposing until the budget is spent). Fault of a trial: kinds with
``select: highest_learning_rate`` strike the trials whose learning rate lies in the top
``rate`` of the search range (its quantile, log scale for loguniform: the fastest learners
explode); the other kinds are drawn at random among the rest with probability ``rate`` each
(rescaled so each kind's overall share is its ``rate``). Onsets are uniform integers in
``onset: [lo, hi]``; the trial's cure thresholds (benchmarks/faults.py) are uniform draws in
``cure: {key: [lo, hi]}`` (default ``faults.CURE_RANGES``). ``population(scenario, seed)`` is
the first ``trials`` of the stream (tier 1b and tests).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from benchmarks.faults import CURE_RANGES, FAULT_KINDS, Fault

SCHEDULERS: tuple[str, ...] = ("fifo", "fifo_nan_stop", "asha", "pbt", "smart")
DISTRIBUTIONS = ("loguniform", "uniform", "choice", "const")


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the file, the field, the value and the fix."""


@dataclass(frozen=True)
class FaultRule:
    kind: str
    rate: float
    onset: tuple[int, int]
    select: str = "random"        # "random" | "highest_learning_rate"
    slope: float = 0.05           # overfitting only
    cure: Mapping[str, tuple[float, float]] = field(default_factory=dict)   # per-trial threshold ranges


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    trials: int
    max_reports: int
    max_concurrent: int
    budget: int
    target: float
    seeds: tuple[int, ...]
    search_space: Mapping[str, Mapping[str, Any]]
    faults: tuple[FaultRule, ...]
    schedulers: tuple[str, ...] = SCHEDULERS
    steps_per_report: int = 50
    seconds_per_report: float = 60.0
    ray_tune_seeds: tuple[int, ...] = ()
    development_seeds: tuple[int, ...] = ()   # seeds used while developing rules: never evaluated
    asha: Mapping[str, Any] = field(default_factory=lambda: {"grace_period": 4, "reduction_factor": 3})
    pbt: Mapping[str, Any] = field(default_factory=lambda: {"perturbation_interval": 4, "quantile_fraction": 0.25})
    fixed: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fault_rate(self) -> float:
        return sum(f.rate for f in self.faults)


@dataclass(frozen=True)
class TrialSpec:
    """One trial of a population: its id, original config, noise seed and fault (None = healthy)."""

    trial_id: str
    config: Mapping[str, Any]
    seed: int
    fault: Fault | None


def _err(path: str, field_: str, value: Any, fix: str) -> ScenarioError:
    return ScenarioError(f"{path}: {field_} = {value!r} is invalid; {fix}")


def _int(d: Mapping[str, Any], key: str, path: str, lo: int, default: int | None = None) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise _err(path, key, value, f"use an integer >= {lo}")
    return value


def _check_space(space: Any, path: str) -> dict[str, dict[str, Any]]:
    if not isinstance(space, dict) or "learning_rate" not in space:
        raise _err(path, "search_space", space, "give a mapping of hyperparameters including learning_rate")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in space.items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
            raise _err(path, f"search_space.{name}", spec, f"use one of {{{': ..., '.join(DISTRIBUTIONS)}: ...}}")
        kind, arg = next(iter(spec.items()))
        if kind in ("loguniform", "uniform"):
            ok = isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, (int, float)) for a in arg)
            ok = ok and arg[0] < arg[1] and (kind == "uniform" or arg[0] > 0)
            if not ok:
                raise _err(path, f"search_space.{name}.{kind}", arg, "use [low, high] with low < high (low > 0 for loguniform)")
        if kind == "choice" and (not isinstance(arg, list) or not arg):
            raise _err(path, f"search_space.{name}.choice", arg, "use a non-empty list")
        out[name] = {kind: arg}
    return out


def _check_faults(faults: Any, path: str, max_reports: int) -> tuple[FaultRule, ...]:
    if not isinstance(faults, dict):
        raise _err(path, "faults", faults, "give a mapping: kind -> {rate, onset: [lo, hi]}")
    rules = []
    for kind, spec in faults.items():
        if kind not in FAULT_KINDS:
            raise _err(path, f"faults.{kind}", kind, f"use one of {', '.join(FAULT_KINDS)}")
        rate = spec.get("rate") if isinstance(spec, dict) else None
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise _err(path, f"faults.{kind}.rate", rate, "use a number in [0, 1]")
        onset = spec.get("onset")
        if not (isinstance(onset, list) and len(onset) == 2 and all(isinstance(o, int) for o in onset)
                and 1 <= onset[0] <= onset[1] <= max_reports):
            raise _err(path, f"faults.{kind}.onset", onset, f"use [lo, hi] report indices with 1 <= lo <= hi <= max_reports ({max_reports})")
        select = spec.get("select", "random")
        if select not in ("random", "highest_learning_rate"):
            raise _err(path, f"faults.{kind}.select", select, "use random or highest_learning_rate")
        slope = spec.get("slope", 0.05)
        if not isinstance(slope, (int, float)) or slope <= 0:
            raise _err(path, f"faults.{kind}.slope", slope, "use a number > 0")
        cure = spec.get("cure", CURE_RANGES[kind])
        allowed = CURE_RANGES[kind]
        if not isinstance(cure, dict) or any(k not in allowed for k in cure) or not all(
                isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)
                and 0 < v[0] <= v[1] for v in cure.values()):
            raise _err(path, f"faults.{kind}.cure", cure, f"use {{key: [lo, hi]}} with 0 < lo <= hi, keys from {sorted(allowed) or 'none (unrecoverable)'}")
        rules.append(FaultRule(kind, float(rate), (onset[0], onset[1]), select, float(slope),
                               {k: (float(v[0]), float(v[1])) for k, v in cure.items()}))
    total = sum(r.rate for r in rules)
    if total > 0.5 + 1e-9:
        raise _err(path, "faults (sum of rates)", round(total, 4), "keep at least half of the trials healthy: sum of rates <= 0.5")
    return tuple(rules)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (``yaml.safe_load``); raise ScenarioError on any mistake."""
    p = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ScenarioError(f"{p}: scenario file not found; pass an existing file, e.g. benchmarks/scenarios/default.yaml") from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{p}: not valid YAML ({str(e).splitlines()[0]}); fix the syntax") from None
    if not isinstance(data, dict):
        raise _err(p, "(top level)", type(data).__name__, "the file must be a mapping of scenario fields")
    allowed = {f for f in Scenario.__dataclass_fields__} - {"path"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _err(p, "unknown fields", unknown, f"allowed fields: {', '.join(sorted(allowed))}")
    trials = _int(data, "trials", p, 2)
    max_reports = _int(data, "max_reports", p, 2)
    budget = _int(data, "budget", p, 1)
    target = data.get("target")
    if not isinstance(target, (int, float)) or not math.isfinite(target) or target <= 0:
        raise _err(p, "target", target, "use a validation.loss value > 0")
    seeds = data.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise _err(p, "seeds", seeds, "use a non-empty list of integers")
    dev = data.get("development_seeds", [])
    if not isinstance(dev, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in dev):
        raise _err(p, "development_seeds", dev, "use a list of integers (may be empty)")
    if set(dev) & set(seeds):
        raise _err(p, "seeds", sorted(set(dev) & set(seeds)), "evaluation seeds must differ from development_seeds")
    ray_seeds = data.get("ray_tune_seeds", [])
    if not isinstance(ray_seeds, list) or not all(isinstance(s, int) for s in ray_seeds):
        raise _err(p, "ray_tune_seeds", ray_seeds, "use a list of integers (may be empty)")
    scheds = data.get("schedulers", list(SCHEDULERS))
    if not isinstance(scheds, list) or not scheds or any(s not in SCHEDULERS for s in scheds):
        raise _err(p, "schedulers", scheds, f"use a non-empty list from {', '.join(SCHEDULERS)}")
    fixed = data.get("fixed", {})
    if not isinstance(fixed, dict):
        raise _err(p, "fixed", fixed, "use a mapping of hyperparameters held constant")
    kwargs: dict[str, Any] = {}
    for key in ("asha", "pbt"):
        if key in data:
            if not isinstance(data[key], dict):
                raise _err(p, key, data[key], "use a mapping of scheduler settings")
            kwargs[key] = data[key]
    spr = data.get("seconds_per_report", 60.0)
    if not isinstance(spr, (int, float)) or spr <= 0:
        raise _err(p, "seconds_per_report", spr, "use a number of seconds > 0")
    return Scenario(
        name=str(data.get("name", Path(path).stem)), path=p, trials=trials, max_reports=max_reports,
        max_concurrent=_int(data, "max_concurrent", p, 1, default=trials), budget=budget, target=float(target),
        seeds=tuple(seeds), search_space=_check_space(data.get("search_space"), p),
        faults=_check_faults(data.get("faults", {}), p, max_reports), schedulers=tuple(scheds),
        steps_per_report=_int(data, "steps_per_report", p, 1, default=50), seconds_per_report=float(spr),
        ray_tune_seeds=tuple(ray_seeds), development_seeds=tuple(dev), fixed=dict(fixed), **kwargs,
    )


def _sample(spec: Mapping[str, Any], rng: random.Random) -> Any:
    kind, arg = next(iter(spec.items()))
    if kind == "loguniform":
        return math.exp(rng.uniform(math.log(arg[0]), math.log(arg[1])))
    if kind == "uniform":
        return rng.uniform(arg[0], arg[1])
    if kind == "choice":
        return rng.choice(arg)
    return arg


def _quantile(spec: Mapping[str, Any], value: float) -> float:
    """Where ``value`` lies in its search range, 0..1 (log scale for loguniform; 0.5 otherwise)."""
    kind, arg = next(iter(spec.items()))
    if kind == "loguniform":
        return math.log(value / arg[0]) / math.log(arg[1] / arg[0])
    if kind == "uniform":
        return (value - arg[0]) / (arg[1] - arg[0])
    if kind == "choice" and len(arg) > 1:
        return sorted(arg).index(value) / (len(arg) - 1)
    return 0.5


def trial_spec(scenario: Scenario, seed: int, index: int) -> TrialSpec:
    """Trial ``index`` (0-based) of the stream of ``seed``: identical for every scheduler."""
    rng = random.Random(seed * 1_000_003 + index)
    cfg = dict(scenario.fixed)
    cfg.update({k: _sample(v, rng) for k, v in scenario.search_space.items()})
    u = rng.random()                               # one draw decides the fault kind
    fault_rng = random.Random((seed * 1_000_003 + index) * 7 + 1)
    rule = None
    top = [r for r in scenario.faults if r.select == "highest_learning_rate"]
    q = _quantile(scenario.search_space["learning_rate"], float(cfg["learning_rate"]))
    edge = 1.0
    for r in top:                                  # the top `rate` of the lr range, highest first
        if edge - r.rate <= q < edge or (q >= 1.0 and edge == 1.0 and r.rate > 0):
            rule = r
            break
        edge -= r.rate
    if rule is None:
        rest = [r for r in scenario.faults if r.select != "highest_learning_rate"]
        scale = 1.0 / max(1e-9, 1.0 - sum(r.rate for r in top))
        acc = 0.0
        for r in rest:
            acc += r.rate * scale
            if u < acc:
                rule = r
                break
    fault = None
    if rule is not None:
        onset = fault_rng.randint(rule.onset[0], rule.onset[1])
        cure = {k: fault_rng.uniform(lo, hi) for k, (lo, hi) in sorted(rule.cure.items())}
        fault = Fault(rule.kind, onset, dict(cfg), rule.slope, cure)
    return TrialSpec(f"t{seed}_{index:03d}", cfg, seed * 100_000 + index, fault)


def trial_stream(scenario: Scenario, seed: int) -> Iterator[TrialSpec]:
    """Trials 0, 1, 2, ... of ``seed`` without end (the searcher of every scheduler)."""
    index = 0
    while True:
        yield trial_spec(scenario, seed, index)
        index += 1


def population(scenario: Scenario, seed: int) -> list[TrialSpec]:
    """The first ``scenario.trials`` trials of the stream of ``seed``."""
    return [trial_spec(scenario, seed, i) for i in range(scenario.trials)]
