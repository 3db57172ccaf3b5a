"""Tests for tuner/cli.py: one-line errors with exit status 2, and one real end-to-end sweep."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuner.cli import main

REPO = Path(__file__).resolve().parents[1]
GOOD = """
num_samples: 2
config: {preset: tiny}
search:
  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["tune"], "the following arguments are required: --search-space"),
        (["tune", "--search-space", "{missing}"], "search space file"),
        (["tune", "--search-space", "{bad_yaml}"], "invalid YAML at line"),
        (["tune", "--search-space", "{unknown_type}"], "unknown search type; did you mean 'uniform'"),
        (["tune", "--search-space", "{negative}"], "negative bound"),
        (["tune", "--search-space", "{good}", "--scheduler", "hyperband"],
         "argument --scheduler: invalid choice: 'hyperband'"),
        (["tune", "--search-space", "{good}", "--num-samples", "0"], "0 must be >= 1"),
        (["tune", "--search-space", "{good}", "--gpus-per-trial", "-1"], "-1.0 must be >= 0"),
        (["tune", "--search-space", "{good}", "--config", "{missing}"], "not found"),
        (["tune", "--search-space", "{good}", "--config", "{bad_config}"], "bad_config.yaml"),
        (["tune", "--search-space", "{good}", "--storage", "{tmp}", "--name", "taken"],
         "experiment 'taken' already exists"),
        (["tune", "--search-space", "{good}", "--name", "a/b"], "must be a plain folder name"),
        (["resume", "nothing", "--storage", "{tmp}"], "no experiment 'nothing' in"),
        (["resume", "taken", "--storage", "{tmp}"], "was not started by `smart-tuner tune`"),
        (["analyze", "nothing", "--storage", "{tmp}"], "not found; check NAME and --storage"),
        (["analyze", "taken", "--storage", "{tmp}"], "holds no trial results"),
        (["corpus"], "the following arguments are required: DIR"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                            argv: list[str], expected: str) -> None:
    files = {
        "missing": str(tmp_path / "missing.yaml"),
        "bad_yaml": _write(tmp_path, "bad.yaml", "search: {lr: [1, 2\n"),
        "unknown_type": _write(tmp_path, "u.yaml", "search: {lr: {unifrom: [1, 2]}}\n"),
        "negative": _write(tmp_path, "n.yaml", "search: {dropout: {uniform: [-0.1, 0.5]}}\n"),
        "good": _write(tmp_path, "good.yaml", GOOD),
        "bad_config": _write(tmp_path, "bad_config.yaml", "diagnostics: {gradient_explosion: "
                                                          "{critical: -5}}\n"),
        "tmp": str(tmp_path),
    }
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "something").write_text("x")
    code = _run([a.format(**files) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("smart-tuner: error: ")
    assert expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


def _run(argv: list[str]) -> int:
    """main()'s status: argparse mistakes exit (SystemExit), the others return it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_console_script_error_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "tuner.cli", "tune", "--search-space",
                           str(tmp_path / "nope.yaml")], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"smart-tuner: error: search space file {str(tmp_path / 'nope.yaml')!r} not found; pass an "
        "existing YAML file such as search_spaces/quickstart.yaml"]
