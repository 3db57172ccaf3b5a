"""Folders the command line writes to: checked before anything is written, one line when not."""

from __future__ import annotations

import os
from pathlib import Path

from tuner.errors import UserError

__all__ = ["FolderError", "check_writable", "make_folder"]


class FolderError(UserError):
    """A folder smart-tuner must write to cannot be written (names the folder and the fix)."""


def check_writable(path: str | Path, what: str) -> None:
    """Raise FolderError unless ``path`` is a writable folder or could be created as one.

    Creates nothing: it looks at the nearest existing ancestor (a file there, or no write
    permission, read-only file system or immutable flag, which ``os.access`` reports even for
    root). ``what`` names the option in the message, e.g. ``--storage``.
    """
    p = Path(path).expanduser().absolute()
    existing = p
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FolderError(f"{what} {p}: {existing} is a file, not a folder; pick another folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FolderError(f"{what} {p}: cannot write in {existing} (read-only or no permission); "
                          "pick a writable folder")


def make_folder(path: str | Path, what: str) -> Path:
    """``mkdir -p path``; an OSError (permission, read-only, a file in the way) becomes one line."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FolderError(f"{what} {p}: cannot create it ({err.strerror}); pick a writable "
                          "folder") from None
    return p
