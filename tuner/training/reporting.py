"""One report of ``train_tts``: checkpoint file + TensorBoard + ``session.report``.

TensorBoard files go to ``<trial dir>/tensorboard`` (``tuner.reporting.tracking.TrialBoard``): every
reported metric as a scalar at the training step, and at each validation the alignment, target
vs predicted mel and gate images of one validation utterance (also as PNG files in
``<trial dir>/validation_images``, which the MLflow callback logs to the trial's run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.training.checkpoint import save_checkpoint, to_bytes
from tuner.training.evaluate import ValidationSample
from tuner.training.session import TrialSession, scratch_dir

__all__ = ["Reporter", "TENSORBOARD_SUBDIR"]

TENSORBOARD_SUBDIR = "tensorboard"
IMAGES_SUBDIR = "validation_images"  # PNG copies of the validation images, logged to MLflow


class Reporter:
    """Writes checkpoints and TensorBoard files and reports through a ``TrialSession``."""

    def __init__(self, session: TrialSession, tensorboard: bool, attempt: int | None = None) -> None:
        self.session = session
        self.tensorboard = tensorboard
        self.attempt = attempt   # this run's claim on the trial folder (tuner/training/attempts.py)
        self._board: Any | None = None

    @staticmethod
    def encode(state: Mapping[str, Any]) -> bytes:
        """The checkpoint's bytes (kept in memory for in-process recovery)."""
        return to_bytes(dict(state))

    def _board_for_trial(self) -> Any:
        if self._board is None:
            from tuner.reporting.tracking import TrialBoard

            trial_dir = self.session.trial_dir()
            self._board = TrialBoard(trial_dir / TENSORBOARD_SUBDIR, trial_dir / IMAGES_SUBDIR)
        return self._board

    def report(
        self, step: int, metrics: Mapping[str, float], state: Mapping[str, Any],
        sample: ValidationSample | None,
    ) -> bytes:
        """Log to TensorBoard, write the checkpoint file, report; returns the checkpoint's bytes.

        Nothing is written once a newer attempt owns the trial folder (SupersededAttemptError).
        """
        if self.attempt is not None:
            self.session.check_attempt(self.attempt)
        if self.tensorboard:
            board = self._board_for_trial()
            board.log_scalars(step, metrics)
            if sample is not None:
                board.log_validation(step, sample.alignment, sample.mel_target, sample.mel_predicted,
                                     sample.gate_predicted, sample.gate_target)
        with scratch_dir() as folder:
            path = save_checkpoint(dict(state), folder, self.attempt)
            data = path.read_bytes()
            self.session.report(metrics, folder)
        return data

    def close(self) -> None:
        if self._board is not None:
            self._board.close()
            self._board = None
