"""Ray Tune's per-trial ``result.json`` / ``progress.csv`` loggers, keeping every report.

Ray 2.60's loggers write into the driver's staging copy of a trial folder
(``trial.local_path``, under ``/tmp/ray/session_*/artifacts``), which Ray uploads to the
experiment folder periodically. Whenever a trial (re)starts from a checkpoint, they first copy the
experiment folder's file back over the staging copy (``LoggerCallback._restore_from_remote``,
``ray/tune/logger/logger.py``). After a Smart Tuner rollback that happens seconds after the
exploding report was written, before the next upload, so the report that triggered the
intervention was lost from ``result.json`` (3 of 5 in one ``make demo``) while ``progress.csv``
kept it by luck of timing.

The loggers here restore from the experiment folder only when the staging copy is missing or
empty, i.e. when the driver is new (``smart-tuner resume``); within one driver the staging copy is
always the newer one. Ray's own TensorBoard logger is not used: each trial writes its own
TensorBoard files (``<trial>/tensorboard``), so the trial appears once in TensorBoard, and
``InterventionMarkers`` adds a marker there at each intervention.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
from ray.tune.result import EXPR_PROGRESS_FILE

__all__ = ["InterventionMarkers", "KeepingCSVLogger", "KeepingJsonLogger", "NoRayTensorBoard",
           "trial_loggers"]


class _KeepLocal:
    def _restore_from_remote(self, file_name: str, trial: object) -> None:
        local = Path(trial.local_path, file_name)  # type: ignore[attr-defined]
        if local.is_file() and local.stat().st_size > 0:
            return  # this driver wrote it: newer than the experiment folder's copy
        super()._restore_from_remote(file_name, trial)  # type: ignore[misc]


class KeepingJsonLogger(_KeepLocal, JsonLoggerCallback):
    """``result.json`` with every report, the ones that triggered a rollback included."""


class KeepingCSVLogger(_KeepLocal, CSVLoggerCallback):
    """``progress.csv`` with every report.

    A file continued by a new writer (the trial retried after an error, or a resumed sweep) keeps
    its header's columns: Ray's writer takes them from its first report, so a key that report
    adds (the checkpoint fallback's, tuner/contract.py) shifted every later column.
    """

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        if trial not in self._trial_files:
            self._setup_trial(trial)
        if self._trial_csv[trial] is None and self._trial_continue[trial]:
            with open(Path(trial.local_path, EXPR_PROGRESS_FILE), newline="") as f:
                header = next(csv.reader(f), None)
            if header:
                self._trial_csv[trial] = csv.DictWriter(self._trial_files[trial], header)
        super().log_trial_result(iteration, trial, result)


class NoRayTensorBoard(TBXLoggerCallback):
    """Stands in for Ray's TensorBoard logger so that Ray does not add one; writes nothing."""

    _SAVED_FILE_TEMPLATES: list[str] = []

    def __init__(self) -> None:  # no tensorboardX import, no writers
        self._trial_writer: dict = {}
        self._trial_result: dict = {}

    def log_trial_start(self, trial: object) -> None:
        return None

    def log_trial_result(self, iteration: int, trial: object, result: dict) -> None:
        return None

    def log_trial_end(self, trial: object, failed: bool = False) -> None:
        return None


def trial_loggers() -> list:
    """The loggers of a Smart Tuner sweep. Passing one of each kind keeps Ray from adding its
    defaults (``ray/tune/utils/callback.py: _create_default_callbacks``)."""
    return [KeepingJsonLogger(), KeepingCSVLogger(), NoRayTensorBoard()]


class InterventionMarkers(Callback):
    """A marker in each trial's TensorBoard run at every intervention.

    Writes into ``<trial>/tensorboard`` (the trial's own run, so TensorBoard shows it beside the
    curves, not as a second run; the driver's staging copy, which Ray syncs): scalar ``smart_tuner/interventions`` (count so far) and text
    ``smart_tuner/intervention`` (the one-line summary), both at the training step of the report
    that triggered it. Interventions come from ``interventions.jsonl`` (``InterventionFeed``).
    """

    def __init__(self, experiment_dir: str | Path | None = None) -> None:
        from tuner.reporting.console import InterventionFeed

        self.feed = InterventionFeed(experiment_dir)
        self.counts: dict[str, int] = {}
        self._trial_dirs: dict[str, str] = {}
        self._steps: dict[str, dict[int, int]] = {}

    def get_state(self) -> dict[str, Any]:
        """Saved by Ray with the experiment state: a resumed sweep marks each intervention once."""
        return {"offset": self.feed.offset, "counts": dict(self.counts)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.feed.offset = max(self.feed.offset, int(state.get("offset", 0)))
        self.counts.update(state.get("counts", {}))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        tid = str(trial.trial_id)
        self._trial_dirs[tid] = str(trial.local_path)  # the driver's copy, synced by Ray
        validation, step = result.get("validation.step"), result.get("training.step")
        if isinstance(validation, (int, float)) and isinstance(step, (int, float)):
            self._steps.setdefault(tid, {})[int(validation)] = int(step)
        if self.feed.experiment_dir is None:
            from tuner.raytune._ray_compat import experiment_dir

            self.feed.experiment_dir = experiment_dir(trial)
        self.write(self.feed.poll())

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.write(self.feed.poll())

    def write(self, records: list[dict[str, Any]]) -> int:
        """Write the markers of ``records`` (trials never seen reporting are skipped)."""
        from torch.utils.tensorboard import SummaryWriter

        from tuner.core.interventions import Intervention
        from tuner.training.reporting import TENSORBOARD_SUBDIR

        written = 0
        for record in records:
            tid = str(record["trial_id"])
            if tid not in self._trial_dirs:
                continue
            self.counts[tid] = self.counts.get(tid, 0) + 1
            validation = int(record.get("step") or 0)
            step = self._steps.get(tid, {}).get(validation, validation)
            writer = SummaryWriter(str(Path(self._trial_dirs[tid], TENSORBOARD_SUBDIR)),
                                   filename_suffix=".interventions")
            writer.add_scalar("smart_tuner/interventions", self.counts[tid], step)
            writer.add_text("smart_tuner/intervention", Intervention.from_dict(record).line(), step)
            writer.close()
            written += 1
        return written
