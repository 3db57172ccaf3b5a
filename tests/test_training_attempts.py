"""One writer per trial folder: two attempts of train_tts against one folder (LocalSession).

Attempt 1 reports once; then (inside its report, as when its node is lost and Ray starts the
trial elsewhere) attempt 2 claims the same folder, resumes from attempt 1's checkpoint and runs
to the end, writing its checkpoints under the same names (``checkpoint_0000``, ...). Attempt 1
then goes on, as a process that outlived its node does: its next report must fail with
SupersededAttemptError before it writes anything, and a checkpoint file it manages to write late
(the check and the write are two steps) must not be what a restore reads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import torch
from pyarrow.fs import LocalFileSystem

from tests.test_trainable import SMALL_MODEL
from tuner.trainable import LocalSession, TrainSettings, run_training
from tuner.training import attempts
from tuner.training.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from tuner.training.loop import Trainer


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def _files(root: Path) -> dict[str, str]:
    """Every file under ``root`` (the claim file aside) -> sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != attempts.ATTEMPT_FILE}


def test_claim_and_check(tmp_path: Path) -> None:
    fs, folder = LocalFileSystem(), str(tmp_path / "trial")
    assert attempts.current(fs, folder) == 0
    assert [attempts.claim(fs, folder) for _ in range(3)] == [1, 2, 3]
    attempts.check(fs, folder, 3)           # the owner may write
    with pytest.raises(attempts.SupersededAttemptError, match="attempt 2 .* attempt 3 owns"):
        attempts.check(fs, folder, 2)
    assert [p.name for p in (tmp_path / "trial").iterdir()] == [attempts.ATTEMPT_FILE]  # no temp left


def test_restore_reads_the_newest_attempts_file(tmp_path: Path) -> None:
    save_checkpoint({"step": 4, "attempt": 2}, tmp_path, attempt=2)
    save_checkpoint({"step": 6, "attempt": 1}, tmp_path, attempt=1)   # written later, older attempt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.attempt2.pt", CHECKPOINT_FILE]
    assert load_checkpoint(tmp_path) == {"step": 4, "attempt": 2}
    save_checkpoint({"step": 8, "attempt": 10}, tmp_path, attempt=10)   # numeric, not text, order
    assert load_checkpoint(tmp_path)["attempt"] == 10


def test_an_attempt_that_outlived_its_node_cannot_overwrite_the_newer_one(
        corpus_dir: Path, tmp_path: Path) -> None:
    config: dict[str, Any] = {
        "data_dir": str(corpus_dir), "cache_dir": str(tmp_path / "cache"), "model": SMALL_MODEL,
        "batch_size": 3, "max_steps": 6, "validation_interval": 2, "num_threads": 1,
        "tensorboard": True, "lr_schedule": "constant", "seed": 7,
    }
    root = tmp_path / "trial"
    events: list[str] = []
    newer: dict[str, Any] = {}

    def newer_attempt_starts(metrics: dict[str, float], checkpoint: Path) -> None:
        if newer:
            return
        events.append(f"attempt 1 reported validation {int(metrics['validation.step'])}")
        resume = tmp_path / "resume_from"          # Ray hands the new attempt a copy
        resume.mkdir()
        (resume / CHECKPOINT_FILE).write_bytes((checkpoint / CHECKPOINT_FILE).read_bytes())
        session = LocalSession(root, resume_from=resume)
        newer["trainer"] = run_training(config, session)
        newer["session"] = session
        newer["files"] = _files(root)
        events.append("attempt 2 finished")

    older_session = LocalSession(root, on_report=newer_attempt_starts)
    older = Trainer(TrainSettings.from_config(config), older_session, config)
    with pytest.raises(attempts.SupersededAttemptError, match="attempt 1 .* attempt 2 owns"):
        older.run()
    events.append("attempt 1 stopped")

    assert events == ["attempt 1 reported validation 1", "attempt 2 finished", "attempt 1 stopped"]
    assert (older.attempt, newer["trainer"].attempt) == (1, 2)
    assert len(older_session.reports) == 1                 # its second report never happened
    assert _files(root) == newer["files"]                   # nothing of attempt 2's was touched
    reports = newer["session"].reports
    assert [r["validation.step"] for r in reports] == [2.0, 3.0]   # resumed after validation 1
    # attempt 2 wrote checkpoint_0000 again: beside attempt 1's file, under its own name
    first = root / "checkpoint_0000"
    assert sorted(p.name for p in first.iterdir()) == ["checkpoint.attempt2.pt", CHECKPOINT_FILE]
    assert load_checkpoint(first)["attempt"] == 2 and load_checkpoint(first)["validation_step"] == 2

    # The race: attempt 1 passed its check just before attempt 2 claimed the folder, and writes
    # its next checkpoint into checkpoint_0001 late. A restore must still read attempt 2's.
    late = older.state_dict()
    save_checkpoint(late, root / "checkpoint_0001", attempt=older.attempt)
    state = load_checkpoint(root / "checkpoint_0001")
    assert (state["attempt"], state["validation_step"]) == (2, 3)
    third = Trainer(TrainSettings.from_config(config), LocalSession(root, resume_from=root /
                                                                    "checkpoint_0001"), config)
    third.setup()
    assert (third.attempt, third.step, third.validation_step) == (3, 6, 3)
