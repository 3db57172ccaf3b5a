"""One writer per trial folder: every run of a trial (an *attempt*) claims the folder first.

Why: when a node is lost, Ray retries the trial elsewhere, but the old process may outlive its
raylet and go on writing checkpoints (``checkpoint_000003``) and TensorBoard files into the same
trial folder as the new attempt, over the new attempt's files.

How (all on the storage filesystem that Ray uses for the trial folder, pyarrow, so a shared
file system and an object store work alike):

1. An attempt starts with :func:`claim`: it reads the attempt number in ``<trial
   folder>/.smart_tuner_attempt`` (0 when missing), adds one and writes it back. Ray runs one
   attempt of a trial at a time, so the newest attempt holds the highest number.
2. Before every report (TensorBoard, checkpoint, ``tune.report``) the attempt calls
   :func:`check`: when the file holds a higher number, a newer attempt owns the folder and
   ``SupersededAttemptError`` ends this one without writing anything.
3. The check and the write are not one atomic step, so a checkpoint can still land just after a
   newer attempt claimed the folder. Checkpoints therefore record their attempt in the file name
   (``checkpoint.pt`` for attempt 1, ``checkpoint.attempt<N>.pt`` from 2 on, see
   tuner/training/checkpoint.py), and a restore reads the highest attempt's file in the
   checkpoint folder: an older attempt's later file never replaces a newer attempt's one.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from typing import Any

__all__ = ["ATTEMPT_FILE", "SupersededAttemptError", "claim", "check", "current"]

ATTEMPT_FILE = ".smart_tuner_attempt"


class SupersededAttemptError(RuntimeError):
    """A newer attempt of this trial owns its folder; this attempt must stop writing."""


def _path(folder: str) -> str:
    return f"{folder.rstrip('/')}/{ATTEMPT_FILE}"


def current(fs: Any, folder: str) -> int:
    """The attempt number that owns ``folder`` on pyarrow filesystem ``fs`` (0: none yet)."""
    try:
        with fs.open_input_stream(_path(folder)) as f:
            return int(json.loads(f.read().decode("utf-8"))["attempt"])
    except (FileNotFoundError, OSError, ValueError, KeyError, TypeError):
        return 0


def claim(fs: Any, folder: str) -> int:
    """Make a new attempt the owner of ``folder``; returns its number (1, 2, ...)."""
    attempt = current(fs, folder) + 1
    fs.create_dir(folder, recursive=True)
    body = json.dumps({"attempt": attempt, "host": socket.gethostname(), "pid": os.getpid()})
    tmp = f"{_path(folder)}.{uuid.uuid4().hex}.tmp"
    with fs.open_output_stream(tmp) as f:
        f.write(body.encode("utf-8"))
    fs.move(tmp, _path(folder))   # a rename on a local/shared file system: readers see old or new
    return attempt


def check(fs: Any, folder: str, attempt: int) -> None:
    """Raise SupersededAttemptError when a newer attempt than ``attempt`` owns ``folder``."""
    owner = current(fs, folder)
    if owner > attempt:
        raise SupersededAttemptError(
            f"attempt {attempt} of the trial in {folder} stops: attempt {owner} owns the folder "
            "(this process outlived its node; the trial goes on in the newer attempt)")
