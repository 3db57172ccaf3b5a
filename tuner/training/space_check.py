"""Which trial config a search space may give ``train_tts``: keys and values, before Ray starts.

``check_fixed`` takes the search space's ``config:`` mapping, ``check_searched`` one ``search:``
entry. Both raise ``TrainConfigError`` with one line naming the key, the value and the fix: an
unknown key gets a did-you-mean (``max_step`` -> ``max_steps``); a fixed value gets the checks
``TrainSettings.from_config`` makes inside the trial; a searched range must lie inside the key's
own limits (``dropout: {uniform: [0.5, 1.5]}`` is refused, dropout is in [0, 0.9]), and an integer
key is searched with ``randint`` or ``choice`` only. ``model.*`` names are Tacotron2Config fields,
checked by building the preset with them (this imports torch, only when ``model`` keys are used).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tuner.training.settings import (DEFAULTS, INJECT_KEYS, INTEGER_KEYS, NUMERIC_KEYS,
                                     TrainConfigError, check_value, unknown_key)

__all__ = ["check_fixed", "check_searched"]

_SEARCHABLE_PARENTS = ("model", "inject")


def check_fixed(config: Mapping[str, Any]) -> None:
    """Every key of the fixed trial config known, every value allowed (``data_dir`` and
    ``cache_dir`` only by type: the sweep checks the dataset itself)."""
    for key, value in config.items():
        if key not in DEFAULTS:
            raise unknown_key(key, where="config.")
        check_value(key, value)
    model = config.get("model") or {}
    if model:
        _check_model(str(config.get("preset", DEFAULTS["preset"])), dict(model), "config.model.")


def check_searched(name: str, kind: str, args: tuple[Any, ...],
                   fixed: Mapping[str, Any] | None = None) -> None:
    """One ``search:`` entry: the name is a train_tts key (or ``model.<field>`` /
    ``inject.<key>``), and every value the sampler can draw is allowed for it.

    ``kind``: loguniform | uniform (float range [low, high]), randint (integers low..high-1),
    choice (the listed values). ``fixed``: the fixed config (its preset sizes the model)."""
    parent, _, leaf = name.partition(".")
    if leaf and parent not in _SEARCHABLE_PARENTS:
        raise unknown_key(name, where="search.") if parent not in DEFAULTS else TrainConfigError(
            f"search.{name}: train_tts key {parent!r} has no sub-keys; only model.<field> and "
            "inject.<key> names may be dotted")
    if not leaf and name not in DEFAULTS:
        raise unknown_key(name, where="search.")
    where = f"search.{name}.{kind}"
    if kind in ("uniform", "loguniform") and _is_integer(name):
        raise TrainConfigError(f"{where}: {name} is an integer; search it with randint or choice")
    if kind in ("uniform", "loguniform", "randint") and not leaf and name not in NUMERIC_KEYS:
        raise TrainConfigError(f"{where}: {name} is not a number; search it with choice")
    values = _extremes(kind, args)
    for value in values:
        try:
            if parent == "model" and leaf:
                preset = str((fixed or {}).get("preset", DEFAULTS["preset"]))
                _check_model(preset, {**dict((fixed or {}).get("model") or {}), leaf: value},
                             "search.model.")
            elif parent == "inject" and leaf:
                if leaf not in INJECT_KEYS:
                    raise unknown_key(leaf, INJECT_KEYS, "search.inject.", "inject key")
                check_value("inject", {leaf: value})
            else:
                check_value(name, value)
        except TrainConfigError as err:
            if kind == "choice" or "unknown" in str(err):
                raise
            raise TrainConfigError(
                f"{where} = {list(args)!r} reaches {value!r}, outside what train_tts allows: "
                f"{_allowed(err)}; narrow the range") from None


def _is_integer(name: str) -> bool:
    parent, _, leaf = name.partition(".")
    if parent == "inject" and leaf:
        return leaf not in ("explode_lr_threshold", "explode_factor")
    if parent == "model" and leaf:
        return _model_field_types().get(leaf) == "int"
    return name in INTEGER_KEYS


def _extremes(kind: str, args: tuple[Any, ...]) -> list[Any]:
    """The values to check: both ends of a range (randint's high is exclusive), every choice."""
    if kind == "choice":
        return list(args)
    low, high = args
    return [low, high - 1] if kind == "randint" else [low, high]


def _allowed(err: TrainConfigError) -> str:
    if getattr(err, "allowed", None):
        return f"must be {err.allowed}"
    text = str(err)  # Tacotron2Config's "... must be >= 1, got 0"
    start = text.find(" must be ")
    return text[start + 1:text.find(", got ")] if start >= 0 else text


def _model_field_types() -> dict[str, str]:
    from model.tacotron2 import Tacotron2Config

    return {f.name: str(f.type) for f in dataclasses.fields(Tacotron2Config) if f.name != "n_symbols"}


def _check_model(preset: str, overrides: dict[str, Any], where: str) -> None:
    from model.tacotron2 import Tacotron2Config, Tacotron2ConfigError

    known = _model_field_types()
    for key in overrides:
        if key not in known:
            raise unknown_key(key, known, where, "Tacotron2Config field")
    try:
        Tacotron2Config.preset(preset, n_symbols=1, **overrides)
    except (Tacotron2ConfigError, TypeError) as err:
        raise TrainConfigError(f"{where.rstrip('.')}: {err}") from None
