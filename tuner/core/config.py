"""Smart Tuner configuration: YAML -> validated, frozen dataclasses.

`load_config(path)` reads the packaged defaults (`tuner/core/config.yaml`), deep-merges the user file
over them and builds a `SmartConfig`. This module is the only place where YAML becomes config
objects; the defaults live only in `config.yaml` (the dataclasses below have no defaults of
their own; their comments there explain each value).

Every mistake a user can make raises `ConfigError` (a `ValueError`) with one line naming the
file, the field, the bad value and what is allowed, e.g.
``diagnostics.overfitting.critical_gap must be > 0, got -1 in my.yaml``.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from tuner.core import config_legacy
from tuner.contract import CONTRACT_METRICS
from tuner.errors import Checks, UserError, read_yaml
from tuner.core.trial_errors import ERROR_KINDS

DEFAULTS_PATH = Path(__file__).with_name("config.yaml")

PROBLEM_KINDS: tuple[str, ...] = (
    "gradient_explosion", "overfitting", "stagnation", "attention_collapse",
    "gate_collapse", "validation_loss", "training_degradation",
)
ADJUSTMENT_MODES: tuple[str, ...] = ("scale", "shift", "value", "set")


class ConfigError(UserError):
    """A bad configuration file or value; the message is one line naming file, field, value, fix."""


def _gt(x: float) -> dict[str, Any]:
    return {"gt": x}


def _range(lo: float, hi: float) -> dict[str, Any]:
    return {"ge": lo, "le": hi}


# ----------------------------------------------------------------------------- diagnostics
@dataclass(frozen=True)
class GradientRule:
    """grad.norm > warning -> warning; > critical -> critical; skipped-step share above
    critical_skipped_share, non-finite parameters or validation loss -> critical (NaN/Inf in
    grad.norm/training.loss -> critical when the trainable does not report skipped steps);
    validation.loss > (1 + critical_loss_jump) x the median of the previous loss_jump_reports
    -> critical."""
    enabled: bool
    warning: float = field(metadata=_gt(0))
    critical: float = field(metadata=_gt(0))
    critical_skipped_share: float = field(default=0.2, metadata={"ge": 0, "le": 1})
    critical_loss_jump: float = field(default=0.5, metadata={"ge": 0})
    loss_jump_reports: int = field(default=3, metadata={"ge": 1})

    def _checks(self) -> list[tuple[str, Any, str]]:
        return [("critical", self.critical, f">= warning ({self.warning})")] \
            if self.critical < self.warning else []


@dataclass(frozen=True)
class OverfittingRule:
    """gap > warning_gap -> warning; > critical_gap -> critical; val rising / train falling -> serious;
    val > (1 + critical_rise) x its best while train fell -> critical."""
    enabled: bool
    warning_gap: float = field(metadata=_gt(0))
    critical_gap: float = field(metadata=_gt(0))
    rising_window: int = field(metadata={"ge": 2})
    critical_rise: float = field(metadata=_gt(0))
    critical_rise_reports: int = field(default=3, metadata={"ge": 1})
    smooth_reports: int = field(default=3, metadata={"ge": 1})
    noise_window: int = field(default=20, metadata={"ge": 4})
    noise_scale: float = field(default=4.0, metadata={"ge": 0})
    train_rise_tolerance: float = field(default=0.05, metadata={"ge": 0})

    def _checks(self) -> list[tuple[str, Any, str]]:
        return [("critical_gap", self.critical_gap, f">= warning_gap ({self.warning_gap})")] \
            if self.critical_gap < self.warning_gap else []


@dataclass(frozen=True)
class StagnationRule:
    """Improvement of validation.loss over `window` reports < min_delta -> serious; frozen -> serious."""
    enabled: bool
    window: int = field(metadata={"ge": 2})
    min_delta: float = field(metadata={"ge": 0})
    critical_window: int = field(metadata={"ge": 2})
    frozen_reports: int = field(metadata={"ge": 2})
    frozen_critical_reports: int = field(metadata={"ge": 2})
    smooth_reports: int = field(default=3, metadata={"ge": 1})
    noise_window: int = field(default=20, metadata={"ge": 4})
    noise_scale: float = field(default=0.5, metadata={"ge": 0})

    def _checks(self) -> list[tuple[str, Any, str]]:
        if self.critical_window < self.window:
            return [("critical_window", self.critical_window, f">= window ({self.window})")]
        if self.frozen_critical_reports < self.frozen_reports:
            return [("frozen_critical_reports", self.frozen_critical_reports,
                     f">= frozen_reports ({self.frozen_reports})")]
        return []


@dataclass(frozen=True)
class AttentionRule:
    """attention_score < warning -> warning; < critical -> critical; degrading -> warning."""
    enabled: bool
    warning: float = field(metadata=_range(0, 1))
    critical: float = field(metadata=_range(0, 1))
    degrading_window: int = field(metadata={"ge": 2})
    degrading_drop: float = field(metadata=_gt(0))
    critical_after: int = field(default=20, metadata={"ge": 0})

    def _checks(self) -> list[tuple[str, Any, str]]:
        return [("critical", self.critical, f"<= warning ({self.warning})")] \
            if self.critical > self.warning else []


@dataclass(frozen=True)
class GateRule:
    """gate_accuracy < warning -> warning; < critical -> critical; early_stop_fraction > x -> serious.
    Judged only once validation.attention_score >= requires_attention (0 = always)."""
    enabled: bool
    warning: float = field(metadata=_range(0, 1))
    critical: float = field(metadata=_range(0, 1))
    early_stop_fraction: float = field(metadata=_range(0, 1))
    requires_attention: float = field(default=0.3, metadata=_range(0, 1))

    def _checks(self) -> list[tuple[str, Any, str]]:
        return [("critical", self.critical, f"<= warning ({self.warning})")] \
            if self.critical > self.warning else []


@dataclass(frozen=True)
class ValidationLossRule:
    """validation.loss > critical, NaN or Inf -> critical."""
    enabled: bool
    critical: float = field(metadata=_gt(0))


@dataclass(frozen=True)
class DegradationRule:
    """(initial - current) / initial training.loss < critical -> critical."""
    enabled: bool
    critical: float = field(metadata={"lt": 0})


@dataclass(frozen=True)
class Diagnostics:
    history_size: int = field(metadata={"ge": 2})
    serious_after: int = field(metadata={"ge": 0})
    serious_problems_for_restart: int = field(metadata={"ge": 1})
    gradient_explosion: GradientRule
    overfitting: OverfittingRule
    stagnation: StagnationRule
    attention: AttentionRule
    gate: GateRule
    validation_loss: ValidationLossRule
    training_degradation: DegradationRule

    def _checks(self) -> list[tuple[str, Any, str]]:
        need = self.stagnation.critical_window + 1
        return [("history_size", self.history_size, f"> stagnation.critical_window ({need - 1})")] \
            if self.history_size < need else []


# ----------------------------------------------------------------------------- recovery
@dataclass(frozen=True)
class Adjustment:
    """One hyperparameter change of a recovery action (see config.yaml `training_recovery.actions`).

    mode "scale": new = old * f, f in [low, high]; "shift": new = old + d, d in [low, high];
    "value": new in [low, high]; "set": new = `value`. Then clamp to [min, max]; integer rounds down.
    """
    param: str
    mode: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    min: float | None = None
    max: float | None = None
    integer: bool = False
    default: Any = None
    value: Any = None

    @property
    def sampled(self) -> bool:
        """True when the region is an interval an Optuna study picks from (not a fixed change)."""
        return self.mode != "set" and self.high > self.low


@dataclass(frozen=True)
class TrainingRecovery:
    enabled: bool
    min_training_time: float = field(metadata={"ge": 0})
    min_validation_steps: int = field(metadata={"ge": 0})
    max_recoveries_per_trial: int = field(metadata={"ge": 0})
    actions: dict[str, tuple[Adjustment, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class EarlyStopping:
    enabled: bool
    metric: str
    patience: int = field(metadata={"ge": 1})
    min_delta: float = field(metadata={"ge": 0})


@dataclass(frozen=True)
class OptunaSettings:
    storage: str | None
    study_name: str
    seed: int | None


@dataclass(frozen=True)
class SmartConfig:
    diagnostics: Diagnostics
    training_recovery: TrainingRecovery
    early_stopping: EarlyStopping
    optuna: OptunaSettings
    metrics: dict[str, str | None] = field(default_factory=dict)   # contract name -> reported name
    # reported name -> other names accepted for it when a result lacks it (a list in `metrics`)
    metric_alternatives: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def metric_name(self, contract_name: str) -> str | None:
        """The name the trainable reports for `contract_name` (None = not reported)."""
        return self.metrics.get(contract_name, contract_name)


# ----------------------------------------------------------------------------- loading
def load_config(path: str | Path | None = None) -> SmartConfig:
    """Packaged defaults, with the YAML file at `path` (if any) deep-merged over them."""
    data = _read_yaml(DEFAULTS_PATH)
    if path is None:
        return _build_config(data, str(DEFAULTS_PATH))
    return _build_user(data, _read_yaml(Path(path)), str(path))


def config_from_dict(d: Mapping[str, Any], source: str = "<dict>") -> SmartConfig:
    """The packaged defaults with the nested dict `d` deep-merged over them."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"config must be a mapping, got {type(d).__name__} in {source}")
    return _build_user(_read_yaml(DEFAULTS_PATH), d, source)


