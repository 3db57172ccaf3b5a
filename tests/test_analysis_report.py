"""Tests for tuner/reporting/analysis_report.py: summary table, report.md and curve PNGs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import pytest

from tests.test_analysis import experiment  # noqa: F401  (the constructed sweep folder fixture)
from tuner.reporting.analysis import analyze
from tuner.reporting.analysis_report import summary_rows, summary_table, write_report


def test_summary_rows(experiment: Path) -> None:  # noqa: F811
    rows = {r[0]: r for r in summary_rows(analyze(experiment))[1:]}
    assert rows["boom"][1] == "0.02 -> 0.008"
    assert rows["boom"][-2:] == ["1 (mutate)", "recovered"]
    assert rows["fifo"][2] == "nan" and rows["fifo"][-1] == "diverged"
    assert rows["healthy"][-2:] == ["0", "finished"]
    table = summary_table(analyze(experiment))
    assert table.splitlines()[0].split()[:2] == ["trial", "learning_rate"]


@pytest.mark.parametrize("metric", ["validation_loss", "grad_norm", "validation_attention_score",
                                    "validation_gate_accuracy"])
def test_write_report_makes_markdown_and_curves(experiment: Path, metric: str) -> None:  # noqa: F811
    report = write_report(analyze(experiment))
    text = report.read_text()
    assert report == experiment / "report.md"
    for heading in ("## Summary", "## Issues", "## Recommendations", "## Curves"):
        assert heading in text
    png = experiment / f"curves_{metric}.png"
    assert f"]({png.name})" in text
    img = mpimg.imread(png)
    assert img.ndim == 3 and img.shape[0] > 100


@pytest.mark.parametrize("mode, order", [
    ("min", ["boom", "healthy", "fifo", "train_tts_oom_lr=0.001"]),   # NaN and no value last
    ("max", ["healthy", "boom", "fifo", "train_tts_oom_lr=0.001"]),
])
def test_summary_ranked_by_the_metric_best_marked(experiment: Path, mode: str,  # noqa: F811
                                                  order: list[str]) -> None:
    lines = summary_table(analyze(experiment), "validation.loss", mode).splitlines()
    assert lines[0].split()[:2] == ["trial", "learning_rate"]
    body = lines[2:]
    assert [line[2:].split()[0] for line in body] == order
    assert [line[:2] for line in body] == ["* ", "  ", "  ", "  "]
