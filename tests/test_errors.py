"""tuner/errors.py: every user-mistake type of tuner/ is one UserError the CLI catches; the shared
checks word a bad value in one line."""

from __future__ import annotations

import pytest

from tuner.reporting.analysis_io import ExperimentNotFoundError
from tuner.cli import UsageError
from tuner.core.config import ConfigError
from tuner.errors import Checks, UserError, did_you_mean, interval, one_of, user_error_types
from tuner.raytune.search_space import SearchSpaceError
from tuner.raytune.sweep import SweepError
from tuner.training.settings import TrainConfigError


@pytest.mark.parametrize("error", [ConfigError, SearchSpaceError, SweepError, TrainConfigError,
                                   ExperimentNotFoundError, UsageError])
def test_tuner_errors_are_user_errors_and_value_errors(error: type[Exception]) -> None:
    assert issubclass(error, UserError) and issubclass(error, ValueError)
    assert isinstance(error("x"), user_error_types())


def test_model_input_errors_are_caught_too_but_not_other_value_errors() -> None:
    from model.data import DatasetError
    from model.text import UnknownCharacterError

    caught = user_error_types()
    assert isinstance(DatasetError("x"), caught)
    assert issubclass(UnknownCharacterError, caught)
    assert not isinstance(ValueError("a bug"), caught)
    assert not isinstance(RuntimeError("a bug"), caught)


# ----------------------------------------------------------------------------- Checks
CHECK = Checks(UserError, "{name} must be {fix}, got {value!r}{type} in {source}",
               "unknown {what} {name} in {source}; {hint}", source="my.yaml")


@pytest.mark.parametrize("key, known, listing, expected", [
    ("patiense", ["enabled", "patience"], "allowed", "did you mean 'patience'?"),
    ("zzz", ["b", "a"], "known", "known: b, a"),      # the order given
    ("grid", ["uniform", "choice"], None, ""),
])
def test_did_you_mean(key: str, known: list[str], listing: str | None, expected: str) -> None:
    assert did_you_mean(key, known, listing) == expected


@pytest.mark.parametrize("args, expected", [
    ({"lo": 0, "hi": 0.9}, "a number in [0, 0.9]"),
    ({"lo": 0, "hi": 1, "lo_open": True, "hi_open": True}, "a number in (0, 1)"),
    ({"lo": 0, "hi": 0.5, "lo_open": True}, "a number in (0, 0.5]"),
    ({"lo": 0, "lo_open": True}, "a finite number > 0"),
    ({"lo": 0, "finite": False}, "a number >= 0"),
    ({"hi": 1}, "a finite number <= 1"),
    ({}, "a finite number"),
])
def test_interval_words_the_range(args: dict, expected: str) -> None:
    assert interval(**args) == expected


@pytest.mark.parametrize("options, quote, expected", [
    (("min", "max"), False, "min or max"), (("a", "b", "c"), False, "one of a, b, c"),
    (("a", "b", "c"), True, "one of 'a', 'b', 'c'"),
])
def test_one_of(options: tuple, quote: bool, expected: str) -> None:
    assert one_of(options, quote) == expected


@pytest.mark.parametrize("check, value, expected", [
    (lambda v: CHECK.number("x", v, 0, lo_open=True), 0,
     "x must be a finite number > 0, got 0 in my.yaml"),
    (lambda v: CHECK.number("x", v, 0, 1), float("nan"), "x must be a number in [0, 1], got nan in my.yaml"),
    (lambda v: CHECK.number("x", v), "1e-3",
     "x must be a finite number, got '1e-3' (str) in my.yaml"),
    (lambda v: CHECK.number("x", v), True, "x must be a finite number, got True (bool) in my.yaml"),
    (lambda v: CHECK.integer("x", v, 1), 0, "x must be an integer >= 1, got 0 in my.yaml"),
    (lambda v: CHECK.integer("x", v, 1), 2.0, "x must be an integer >= 1, got 2.0 (float) in my.yaml"),
    (lambda v: CHECK.integer("x", v, 1, null=True), "a",
     "x must be null or an integer >= 1, got 'a' (str) in my.yaml"),
    (lambda v: CHECK.flag("x", v), 1, "x must be true or false, got 1 (int) in my.yaml"),
    (lambda v: CHECK.choice("x", v, ("min", "max")), "minimize",
     "x must be min or max, got 'minimize' in my.yaml"),
    (lambda v: CHECK.mapping("x", v), [1], "x must be a mapping, got [1] (list) in my.yaml"),
    (lambda v: CHECK.text("x", v), "", "x must be a non-empty string, got '' in my.yaml"),
    (lambda v: CHECK.keys("a.", v, ("patience",)), {"patiense": 1},
     "unknown key a.patiense in my.yaml; did you mean 'patience'?"),
])
def test_checks_refuse_in_one_line(check, value: object, expected: str) -> None:
    with pytest.raises(UserError) as info:
        check(value)
    assert str(info.value) == expected


@pytest.mark.parametrize("check, value, expected", [
    (lambda v: CHECK.number("x", v, 0, 1), 1, 1.0),
    (lambda v: CHECK.number("x", v, 0, finite=False), float("inf"), float("inf")),
    (lambda v: CHECK.integer("x", v, 1, whole_floats=True), 8.0, 8),
    (lambda v: CHECK.integer("x", v, 1, null=True), None, None),
    (lambda v: CHECK.mapping("x", v, null=True), None, {}),
    (lambda v: CHECK.choice("x", v, ("a", "b")), "b", "b"),
])
def test_checks_return_the_checked_value(check, value: object, expected: object) -> None:
    got = check(value)
    assert got == expected and type(got) is type(expected)


def test_check_error_says_what_is_allowed_and_is_the_validators_type() -> None:
    from tuner.training.settings import check_value

    with pytest.raises(TrainConfigError) as info:
        check_value("dropout", 1.5)
    assert info.value.allowed == "a number in [0, 0.9]"
