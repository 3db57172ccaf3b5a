"""tuner/raytune/sweep_exit.py: how the trials ended -> exit status and closing lines (no Ray)."""

from __future__ import annotations

import logging

import pytest

from tuner.raytune.sweep_exit import TrialEnd, closing_lines, exit_status, hide_ray_restore_hint

OK = TrialEnd("a", "TERMINATED", outcome="finished")
RECOVERED = TrialEnd("b", "TERMINATED", outcome="recovered")
STOPPED = TrialEnd("c", "TERMINATED", outcome="stopped")
ERRORED = TrialEnd("d", "ERROR", error_file="/runs/x/train_tts_d/error.txt", outcome="crashed")
DIVERGED = TrialEnd("e", "TERMINATED", outcome="diverged")
RUNNING = TrialEnd("f", "RUNNING", outcome="interrupted")
PENDING = TrialEnd("g", "PENDING")
PAUSED = TrialEnd("h", "PAUSED")
RETRIED = TrialEnd("i", "TERMINATED", outcome="crashed")  # an attempt crashed, Ray's retry finished


@pytest.mark.parametrize("ends, expected", [
    ([OK], 0),
    ([OK, RECOVERED, STOPPED], 0),
    ([RETRIED], 0),
    ([], 0),
    ([OK, ERRORED], 1),
    ([ERRORED, ERRORED], 1),
    ([OK, DIVERGED], 1),
    ([OK, RUNNING], 130),
    ([PENDING], 130),
    ([PAUSED, OK], 130),
    ([ERRORED, RUNNING], 130),  # interrupted wins: the sweep is not over
])
def test_exit_status(ends: list[TrialEnd], expected: int) -> None:
    assert exit_status(ends) == expected


@pytest.mark.parametrize("ends, expected", [
    ([OK, RECOVERED, STOPPED], []),
    ([OK, ERRORED], ["trial d errored: /runs/x/train_tts_d/error.txt",
                     "1 of 2 trials failed (exit status 1)"]),
    ([DIVERGED], ["trial e diverged", "1 of 1 trials failed (exit status 1)"]),
    ([OK, RUNNING, PENDING], ["interrupted: 2 of 3 trials unfinished (f, g); the state is saved, "
                              "continue with `smart-tuner resume sweep --storage /runs`"]),
    ([ERRORED, PAUSED], ["trial d errored: /runs/x/train_tts_d/error.txt",
                         "interrupted: 1 of 2 trials unfinished (h); the state is saved, "
                         "continue with `smart-tuner resume sweep --storage /runs`"]),
])
def test_closing_lines(ends: list[TrialEnd], expected: list[str]) -> None:
    assert closing_lines(ends, "sweep", "/runs") == expected


@pytest.mark.parametrize("ends, num_samples, status, last", [
    ([OK, RECOVERED], 2, 0, None),
    ([OK], 3, 130, "interrupted: 2 of 3 trials unfinished (2 not started); the state is saved, "
                   "continue with `smart-tuner resume sweep --storage /runs`"),
    ([], 2, 130, "interrupted: 2 of 2 trials unfinished (2 not started); the state is saved, "
                 "continue with `smart-tuner resume sweep --storage /runs`"),
    ([RUNNING], 2, 130, "interrupted: 2 of 2 trials unfinished (f, 1 not started); the state is "
                        "saved, continue with `smart-tuner resume sweep --storage /runs`"),
    ([ERRORED], 1, 1, "1 of 1 trials failed (exit status 1)"),
])
def test_trials_never_created_count_as_interrupted(ends: list[TrialEnd], num_samples: int,
                                                   status: int, last: str | None) -> None:
    """Ctrl+C before the searcher created every sample: fewer trials than num_samples."""
    assert exit_status(ends, num_samples) == status
    lines = closing_lines(ends, "sweep", "/runs", num_samples)
    assert (lines[-1] if lines else None) == last


def test_many_unfinished_trials_are_shortened() -> None:
    ends = [TrialEnd(str(i), "PENDING") for i in range(8)]
    (line,) = closing_lines(ends, "s", "/r")
    assert "(0, 1, 2, 3, 4, ... (3 more))" in line


def test_ray_restore_hint_is_dropped_and_other_warnings_kept(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("ray.tune.tune")
    fil = hide_ray_restore_hint()
    try:
        with caplog.at_level(logging.WARNING, logger="ray.tune.tune"):
            logger.warning("Experiment has been interrupted, but the most recent state was saved.\n"
                           "Resume experiment with: Tuner.restore(path=\"/x\", trainable=...)")
            logger.warning("Stop signal received")
        assert [r.getMessage() for r in caplog.records] == ["Stop signal received"]
    finally:
        logger.removeFilter(fil)
