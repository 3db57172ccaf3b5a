"""Smart Tuner V2's configuration layout (the design document's ``config.yaml``) in today's keys.

`from_v2` rewrites the V2 keys of a user file (``diagnostics.instability``,
``training_recovery.problem_detection``, ``early_stopping.patience_epochs``, ...) into today's
layout before `tuner.core.config` validates it, and returns one line per rewritten key saying what it
became, so nothing is reinterpreted silently. A file that sets one setting in both layouts is
refused in one line naming both keys. README "Coming from Smart Tuner V2" has the table.
Imports nothing of tuner/ (tuner.core.config imports it), no Ray, no torch.
"""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import yaml

from tuner.errors import did_you_mean

__all__ = ["ACTIONS", "KEYS", "PROBLEMS", "V2Key", "announce", "explain", "from_v2"]

PD = "training_recovery.problem_detection"


@dataclass(frozen=True)
class V2Key:
    old: str                  # the V2 key (dotted path)
    new: str                  # today's key it sets
    text: float | None        # the value the design document's rule text gives (None: none)


# Design principle: V2's `diagnostics` section says when a problem is reported (today's warning
# level / stagnation window), its `training_recovery.problem_detection` says when V2 acts (today's
# critical level, which calls for recovery on its own). The document's rule text names 5.0 as the
# *critical* overfitting gap and "no improvement for over 150 epochs" as the stagnation that ends
# in a restart, hence those two.
KEYS: tuple[V2Key, ...] = (
    V2Key("diagnostics.instability.grad_norm_threshold", "diagnostics.gradient_explosion.warning", 100.0),
    V2Key("diagnostics.overfitting.threshold", "diagnostics.overfitting.critical_gap", 5.0),
    V2Key("diagnostics.overfitting.window_size", "diagnostics.overfitting.rising_window", None),
    V2Key("diagnostics.stagnation.window_size", "diagnostics.stagnation.critical_window", 150),
    V2Key(f"{PD}.gradient_explosion.threshold", "diagnostics.gradient_explosion.critical", 200.0),
    V2Key(f"{PD}.loss_plateau.patience", "diagnostics.stagnation.window", None),
    V2Key(f"{PD}.attention_collapse.threshold", "diagnostics.attention.critical", 0.05),
    V2Key("early_stopping.patience_epochs", "early_stopping.patience", 200),
)
# V2 problem under problem_detection -> today's problem kind (whose recovery actions `action` sets)
PROBLEMS: dict[str, str] = {"gradient_explosion": "gradient_explosion", "loss_plateau": "stagnation",
                            "attention_collapse": "attention_collapse"}
# V2 action -> (today's problem kind whose packaged adjustment it is, the adjusted parameter)
ACTIONS: dict[str, tuple[str, str]] = {"reduce_lr": ("gradient_explosion", "learning_rate"),
                                       "lr_restart": ("stagnation", "lr_restart"),
                                       "attention_reset": ("attention_collapse", "reset_attention")}
# Orders today's config checks: (key that must be <= the other, the other). When a V2 key puts one
# side on the wrong side of the other and that other side is a packaged default, or also a V2 key
# but not the acting (problem_detection) one, it is moved onto the winning value, with a line.
_ORDERS = (("diagnostics.gradient_explosion.warning", "diagnostics.gradient_explosion.critical"),
           ("diagnostics.attention.critical", "diagnostics.attention.warning"),
           ("diagnostics.stagnation.window", "diagnostics.stagnation.critical_window"))
_NOT_SET = object()


