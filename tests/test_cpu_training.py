"""benchmarks/probes/cpu_training.py: the BENCHMARKS.md section it writes (no training here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.probes.cpu_training import BEGIN, END, markdown, write_section

RESULT = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "cpu_training.json"


@pytest.fixture
def result() -> dict:
    return json.loads(RESULT.read_text())


@pytest.mark.parametrize("reached, expected", [(True, "alignment_at_0.5.png"), (False, "not reached in")])
def test_markdown_names_the_command_and_figures(result: dict, reached: bool, expected: str) -> None:
    text = markdown({**result, "reached": reached})
    assert expected in text and result["command"] in text and "peak RSS" in text


def test_write_section_touches_only_its_markers(tmp_path: Path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(f"head\n{BEGIN}\nold\n{END}\n<!-- demo:begin -->\nkeep\n<!-- demo:end -->\n")
    write_section("new\n", doc)
    assert doc.read_text() == f"head\n{BEGIN}\nnew\n{END}\n<!-- demo:begin -->\nkeep\n<!-- demo:end -->\n"