def current_layout(user: Mapping[str, Any], source: str, announce: bool = True) -> dict[str, Any]:
    """`user` with its Smart Tuner V2 keys rewritten into today's (config_legacy.py), not validated."""
    user, lines, _ = config_legacy.from_v2(user, _read_yaml(DEFAULTS_PATH), source, ConfigError)
    if announce:
        config_legacy.announce(lines)
    return user


def _build_user(defaults: dict[str, Any], user: Mapping[str, Any], source: str) -> SmartConfig:
    """`user` (today's layout or Smart Tuner V2's, see config_legacy.py) over `defaults`, built;
    prints one line per V2 key saying what it became."""
    user, lines, origins = config_legacy.from_v2(user, defaults, source, ConfigError)
    config_legacy.announce(lines)
    try:
        return _build_config(_merge_user(defaults, user), source)
    except ConfigError as exc:
        raise ConfigError(config_legacy.explain(str(exc), origins)) from None


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `over` merged in: mappings merge key by key, anything else replaces,
    except that null over a mapping (an empty YAML section such as ``gate:``) changes nothing."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if value is None and isinstance(out.get(key), Mapping):
            continue
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_user(defaults: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """deep_merge, except that a user's adjustment spec replaces the default one as a whole
    (it may switch mode, e.g. from shift to scale)."""
    merged = deep_merge(defaults, user)
    actions = user.get("training_recovery", {})
    actions = actions.get("actions") if isinstance(actions, Mapping) else None
    if isinstance(actions, Mapping):
        for kind, params in actions.items():
            if isinstance(params, Mapping):
                for param, spec in params.items():
                    merged["training_recovery"]["actions"][kind][param] = copy.deepcopy(spec)
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; pass an existing YAML file "
                          "(or no file to use the defaults)")
    data = read_yaml(path, ConfigError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a YAML mapping (sections diagnostics, training_recovery, "
                          f"...), got {type(data).__name__}")
    return data


def _build_config(data: Mapping[str, Any], source: str) -> SmartConfig:
    data = dict(data)
    recovery = dict(_mapping(data.get("training_recovery", {}), "training_recovery", source))
    actions = recovery.pop("actions", {})
    metrics = data.pop("metrics", {})
    data["training_recovery"] = recovery
    cfg = _build(SmartConfig, data, "", source)
    return dataclasses.replace(
        cfg,
        training_recovery=dataclasses.replace(
            cfg.training_recovery, actions=_build_actions(actions, source)),
        **_build_metrics(metrics, source),
    )


@functools.lru_cache(maxsize=8)
def _check(source: str) -> Checks:
    """One line: ``diagnostics.overfitting.critical_gap must be > 0, got -1 in my.yaml``."""
    return Checks(ConfigError, "{name} must be {fix}, got {value!r}{type} in {source}",
                  "unknown {what} {name} in {source}; {hint}", source=source)


def _mapping(value: Any, where: str, source: str) -> Mapping[str, Any]:
    return _check(source).mapping(where, value, null=True)


def _unknown(key: Any, allowed: typing.Iterable[str], where: str, source: str) -> UserError:
    return _check(source).unknown(f"{where}{key}", key, sorted(allowed))


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    """Build dataclass `cls` from mapping `data`, checking keys, types and ranges."""
    data = _mapping(data, prefix.rstrip(".") or "config", source)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown(key, fields, prefix, source)
        where = f"{prefix}{key}"
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, where + ".", source)
        else:
            kwargs[key] = _convert(value, hint, where, source)
            _check_range(kwargs[key], value, fields[key].metadata, where, source)
    filled_later = ("actions", "metrics", "metric_alternatives")   # by _build_actions / _build_metrics
    missing = [f.name for f in fields.values() if f.name not in kwargs and f.name not in filled_later]
    if missing:
        raise ConfigError(f"missing key {prefix}{missing[0]} in {source}; add it (see tuner/core/config.yaml)")
    obj = cls(**kwargs)
    for name, value, allowed in getattr(obj, "_checks", lambda: [])():
        raise _check(source).fail(f"{prefix}{name}", value, allowed)
    return obj