def from_v2(user: Mapping[str, Any], base: Mapping[str, Any], source: str,
            error: Callable[[str], Exception] = ValueError
            ) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """(`user` in today's layout, one line per rewritten V2 key, today's key -> the V2 key that set it).

    `base` is what `user` is merged over (the packaged defaults); its values are only read.
    Raises `error(one line)` for an unknown key in a V2-only section, an unknown V2 action, or a
    setting given in both layouts.
    """
    _check_v2_sections(user, source, error)
    data = copy.deepcopy(dict(user))
    found: dict[str, tuple[V2Key, Any]] = {}
    for key in KEYS:
        value = _pop(data, key.old)
        if value is not _NOT_SET:
            _refuse_mixed(user, key.old, key.new, source, error)
            found[key.new] = (key, value)
    lines: dict[str, str] = {}
    final = {new: value for new, (_, value) in found.items()}
    moved = _keep_orders(user, base, found, final, lines)
    for new, (key, value) in found.items():
        note = []
        if final[new] != value:
            note.append(moved[new])
        if key.text is not None and _number(value) and value != key.text:
            note.append(f"the design document's rule text says {key.text}; your file's values win")
        lines[key.old] = (f"Smart Tuner V2 key {key.old} {value} -> {new} {final[new]}"
                          + (f" ({'; '.join(note)})" if note else ""))
    for new, value in final.items():
        _set(data, new, value)
    _history_fits(user, base, final, data, lines)
    _actions(user, base, data, source, error, lines)
    _drop_empty(data, ("diagnostics.instability", PD))
    origins = {new: key.old for new, (key, _) in found.items()}
    return data, [f"{source}: {line}" for line in lines.values()], origins


def announce(lines: list[str]) -> None:
    """Print what each V2 key became (stderr, one line each)."""
    for line in lines:
        print(f"smart-tuner: {line}", file=sys.stderr, flush=True)


def explain(message: str, origins: Mapping[str, str]) -> str:
    """`message` about today's key X, plus which V2 key set X (when one did)."""
    for new, old in origins.items():
        if message.startswith(new + " "):
            return f"{message} (set from the Smart Tuner V2 key {old})"
    return message


# ----------------------------------------------------------------------------- helpers
def _check_v2_sections(user: Mapping[str, Any], source: str, error: Callable[[str], Exception]) -> None:
    """Keys of the V2-only sections (diagnostics.instability, problem_detection) must be known."""
    allowed: dict[str, set[str]] = {}
    for key in KEYS:
        parent, _, leaf = key.old.rpartition(".")
        allowed.setdefault(parent, set()).add(leaf)
    for problem in PROBLEMS:
        allowed.setdefault(f"{PD}.{problem}", set()).add("action")
    allowed[PD] = set(PROBLEMS)
    for section in ("diagnostics.instability", PD, *(f"{PD}.{p}" for p in PROBLEMS)):
        value = _get(user, section)
        if value is _NOT_SET or value is None:
            continue
        if not isinstance(value, Mapping):
            raise error(f"{section} must be a mapping, got {value!r} in {source}")
        for key in value:
            if key not in allowed[section]:
                hint = did_you_mean(key, sorted(allowed[section]))
                raise error(f"unknown key {section}.{key} in {source}; {hint}")


def _refuse_mixed(user: Mapping[str, Any], old: str, new: str, source: str,
                  error: Callable[[str], Exception]) -> None:
    if _get(user, new) is not _NOT_SET:
        raise error(f"{source} sets one setting in both layouts: {old} (Smart Tuner V2) and {new}; "
                    f"keep one of them (README: coming from Smart Tuner V2)")


