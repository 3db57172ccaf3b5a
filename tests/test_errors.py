"""tuner/errors.py: every user-mistake type of tuner/ is one UserError the CLI catches."""

from __future__ import annotations

import pytest

from tuner.analysis_io import ExperimentNotFoundError
from tuner.cli import UsageError
from tuner.config import ConfigError
from tuner.errors import UserError, user_error_types
from tuner.search_space import SearchSpaceError
from tuner.sweep import SweepError
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
