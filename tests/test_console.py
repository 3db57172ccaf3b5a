"""Tests for tuner/reporting/console.py: the progress table, quiet output, and the intervention feed."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest

from tuner.reporting.console import COLUMNS, InterventionFeed, SweepProgress, format_table


def _row(trial: str, loss: float | None, status: str = "RUNNING") -> dict:
    return {"trial": trial, "status": status, "interventions": 0, "training.step": 50,
            "validation.loss": loss, "validation.attention_score": 0.5,
            "validation.gate_accuracy": 0.9, "learning_rate": 1e-3}


def test_columns_are_the_metrics_that_matter() -> None:
    lines = format_table([_row("a", 1.0)])
    assert lines[0].split() == ["trial", "status", "step", "validation.loss", "attention",
                                "gate.acc", "lr", "interventions"]
    assert [key for _, key in COLUMNS] == ["training.step", "validation.loss",
                                           "validation.attention_score",
                                           "validation.gate_accuracy", "learning_rate"]


@pytest.mark.parametrize(
    "losses, mode, best",
    [
        ([2.0, 1.0, 3.0], "min", 1),
        ([2.0, 1.0, 3.0], "max", 2),
        ([math.nan, 1.5, None], "min", 1),      # NaN and missing never win
        ([math.nan, None], "min", None),         # nothing finite: nobody marked
    ],
)
def test_best_row_is_marked(losses: list, mode: str, best: int | None) -> None:
    rows = [_row(f"t{i}", v) for i, v in enumerate(losses)]
    body = format_table(rows, "validation.loss", mode)[1:]
    marked = [i for i, line in enumerate(body) if line.startswith("* ")]
    assert marked == ([] if best is None else [best])
    for line, value in zip(body, losses):  # NaN is shown as nan, a missing value as -
        assert line[2:].split()[3] == ("-" if value is None else "nan" if math.isnan(value)
                                   else f"{value:.4g}")


def test_feed_reads_new_whole_lines_only(tmp_path: Path) -> None:
    feed = InterventionFeed(tmp_path)
    assert feed.poll() == []                       # no file yet
    path = tmp_path / "interventions.jsonl"
    path.write_text(json.dumps({"trial_id": "a", "step": 1}) + "\n" + '{"trial_id": "b", "st')
    assert [r["trial_id"] for r in feed.poll()] == ["a"]   # the half-written line waits
    with path.open("a") as f:
        f.write('ep": 2}\n' + "not json\n" + json.dumps({"trial_id": "c", "step": 3}) + "\n")
    assert [r["trial_id"] for r in feed.poll()] == ["b", "c"]
    assert feed.poll() == []


class _Trial:
    def __init__(self, trial_id: str, status: str = "RUNNING") -> None:
        self.trial_id, self.status = trial_id, status


def test_progress_prints_a_table_only_after_new_results_and_counts_interventions(
        tmp_path: Path) -> None:
    out = io.StringIO()
    progress = SweepProgress("validation.loss", "min", tmp_path, interval_s=0.0, out=out)
    trials = [_Trial("a"), _Trial("b")]
    progress.on_step_end(0, trials)
    assert out.getvalue() == ""                   # nothing reported yet: no table
    result = {"training.step": 25, "validation.loss": 1.25, "validation.attention_score": 0.4,
              "validation.gate_accuracy": 0.8, "learning_rate": 2e-3}
    (tmp_path / "interventions.jsonl").write_text(
        json.dumps({"trial_id": "a", "step": 1, "action": "mutate"}) + "\n")
    progress.on_trial_result(0, trials, trials[0], result)
    progress.on_step_end(1, trials)
    progress.on_step_end(2, trials)               # no new result: no second table
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and lines[0].startswith("== 0:00:")
    assert lines[2].split() == ["*", "a", "RUNNING", "25", "1.25", "0.4", "0.8", "0.002", "1"]
    assert lines[3].split() == ["b", "RUNNING", "-", "-", "-", "-", "-", "0"]
    trials[0].status = "TERMINATED"
    progress.on_trial_complete(3, trials, trials[0])
    assert out.getvalue().splitlines()[-1] == (
        "[smart-tuner] trial a finished at step 25: validation.loss 1.25, 1 interventions")
