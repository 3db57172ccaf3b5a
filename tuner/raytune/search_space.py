"""Search-space YAML files -> a validated ``SearchSpace`` -> a Ray Tune ``param_space``.

File format (see ``search_spaces/quickstart.yaml`` for a commented example)::

    metric: validation.loss        # what the searcher and the report rank by (default validation.loss)
    mode: min                      # min | max (default min)
    num_samples: 6                 # trials in the sweep (default 8); --num-samples overrides
    max_concurrent: 2              # trials at a time (default 2); --max-concurrent overrides
    scheduler: smart               # smart | fifo | asha | pbt (default smart); --scheduler overrides
    resources: {cpu: 1, gpu: 0}    # per trial (default cpu 1, gpu 0); --gpus-per-trial overrides gpu
    build_corpus: true             # build the built-in corpus into config.data_dir if it is missing
    config:                        # fixed values given to every trial (train_tts keys)
      preset: tiny
      data_dir: data/corpus        # relative paths are taken from the current directory
    search:                        # searched values; dotted names reach into nested dicts
      learning_rate: {loguniform: [3.0e-4, 3.0e-2]}   # low > 0
      dropout: {uniform: [0.1, 0.5]}
      batch_size: {choice: [16, 32]}
      seed: {randint: [0, 1000]}                      # integers, high exclusive
    smart_tuner:                   # config overrides merged over tuner/core/config.yaml (and --config)
      training_recovery: {min_training_time: 30}

Rules: bounds are numbers with low < high and low >= 0 (every tuned TTS hyperparameter is
non-negative; loguniform needs low > 0); a name may not be both fixed and searched; every
``config:`` and ``search:`` name is a ``train_tts`` setting and every value a sampler can draw is
one it accepts (tuner/training/space_check.py). Every mistake
raises ``SearchSpaceError`` with one line naming the file, the field, the value and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.errors import Checks, UserError, did_you_mean, read_yaml

__all__ = [
    "SearchSpaceError",
    "SearchParam",
    "SearchSpace",
    "load_search_space",
    "parse_search_space",
    "SEARCH_TYPES",
    "SCHEDULERS",
]

SEARCH_TYPES = ("loguniform", "uniform", "choice", "randint")
SCHEDULERS = ("smart", "fifo", "asha", "pbt")
PATH_KEYS = ("data_dir", "cache_dir")
_TOP_KEYS = ("metric", "mode", "num_samples", "max_concurrent", "scheduler", "resources",
             "build_corpus", "config", "search", "smart_tuner")


class SearchSpaceError(UserError):
    """A mistake in a search-space file; the message is one line naming file, field and fix."""


@dataclass(frozen=True)
class SearchParam:
    """One searched hyperparameter: ``kind`` in SEARCH_TYPES, ``args`` its bounds or choices."""

    name: str
    kind: str
    args: tuple[Any, ...]

    def to_tune(self) -> Any:
        """The Ray Tune sampler (tune.loguniform(low, high) etc.)."""
        from ray import tune

        if self.kind == "choice":
            return tune.choice(list(self.args))
        return getattr(tune, self.kind)(*self.args)


@dataclass(frozen=True)
class SearchSpace:
    """A validated search-space file."""

    path: Path
    metric: str = "validation.loss"
    mode: str = "min"
    num_samples: int = 8
    max_concurrent: int = 2
    scheduler: str = "smart"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    build_corpus: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    search: tuple[SearchParam, ...] = ()
    smart_tuner: dict[str, Any] = field(default_factory=dict)

    def param_space(self) -> dict[str, Any]:
        """Fixed config with the searched names replaced by Ray Tune samplers (nested by dots)."""
        space = _deep_copy(self.config)
        for param in self.search:
            _set_dotted(space, param.name, param.to_tune())
        return space


def _deep_copy(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in d.items()}


def _set_dotted(d: dict[str, Any], name: str, value: Any) -> None:
    *parents, leaf = name.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[leaf] = value


def _has_dotted(d: Mapping[str, Any], name: str) -> bool:
    *parents, leaf = name.split(".")
    for p in parents:
        if not isinstance(d.get(p), Mapping):
            return False
        d = d[p]
    return leaf in d


def load_search_space(path: str | Path) -> SearchSpace:
    """Read and validate a search-space YAML file (see the module docstring for the format)."""
    p = Path(path)
    if not p.is_file():
        raise SearchSpaceError(
            f"search space file {str(p)!r} not found; pass an existing YAML file such as "
            "search_spaces/quickstart.yaml")
    return parse_search_space(read_yaml(p, SearchSpaceError), p)


def parse_search_space(data: Any, path: str | Path = "<search space>") -> SearchSpace:
    """Validate an already-loaded YAML document; ``path`` is only used in messages."""
    p = Path(path)
    if not isinstance(data, Mapping):
        raise SearchSpaceError(
            f"{p}: the top level must be a mapping with keys {', '.join(_TOP_KEYS)}, "
            f"got {type(data).__name__}; see search_spaces/quickstart.yaml")
    # One line: ``space.yaml: mode = 'minimize' is invalid; use min or max``.
    check = Checks(SearchSpaceError, "{source}: {name} = {value!r} is invalid; {fix}",
                   "{source}: unknown {what} {key!r}; {hint}", use="use {}", source=p)
    check.keys("", data, _TOP_KEYS)

    metric = data.get("metric", "validation.loss")
    if not isinstance(metric, str) or not metric:
        raise check.fail("metric", metric, "a metric name",
                         fix="give a reported metric name such as validation.loss")
    mode = check.choice("mode", data.get("mode", "min"), ("min", "max"))
    num_samples = check.integer("num_samples", data.get("num_samples", 8), 1)
    max_concurrent = check.integer("max_concurrent", data.get("max_concurrent", 2), 1)
    scheduler = check.choice("scheduler", data.get("scheduler", "smart"), SCHEDULERS)
    resources = check.mapping("resources", data.get("resources", {}) or {},
                              "a mapping such as {cpu: 1, gpu: 0}")
    for key in resources:
        if key not in ("cpu", "gpu"):
            raise check.fail(f"resources.{key}", resources[key], "cpu or gpu",
                             fix="only cpu and gpu are allowed")
    cpus = check.number("resources.cpu", resources.get("cpu", 1), 0, lo_open=True, finite=False)
    gpus = check.number("resources.gpu", resources.get("gpu", 0), 0, finite=False)
    build_corpus = check.flag("build_corpus", data.get("build_corpus", False))

    config = check.mapping("config", data.get("config", {}) or {}, "a mapping of fixed trial values")
    config = _deep_copy(config)
    for key in PATH_KEYS:
        if isinstance(config.get(key), str):
            config[key] = str(Path(config[key]).expanduser().resolve())

    search_raw = check.mapping("search", data.get("search", {}) or {},
                               "a mapping such as name: {loguniform: [low, high]}")
    params = tuple(_parse_param(str(name), spec, check) for name, spec in search_raw.items())
    for param in params:
        if _has_dotted(config, param.name):
            raise check.fail(f"search.{param.name}", param.name, "a name not under config",
                             fix="it is also fixed under config; remove it from one of the two")

    _check_train_tts(p, config, params)

    smart = check.mapping("smart_tuner", data.get("smart_tuner", {}) or {},
                          "a mapping of tuner/core/config.yaml sections")
    return SearchSpace(path=p, metric=metric, mode=mode, num_samples=num_samples,
                       max_concurrent=max_concurrent, scheduler=scheduler, cpus_per_trial=cpus,
                       gpus_per_trial=gpus, build_corpus=build_corpus, config=config,
                       search=params, smart_tuner=_deep_copy(smart))


def _check_train_tts(p: Path, config: Mapping[str, Any], params: tuple[SearchParam, ...]) -> None:
    """Every ``config:`` and ``search:`` key is a train_tts setting, every value one it accepts."""
    from tuner.training.settings import TrainConfigError
    from tuner.training.space_check import check_fixed, check_searched

    try:
        check_fixed(config)
        for param in params:
            check_searched(param.name, param.kind, param.args, config)
    except TrainConfigError as err:
        raise SearchSpaceError(f"{p}: {err}") from None


def _yaml_float(value: Any) -> Any:
    """PyYAML reads ``3e-4`` (no dot) as a string; accept it as the number the user meant."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _parse_param(name: str, spec: Any, check: Checks) -> SearchParam:
    field_name = f"search.{name}"

    def err(where: str, value: Any, fix: str) -> UserError:
        return check.fail(where, value, fix, fix=fix)

    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise err(field_name, spec, "write exactly one of {loguniform|uniform|choice|randint: ...}")
    kind, args = next(iter(spec.items()))
    if kind not in SEARCH_TYPES:
        hint = did_you_mean(kind, SEARCH_TYPES, listing=None)
        raise err(f"{field_name} type", kind,
                  f"unknown search type; {hint + ' ' if hint else ''}use one of {', '.join(SEARCH_TYPES)}")
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise err(f"{field_name}.choice", args, "give a non-empty list of values")
        return SearchParam(name, kind, tuple(args))
    if not isinstance(args, list) or len(args) != 2:
        raise err(f"{field_name}.{kind}", args, "give two bounds [low, high]")
    want_int = kind == "randint"
    low, high = (b if want_int else _yaml_float(b) for b in args)
    for b in (low, high):
        ok = isinstance(b, int) if want_int else isinstance(b, (int, float))
        if isinstance(b, bool) or not ok:
            kind_text = "whole numbers" if want_int else "numbers"
            raise err(f"{field_name}.{kind}", args, f"bounds must be {kind_text}")
    if low < 0:
        raise err(f"{field_name}.{kind}", args, "bounds must be >= 0 (negative bound)")
    if kind == "loguniform" and low <= 0:
        raise err(f"{field_name}.loguniform", args, "low must be > 0 on a log scale")
    if not low < high:
        raise err(f"{field_name}.{kind}", args, "low must be < high")
    return SearchParam(name, kind, (float(low), float(high)) if not want_int else (low, high))
