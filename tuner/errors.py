"""User mistakes: the one exception type the command line reports in one line (exit status 2).

Every validator of ``tuner/`` raises a subclass of ``UserError`` (``ConfigError``,
``SearchSpaceError``, ``TrainConfigError``, ``SweepError``, ``ExperimentNotFoundError``,
``UsageError``); its message is one line naming the file or field, the value and the fix.
``model/`` does not import ``tuner/``, so its input errors (``CorpusError``, ``DatasetError``,
``UnknownCharacterError``) are plain ``ValueError``s; ``user_error_types`` adds them.

The validators (tuner/core/config.py, tuner/raytune/search_space.py, tuner/training/settings.py) check values
one way, with ``Checks``: keys with a did-you-mean, types, number ranges and choices, each
mistake worded in the validator's one-line shape. ``read_yaml`` is the one YAML reader.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Checks", "UserError", "did_you_mean", "interval", "one_of", "read_yaml",
           "user_error_types"]


class UserError(ValueError):
    """A user mistake; the message is one line naming the file or field, the value and the fix."""

    allowed: str | None = None   # what the field accepts (set by Checks), for messages elsewhere


def user_error_types() -> tuple[type[BaseException], ...]:
    """``UserError`` and the input errors of ``model/`` (imported here, on first need)."""
    from model.corpus import CorpusError
    from model.data import DatasetError
    from model.text import UnknownCharacterError

    return (UserError, CorpusError, DatasetError, UnknownCharacterError)


def read_yaml(path: Path, error: type[UserError]) -> Any:
    """The YAML document in the existing file `path` (yaml.safe_load); a syntax error raises
    `error` in one line with the line and column: ``my.yaml: invalid YAML at line 2, column 1: ...``."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{path}: invalid YAML{where}: {problem}; fix the YAML syntax") from None


# ----------------------------------------------------------------------------- checks
def did_you_mean(key: Any, known: Iterable[str], listing: str | None = "allowed") -> str:
    """The hint of an unknown-name message: ``did you mean 'max_steps'?`` for a near miss, else
    ``<listing>: a, b, c`` (the names in the order given; "" when ``listing`` is None)."""
    known = list(known)
    close = difflib.get_close_matches(str(key), known, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "" if listing is None else f"{listing}: {', '.join(known)}"


def one_of(options: Sequence[Any], quote: bool = False) -> str:
    """``min or max``, ``one of smart, fifo, asha`` (``quote``: ``one of 'a', 'b', 'c'``)."""
    names = [repr(o) if quote else str(o) for o in options]
    return " or ".join(names) if len(names) == 2 else "one of " + ", ".join(names)


def interval(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
             hi_open: bool = False, finite: bool = True) -> str:
    """What a number range allows: ``a number in (0, 0.5]``, ``a finite number > 0``, ``a number``."""
    if lo is not None and hi is not None:
        return f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    text = "a finite number" if finite else "a number"
    if lo is not None:
        return f"{text} {'>' if lo_open else '>='} {lo:g}"
    return text if hi is None else f"{text} {'<' if hi_open else '<='} {hi:g}"


class Checks:
    """One validator's checks and the one way it words a mistake.

    Each check returns the checked value or raises ``error`` (a UserError) in one line, made from
    ``shape`` with ``{name}`` (the field as the user writes it), ``{value!r}``, ``{fix}`` (``use``
    applied to what is allowed, or a fix of the caller's), ``{type}`` (`` (str)`` when the value's
    type is wrong, else "") and ``context`` (e.g. ``{source}``); an unknown name is worded by
    ``unknown_shape`` (``{name}``, ``{key!r}``, ``{what}``, ``{hint}``, ``context``) with
    ``listing`` naming the known names when none is close. The error's ``allowed`` attribute is
    what the check accepts, for messages about other places.
    """

    def __init__(self, error: type[UserError], shape: str, unknown_shape: str, *,
                 use: str = "{}", listing: str = "allowed", quote: bool = False,
                 **context: Any) -> None:
        self.error, self.shape, self.unknown_shape = error, shape, unknown_shape
        self.use, self.listing, self.quote, self.context = use, listing, quote, context

    def fail(self, name: str, value: Any, allowed: str, *, fix: str | None = None,
             wrong_type: bool = False) -> UserError:
        """The error for ``value`` of field ``name``: ``allowed`` is what the field accepts."""
        kind = f" ({type(value).__name__})" if wrong_type else ""
        fix = self.use.format(allowed) if fix is None else fix
        err = self.error(self.shape.format(name=name, value=value, fix=fix, type=kind,
                                           **self.context))
        err.allowed = allowed
        return err

    def unknown(self, name: str, key: Any, known: Iterable[str], what: str = "key") -> UserError:
        """The error for the unknown name ``key`` (field ``name``) with a did-you-mean."""
        hint = did_you_mean(key, known, self.listing)
        return self.error(self.unknown_shape.format(name=name, key=key, what=what, hint=hint,
                                                    **self.context))

    def keys(self, prefix: str, data: Mapping[Any, Any], known: Sequence[str]) -> None:
        """Every key of ``data`` is in ``known``."""
        for key in data:
            if key not in known:
                raise self.unknown(f"{prefix}{key}", key, known)

    def mapping(self, name: str, value: Any, allowed: str = "a mapping",
                null: bool = False) -> Mapping[Any, Any]:
        """A mapping (``null``: None reads as an empty one)."""
        if value is None and null:
            return {}
        if isinstance(value, Mapping):
            return value
        raise self.fail(name, value, allowed, wrong_type=True)

    def flag(self, name: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        raise self.fail(name, value, "true or false", wrong_type=True)

    def text(self, name: str, value: Any, null: bool = False) -> str | None:
        """A non-empty string (``null``: or None)."""
        if (value is None and null) or (isinstance(value, str) and value):
            return value
        raise self.fail(name, value, "a non-empty string" + (" or null" if null else ""))

    def choice(self, name: str, value: Any, options: Sequence[Any]) -> Any:
        if value in options:
            return value
        raise self.fail(name, value, one_of(options, self.quote))

    def integer(self, name: str, value: Any, lo: int | None = None, *, null: bool = False,
                whole_floats: bool = False) -> Any:
        """An int (not a bool) >= ``lo``; ``whole_floats``: 8.0 reads as 8; ``null``: or None."""
        allowed = ("null or " if null else "") + "an integer" + ("" if lo is None else f" >= {lo}")
        if value is None and null:
            return None
        if whole_floats and isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, value, allowed, wrong_type=True)
        if lo is not None and value < lo:
            raise self.fail(name, value, allowed)
        return value

    def number(self, name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
               lo_open: bool = False, hi_open: bool = False, finite: bool = True) -> float:
        """An int or float (not a bool) as a float, inside the range (``finite``: not NaN/Inf)."""
        allowed = interval(lo, hi, lo_open, hi_open, finite)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, value, allowed, wrong_type=True)
        x = float(value)
        if ((finite and not math.isfinite(x)) or (lo is not None and (x < lo or (lo_open and x == lo)))
                or (hi is not None and (x > hi or (hi_open and x == hi)))):
            raise self.fail(name, value, allowed)
        return x
