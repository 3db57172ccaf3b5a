"""LocalSession: the Ray-free TrialSession keeps reports and copies checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.training.session import LocalSession, scratch_dir


@pytest.mark.parametrize("n_reports", [1, 3])
def test_reports_and_checkpoint_copies(tmp_path: Path, n_reports: int) -> None:
    seen: list[float] = []
    session = LocalSession(tmp_path / "trial", num_cpus=2, on_report=lambda m, _: seen.append(m["x"]))
    for i in range(n_reports):
        with scratch_dir() as folder:
            (folder / "checkpoint.pt").write_text(str(i))
            session.report({"x": float(i)}, folder)
        assert not folder.exists()
    assert [p.name for p in session.checkpoints] == [f"checkpoint_{i:04d}" for i in range(n_reports)]
    assert (session.checkpoints[-1] / "checkpoint.pt").read_text() == str(n_reports - 1)
    assert seen == [r["x"] for r in session.reports] == [float(i) for i in range(n_reports)]
    assert (session.trial_dir(), session.num_cpus()) == (tmp_path / "trial", 2)


@pytest.mark.parametrize("resume_from", [None, "somewhere"])
def test_checkpoint_dir_is_the_resume_folder(tmp_path: Path, resume_from: str | None) -> None:
    folder = None if resume_from is None else tmp_path / resume_from
    with LocalSession(tmp_path, resume_from=folder).checkpoint_dir() as got:
        assert got == folder
