"""Checkpoint files of ``train_tts`` and the RNG states inside them.

A checkpoint is one file, ``checkpoint.pt``, holding a dict of tensors and plain Python types
only, so ``torch.load(path, weights_only=True)`` reads it:

``format`` (int), ``model`` / ``optimizer`` / ``scaler`` (state dicts), ``schedule``
(``{"start_step"}``), ``step``, ``validation_step``, ``epoch``, ``batch_in_epoch``,
``batch_size``, ``restart_generation``, ``nan_skips``, ``restored_from_nan``,
``initial_learning_rate``, ``best`` (``{metric: float}``), ``rng`` (see ``capture_rng``),
``attempt``.

The file is named by the attempt that wrote it (tuner/training/attempts.py): ``checkpoint.pt``
for attempt 1 (and without attempts), ``checkpoint.attempt<N>.pt`` from attempt 2 on. When a
folder holds several (an attempt that outlived its node wrote there after a newer attempt),
``load_checkpoint`` reads the newest attempt's file.
"""

from __future__ import annotations

import io
import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CHECKPOINT_FILE",
    "checkpoint_file",
    "FORMAT",
    "capture_rng",
    "restore_rng",
    "save_checkpoint",
    "load_checkpoint",
    "load_readable_checkpoint",
    "CheckpointUnreadableError",
    "to_bytes",
    "from_bytes",
]

CHECKPOINT_FILE = "checkpoint.pt"
_ATTEMPT_NAME = re.compile(r"checkpoint(?:\.attempt(\d+))?\.pt")
FORMAT = 1


def capture_rng() -> dict[str, Any]:
    """RNG states as weights_only-safe values.

    ``torch``: ByteTensor; ``cuda``: list of ByteTensors (empty without CUDA); ``numpy``:
    ``{"keys": uint32 tensor as int64, "pos", "has_gauss", "cached_gaussian"}``;
    ``python``: ``{"version", "state": list[int], "gauss": float | None}``.
    """
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # MT19937 always
    version, state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "state": list(state), "gauss": gauss},
    }


def restore_rng(rng: dict[str, Any]) -> None:
    """Set the torch, CUDA (when both sides have it), numpy and python RNGs from ``capture_rng``."""
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
    npst = rng["numpy"]
    np.random.set_state(
        ("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
         npst["cached_gaussian"])
    )
    py = rng["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))


def checkpoint_file(attempt: int | None = None) -> str:
    """The checkpoint file name written by ``attempt`` (None or 1: ``checkpoint.pt``)."""
    return CHECKPOINT_FILE if attempt is None or attempt <= 1 else f"checkpoint.attempt{attempt}.pt"


def _newest_attempt_file(directory: Path) -> Path | None:
    """The checkpoint file of the highest attempt in ``directory`` (None: no checkpoint file)."""
    found = []
    for path in directory.glob("checkpoint*.pt"):
        match = _ATTEMPT_NAME.fullmatch(path.name)
        if match:
            found.append((int(match.group(1) or 1), path))
    return max(found)[1] if found else None


def save_checkpoint(state: dict[str, Any], directory: str | Path, attempt: int | None = None) -> Path:
    """Write ``state`` to ``directory/<checkpoint_file(attempt)>`` and return the file's path."""
    path = Path(directory) / checkpoint_file(attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Read the newest attempt's checkpoint file in ``directory`` (``weights_only=True``, CPU)."""
    path = _newest_attempt_file(Path(directory))
    if path is None:
        raise FileNotFoundError(f"no {CHECKPOINT_FILE} in checkpoint folder {str(directory)!r}")
    return torch.load(path, map_location="cpu", weights_only=True)


class CheckpointUnreadableError(RuntimeError):
    """No readable checkpoint to resume from: the message names the file and the fix."""


def load_readable_checkpoint(directory: str | Path) -> tuple[dict[str, Any], Path]:
    """Read ``directory``'s checkpoint (:func:`load_checkpoint`), or, when that cannot be read
    (truncated, overwritten, missing), the newest readable *older* checkpoint beside it; returns
    (state, folder read).

    Checkpoint folders sort by name in the order they were written (Ray's ``checkpoint_000007``,
    LocalSession's ``checkpoint_0007``); a newer one is never used (it may be the very state a
    rollback undoes). A folder not named so (Ray's temporary download of a checkpoint kept in
    remote storage) has no older ones beside it. A fallback is reported in one line on stderr
    naming the unreadable file and the one restored; none readable: CheckpointUnreadableError.
    """
    folder = Path(directory)
    numbered = re.fullmatch(r"checkpoint_(\d+)", folder.name)   # not a download (checkpoint_tmp_*)
    older = [] if numbered is None else sorted(
        (p for p in folder.parent.glob("checkpoint_*") if p.is_dir() and p.name < folder.name
         and re.fullmatch(rf"checkpoint_\d{{{len(numbered.group(1))}}}", p.name)), reverse=True)
    candidates = [folder, *older]
    asked = _newest_attempt_file(folder) or folder / CHECKPOINT_FILE   # the file named in messages
    first_error = ""
    for candidate in candidates:
        try:
            state = load_checkpoint(candidate)
        except Exception as err:  # torch's zip reader / unpickler errors, a missing file
            first_error = first_error or (str(err).splitlines() or [type(err).__name__])[0]
            continue
        if candidate != folder:
            print(f"smart-tuner: checkpoint {asked} cannot be read "
                  f"({first_error}); restored the newest readable older one, {candidate}",
                  file=sys.stderr, flush=True)
        return state, candidate
    raise CheckpointUnreadableError(
        f"checkpoint {asked} cannot be read ({first_error}) and no older "
        f"readable checkpoint is in {folder.parent}; fix: restart the trial from scratch (raise "
        "_restart_generation) or put the file back")


def to_bytes(state: dict[str, Any]) -> bytes:
    """The checkpoint as bytes (the in-process copy used to recover from non-finite weights)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def from_bytes(data: bytes) -> dict[str, Any]:
    """Inverse of ``to_bytes`` (weights_only, CPU)."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