def _convert(value: Any, hint: Any, where: str, source: str) -> Any:
    """`value` checked against the field type `hint` (bool, int, float, str, or one of them | None)."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional and value is None:
        return None
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    check = _check(source)
    if base is bool:
        return check.flag(where, value)
    if base is int:
        return check.integer(where, value)
    if base is float:
        return check.number(where, value)
    if base is str:
        return check.text(where, value, null=optional)
    raise ConfigError(f"{where} has an unsupported value {value!r} in {source}")  # pragma: no cover


_COMPARISONS = {"gt": (">", lambda v, b: v > b), "ge": (">=", lambda v, b: v >= b),
                "lt": ("<", lambda v, b: v < b), "le": ("<=", lambda v, b: v <= b)}


def _check_range(value: Any, raw: Any, metadata: Mapping[str, Any], where: str, source: str) -> None:
    """The field's bounds (metadata gt/ge/lt/le), each named on its own: ``must be <= 1``."""
    if value is None or isinstance(value, bool):
        return
    for key, bound in metadata.items():
        symbol, ok = _COMPARISONS[key]
        if not ok(value, bound):
            raise _check(source).fail(where, raw, f"{symbol} {bound}")


def _build_metrics(data: Any, source: str) -> dict[str, Any]:
    """SmartConfig's `metrics` and `metric_alternatives` (a list value: first name, then others)."""
    data = _mapping(data, "metrics", source)
    out: dict[str, str | None] = {name: name for name in CONTRACT_METRICS}
    alternatives: dict[str, tuple[str, ...]] = {}
    for key, value in data.items():
        if key not in CONTRACT_METRICS:
            raise _unknown(key, CONTRACT_METRICS, "metrics.", source)
        names = value if isinstance(value, list) and value else [value]
        names = [_convert(v, str | None if len(names) == 1 else str, f"metrics.{key}", source) for v in names]
        out[key] = names[0]
        if len(names) > 1:
            alternatives[names[0]] = tuple(names[1:])
    return {"metrics": out, "metric_alternatives": alternatives}


