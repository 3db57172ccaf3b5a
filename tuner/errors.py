"""User mistakes: the one exception type the command line reports in one line (exit status 2).

Every validator of ``tuner/`` raises a subclass of ``UserError`` (``ConfigError``,
``SearchSpaceError``, ``TrainConfigError``, ``SweepError``, ``ExperimentNotFoundError``,
``UsageError``); its message is one line naming the file or field, the value and the fix.
``model/`` does not import ``tuner/``, so its input errors (``CorpusError``, ``DatasetError``,
``UnknownCharacterError``) are plain ``ValueError``s; ``user_error_types`` adds them.
"""

from __future__ import annotations

__all__ = ["UserError", "user_error_types"]


class UserError(ValueError):
    """A user mistake; the message is one line naming the file or field, the value and the fix."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """``UserError`` and the input errors of ``model/`` (imported here, on first need)."""
    from model.corpus import CorpusError
    from model.data import DatasetError
    from model.text import UnknownCharacterError

    return (UserError, CorpusError, DatasetError, UnknownCharacterError)