def _keep_orders(user: Mapping[str, Any], base: Mapping[str, Any], found: dict[str, tuple[V2Key, Any]],
                 final: dict[str, Any], lines: dict[str, str]) -> dict[str, str]:
    """Move a default or non-acting V2 value onto a V2 value it would contradict; notes per key."""
    moved: dict[str, str] = {}
    for low, high in _ORDERS:
        if low not in found and high not in found:
            continue
        values = {k: final[k] if k in final else _get(user, k) if _get(user, k) is not _NOT_SET
                  else _get(base, k) for k in (low, high)}
        if not all(_number(v) for v in values.values()) or values[low] <= values[high]:
            continue
        if low in found and high in found:
            winner = low if found[low][0].old.startswith(PD) else high
        elif _get(user, high if low in found else low) is not _NOT_SET:
            continue          # the user set the other side in today's layout: the check refuses it
        else:
            winner = low if low in found else high
        loser = high if winner == low else low
        by = found[winner][0].old
        why = (f"{'lowered' if loser == low else 'raised'} to {values[winner]}, the {winner} set from "
               f"{by}: it must stay {'<=' if loser == low else '>='} that")
        if loser in found:
            final[loser] = values[winner]
            moved[loser] = why
        else:
            final[loser] = values[winner]
            lines[f"default {loser}"] = f"default {loser} {values[loser]} -> {values[winner]} ({why})"
    return moved


def _history_fits(user: Mapping[str, Any], base: Mapping[str, Any], final: Mapping[str, Any],
                  data: dict[str, Any], lines: dict[str, str]) -> None:
    """diagnostics.history_size must exceed a critical_window set from V2 (unless the user set it)."""
    window = final.get("diagnostics.stagnation.critical_window")
    size = _get(base, "diagnostics.history_size")
    if (_number(window) and _number(size) and window >= size
            and _get(user, "diagnostics.history_size") is _NOT_SET):
        _set(data, "diagnostics.history_size", int(window) + 1)
        lines["history"] = (f"default diagnostics.history_size {size} -> {int(window) + 1} (the window "
                            f"must hold diagnostics.stagnation.critical_window {window} reports)")


def _actions(user: Mapping[str, Any], base: Mapping[str, Any], data: dict[str, Any], source: str,
             error: Callable[[str], Exception], lines: dict[str, str]) -> None:
    """problem_detection.<problem>.action -> training_recovery.actions.<kind> holding only that one."""
    for problem, kind in PROBLEMS.items():
        old = f"{PD}.{problem}.action"
        action = _pop(data, old)
        if action is _NOT_SET:
            continue
        if action not in ACTIONS:
            raise error(f"{old} {action!r} is not a Smart Tuner V2 action in {source}; "
                        f"{did_you_mean(action, sorted(ACTIONS))}")
        new = f"training_recovery.actions.{kind}"
        _refuse_mixed(user, old, new, source, error)
        donor_kind, param = ACTIONS[action]
        spec = copy.deepcopy(_get(base, f"training_recovery.actions.{donor_kind}.{param}"))
        current = _get(base, new)
        dropped = [p for p in (current if isinstance(current, Mapping) else {}) if p != param]
        _set(data, new, {**{p: None for p in dropped}, param: spec})
        flow = yaml.safe_dump(spec, default_flow_style=True, sort_keys=False).strip()
        without = f"; without today's {', '.join(dropped)}" if dropped else ""
        lines[old] = f"Smart Tuner V2 key {old} {action} -> {new}: {param} {flow} only{without}"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _get(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return _NOT_SET
        tree = tree[part]
    return tree


def _pop(tree: dict[str, Any], dotted: str) -> Any:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.get(part) if isinstance(tree, dict) else None
        if not isinstance(tree, dict):
            return _NOT_SET
    return tree.pop(leaf, _NOT_SET)


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        if not isinstance(tree.get(part), dict):
            tree[part] = {}
        tree = tree[part]
    tree[leaf] = value


def _drop_empty(data: dict[str, Any], sections: tuple[str, ...]) -> None:
    """Remove the V2-only sections once every key of theirs has been rewritten."""
    for section in sections:
        value = _get(data, section)
        if isinstance(value, dict) and all(v is None or v == {} for v in value.values()):
            *parents, leaf = section.split(".")
            parent = _get(data, ".".join(parents)) if parents else data
            parent.pop(leaf)
        elif value is None:
            *parents, leaf = section.split(".")
            parent = _get(data, ".".join(parents)) if parents else data
            if isinstance(parent, dict):
                parent.pop(leaf, None)