_ADJUSTMENT_KEYS = ("scale", "shift", "value", "set", "log", "min", "max", "integer", "default")


def _build_actions(data: Any, source: str) -> dict[str, tuple[Adjustment, ...]]:
    data = _mapping(data, "training_recovery.actions", source)
    out: dict[str, tuple[Adjustment, ...]] = {}
    for kind, params in data.items():
        if kind not in PROBLEM_KINDS + ERROR_KINDS:   # error kinds: retries after a trial error
            raise _unknown(kind, PROBLEM_KINDS + ERROR_KINDS, "training_recovery.actions.", source)
        where = f"training_recovery.actions.{kind}"
        adjustments = []
        for param, spec in _mapping(params, where, source).items():
            if spec is not None:   # null removes an adjustment
                adjustments.append(_build_adjustment(str(param), spec, f"{where}.{param}", source))
        out[kind] = tuple(adjustments)
    return out


def _build_adjustment(param: str, spec: Any, where: str, source: str) -> Adjustment:
    from tuner.training.settings import DEFAULTS, INTEGER_KEYS, NUMERIC_KEYS, check_value

    if param not in DEFAULTS or param.startswith("_"):  # a recovery changes a train_tts setting
        raise _unknown(param, [k for k in DEFAULTS if not k.startswith("_")],
                       where[:-len(param)], source)
    spec = _mapping(spec, where, source)
    for key in spec:
        if key not in _ADJUSTMENT_KEYS:
            raise _unknown(key, _ADJUSTMENT_KEYS, where + ".", source)
    modes = [m for m in ADJUSTMENT_MODES if m in spec]
    if len(modes) != 1:
        raise ConfigError(f"{where} must have exactly one of scale/shift/value/set, got {sorted(spec)!r} "
                          f"in {source}")
    mode = modes[0]
    if mode != "set" and param not in NUMERIC_KEYS:
        raise ConfigError(f"{where}.{mode}: {param} is not a number; change it with set: VALUE "
                          f"in {source}")
    opt = {k: _convert(spec[k], float | None, f"{where}.{k}", source) for k in ("min", "max") if k in spec}
    flags = {k: _convert(spec[k], bool, f"{where}.{k}", source) for k in ("log", "integer") if k in spec}
    if mode == "set":
        try:
            check_value(param, spec["set"])
        except UserError as err:
            raise ConfigError(f"{where}.set: {spec['set']!r} is not a value train_tts allows for "
                              f"{param} ({getattr(err, 'allowed', err)}) in {source}") from None
        return Adjustment(param, mode, value=spec["set"], default=spec.get("default"), **opt, **flags)
    bounds = spec[mode]
    if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)):
        raise _check(source).fail(f"{where}.{mode}", bounds, "a list [low, high] of two numbers")
    low, high = float(bounds[0]), float(bounds[1])
    if high < low:
        raise ConfigError(f"{where}.{mode} must have low <= high, got {list(bounds)!r} in {source}")
    if mode == "scale" and low <= 0:
        raise _check(source).fail(f"{where}.scale factors", list(bounds), "> 0")
    if flags.get("log") and low <= 0:
        raise ConfigError(f"{where}.log needs a region above 0, got {list(bounds)!r} in {source}")
    default = spec.get("default")
    if default is not None:
        default = _convert(default, float, f"{where}.default", source)
    # What a recovery can set must be a value train_tts accepts: the clamps, the default, and
    # for mode "value" the region itself.
    limits = {"min": opt.get("min"), "max": opt.get("max"), "default": default}
    if mode == "value":
        limits.update({"value low": low, "value high": high})
    for name, v in limits.items():
        try:
            if v is not None:
                check_value(param, int(v) if param in INTEGER_KEYS and float(v).is_integer() else v)
        except UserError as err:
            raise ConfigError(f"{where}: {name} {v!r} is outside what train_tts allows for "
                              f"{param} ({getattr(err, 'allowed', err)}) in {source}") from None
    return Adjustment(param, mode, low=low, high=high, default=default, **opt, **flags)


__all__ = [
    "Adjustment", "AttentionRule", "ConfigError", "DegradationRule", "Diagnostics", "EarlyStopping",
    "GateRule", "GradientRule", "OptunaSettings", "OverfittingRule", "SmartConfig", "StagnationRule",
    "TrainingRecovery", "ValidationLossRule", "config_from_dict", "current_layout", "deep_merge",
    "load_config",
    "CONTRACT_METRICS", "PROBLEM_KINDS",
]
