"""User mistakes: the one exception type the command line reports in one line (exit status 2).

Every validator of ``tuner/`` raises a subclass of ``UserError`` (``ConfigError``,
``SearchSpaceError``, ``TrainConfigError``, ``SweepError``, ``ExperimentNotFoundError``,
``UsageError``); its message is one line naming the file or field, the value and the fix.
``model/`` does not import ``tuner/``, so its input errors (``CorpusError``, ``DatasetError``,
``UnknownCharacterError``) are plain ``ValueError``s; ``user_error_types`` adds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["UserError", "read_yaml", "user_error_types"]


class UserError(ValueError):
    """A user mistake; the message is one line naming the file or field, the value and the fix."""


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
