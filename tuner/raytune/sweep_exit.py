"""How a sweep ended -> the exit status of ``tune`` / ``resume`` and the summary's closing lines.

- 0: every trial ended finished, recovered or stopped by a rule (Ray status TERMINATED);
- 1: a trial errored (Ray status ERROR) or diverged (its last validation.loss is not finite);
  the closing lines name each one and its error file;
- 130: the sweep was interrupted (SIGINT): Ray saved its state and returned with trials still
  pending, running or paused; they are "interrupted" in the summary, and the closing lines give
  the ``smart-tuner resume NAME`` command.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_INTERRUPTED", "TrialEnd", "trial_ends", "exit_status",
           "closing_lines", "hide_ray_restore_hint"]

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
FINISHED, ERRORED = "TERMINATED", "ERROR"  # Ray's Trial.status values of an ended trial


@dataclass(frozen=True)
class TrialEnd:
    """Where one trial stands after ``Tuner.fit`` returned."""

    trial_id: str
    status: str  # Ray's Trial.status: TERMINATED | ERROR | PENDING | RUNNING | PAUSED
    error_file: str | None = None
    outcome: str | None = None  # the analysis outcome (finished, recovered, diverged, ...)

    @property
    def unfinished(self) -> bool:
        return self.status not in (FINISHED, ERRORED)

    @property
    def failed(self) -> bool:
        """Errored (Ray gave up on it), or ended with a non-finite validation.loss. A trial whose
        earlier attempt crashed but whose retry finished is not failed (Ray says TERMINATED)."""
        return self.status == ERRORED or (self.status == FINISHED and self.outcome == "diverged")


def trial_ends(experiment_path: str, outcomes: Mapping[str, str] | None = None) -> list[TrialEnd]:
    """The trials of the experiment state Ray saved at ``experiment_path`` (public
    ``ExperimentAnalysis``), with their analysis outcome (by trial id) when given."""
    from ray.tune import ExperimentAnalysis

    outcomes = outcomes or {}
    ends = []
    for t in ExperimentAnalysis(experiment_path).trials:
        error_file = None
        if t.status == ERRORED and t.error_file:  # the copy in the experiment folder, not /tmp/ray
            error_file = str(PurePosixPath(t.path) / PurePosixPath(t.error_file).name)
        ends.append(TrialEnd(str(t.trial_id), str(t.status), error_file,
                             outcomes.get(str(t.trial_id))))
    return ends


def exit_status(ends: Sequence[TrialEnd], num_samples: int = 0) -> int:
    """130 when a trial is unfinished or fewer than ``num_samples`` were created (the sweep was
    interrupted), else 1 when one failed, else 0."""
    if any(e.unfinished for e in ends) or len(ends) < num_samples:
        return EXIT_INTERRUPTED
    if any(e.failed for e in ends):
        return EXIT_FAILED
    return EXIT_OK


def closing_lines(ends: Sequence[TrialEnd], name: str, storage: str,
                  num_samples: int = 0) -> list[str]:
    """The last lines of the summary: the failed trials with their error files, the resume
    command of an interrupted sweep, and the exit status in words."""
    lines = []
    failed = [e for e in ends if e.failed]
    for e in failed:
        why = "errored" if e.status == ERRORED else "diverged"
        where = f": {e.error_file}" if e.error_file else ""
        lines.append(f"trial {e.trial_id} {why}{where}")
    total = max(len(ends), num_samples)
    status = exit_status(ends, num_samples)
    if status == EXIT_INTERRUPTED:
        unfinished = [e.trial_id for e in ends if e.unfinished]
        not_started = total - len(ends)
        which = ", ".join(filter(None, [_short(unfinished),
                                        f"{not_started} not started" if not_started else ""]))
        lines.append(f"interrupted: {len(unfinished) + not_started} of {total} trials unfinished "
                     f"({which}); the state is saved, continue with "
                     f"`smart-tuner resume {name} --storage {storage}`")
    elif status == EXIT_FAILED:
        lines.append(f"{len(failed)} of {total} trials failed (exit status 1)")
    return lines


def _short(ids: Iterable[str], n: int = 5) -> str:
    ids = list(ids)
    return ", ".join(ids[:n]) + (f", ... ({len(ids) - n} more)" if len(ids) > n else "")


class _NoRestoreHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Resume experiment with:" not in record.getMessage()


def hide_ray_restore_hint() -> Any:
    """Drop Ray's "Resume experiment with: Tuner.restore(...)" warning (smart-tuner prints its
    own ``smart-tuner resume NAME``). Returns the filter, installed on Ray Tune's logger."""
    logger = logging.getLogger("ray.tune.tune")
    for fil in logger.filters:
        if isinstance(fil, _NoRestoreHint):
            return fil
    fil = _NoRestoreHint()
    logger.addFilter(fil)
    return fil
