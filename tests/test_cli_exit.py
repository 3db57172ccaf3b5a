"""Exit status of real `smart-tuner tune` runs: 1 when every trial crashes, 130 on SIGINT.

Real local Ray Tune, a tiny model on the 24-utterance test corpus. The pure logic (which status,
which closing lines) is tested by tables in tests/test_sweep_exit.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tiny_space import write_tiny_space
from tuner.cli import main

REPO = Path(__file__).resolve().parents[1]


def _space(tmp_path: Path, corpus_dir: Path, scheduler: str = "fifo", **config: object) -> str:
    return write_tiny_space(tmp_path / "space.yaml", corpus_dir, tmp_path / "cache",
                            scheduler=scheduler,
                            config={"max_steps": 10, "device": "cpu", "tensorboard": False, **config})


RAY_START_FAILED = "timed out during startup"  # Ray's fixed 30 s raylet wait, on a loaded machine


def _start_ray() -> None:
    """The tests' local Ray, retried when the raylet did not come up in Ray's fixed 30 s."""
    import ray

    from tests.e2e_helpers import start_local_ray

    for attempt in range(3):
        try:
            start_local_ray()
            return
        except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception here
            ray.shutdown()
            if RAY_START_FAILED not in str(err) or attempt == 2:
                raise
            time.sleep(5)


@pytest.mark.ray
@pytest.mark.timeout(900)   # hang guard only: minutes on a loaded machine
def test_sweep_whose_trials_all_crash_exits_1_naming_the_error_files(
        tmp_path: Path, corpus_dir: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # device cuda in a trial given no GPU (resources gpu 0: Ray hides any): every attempt raises
    # (the injected faults are one-shot, so a retry would get past them).
    space = _space(tmp_path, corpus_dir, device="cuda")
    _start_ray()
    try:
        code = main(["tune", "--search-space", space, "--storage", str(tmp_path / "runs"),
                     "--name", "crash"])
    finally:
        ray.shutdown()
    out = capsys.readouterr().out
    assert code == 1
    last = out.strip().splitlines()[-2:]
    assert last[0].startswith("trial ") and " errored: " in last[0]
    error_file = Path(last[0].split(" errored: ", 1)[1])
    assert error_file.is_file() and error_file.parent.parent == tmp_path / "runs" / "crash"
    assert "no CUDA device is visible" in error_file.read_text()
    assert last[1] == "1 of 1 trials failed (exit status 1)"
    assert "crashed" in out


@pytest.mark.ray
@pytest.mark.timeout(900)   # hang guard only: minutes on a loaded machine
def test_sigint_saves_state_exits_130_and_prints_the_resume_command(
        tmp_path: Path, corpus_dir: Path) -> None:
    space = _space(tmp_path, corpus_dir, scheduler="smart", max_steps=100000)
    storage = tmp_path / "runs"
    for attempt in range(3):  # a driver whose Ray did not start (loaded machine) is run again
        name = f"stop{attempt}"
        code, sweep_file = _interrupt_after_first_report(space, storage, name, tmp_path / "out.txt")
        if code is not None:
            break
    else:
        pytest.fail("Ray did not start in 3 attempts: " + RAY_START_FAILED)
    exp = storage / name
    text = (tmp_path / "out.txt").read_text()
    assert code == 130, text[-3000:]
    assert "Tuner.restore" not in text
    lines = text.splitlines()
    # The summary's closing line (Ray's workers may still log after it: they are not ours).
    tensorboard = next(i for i, line in enumerate(lines) if line.startswith("TensorBoard: "))
    assert lines[tensorboard + 1] == (f"interrupted: 1 of 1 trials unfinished ({_trial_id(exp)}); "
                                      f"the state is saved, continue with "
                                      f"`smart-tuner resume {name} --storage {storage}`")
    assert any(line.rstrip().endswith(" interrupted") for line in lines[:tensorboard])
    # Ray's experiment state (what `resume` reads) was saved with the trial unfinished, the
    # sweep file left as it was.
    from ray.tune import ExperimentAnalysis

    (trial,) = ExperimentAnalysis(str(exp)).trials
    assert trial.status in ("PENDING", "RUNNING", "PAUSED")  # unfinished: resume continues it
    assert (exp / "smart_tuner_sweep.json").read_bytes() == sweep_file


def _interrupt_after_first_report(space: str, storage: Path, name: str,
                                  out_path: Path) -> tuple[int | None, bytes]:
    """Run `smart-tuner tune` in its own process, SIGINT it once a trial has reported; its exit
    status and the sweep file as it was before the signal (None: its Ray did not start)."""
    exp = storage / name
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_AIR_NEW_OUTPUT": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(out_path, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuner.cli", "tune", "--search-space", space, "--storage",
             str(storage), "--name", name], stdout=out, stderr=subprocess.STDOUT, env=env,
            cwd=out_path.parent)
        try:
            deadline = time.monotonic() + 400
            while not any(p.stat().st_size for p in exp.glob("*/result.json")):  # a first report
                if proc.poll() is not None:
                    text = out_path.read_text()
                    assert RAY_START_FAILED in text, text[-3000:]
                    return None, b""
                assert time.monotonic() < deadline, "no trial reported within 400 s"
                time.sleep(1)
            sweep_file = (exp / "smart_tuner_sweep.json").read_bytes()
            proc.send_signal(signal.SIGINT)
            return proc.wait(timeout=150), sweep_file
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _trial_id(exp: Path) -> str:
    import json

    (result,) = exp.glob("*/result.json")
    return json.loads(result.read_text().splitlines()[0])["trial_id"]


def test_ctrl_c_before_the_sweep_starts_exits_130_without_a_resume_hint(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import model.corpus

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(model.corpus, "build_corpus", interrupted)
    assert main(["corpus", str(tmp_path / "c"), "--n", "2"]) == 130
    assert capsys.readouterr().err == "smart-tuner: interrupted\n"


def test_second_ctrl_c_during_fit_exits_130_with_the_resume_command(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray raises KeyboardInterrupt out of fit() on a second Ctrl+C (the first stops it cleanly)."""
    from tuner.cli import commands as cli_commands
    from tuner.raytune.sweep import SweepSettings

    class Tuner:
        def fit(self) -> None:
            raise KeyboardInterrupt

    settings = SweepSettings("s.yaml", str(tmp_path), "sweep", 1, 1, 1.0, 0.0, "smart",
                             "validation.loss", "min", "sqlite:///x")
    (tmp_path / "sweep").mkdir()
    settings.save()
    monkeypatch.setattr(cli_commands, "restore_tuner", lambda s: Tuner())
    assert main(["resume", "sweep", "--storage", str(tmp_path)]) == 130
    assert capsys.readouterr().err == (f"smart-tuner: interrupted; continue with `smart-tuner "
                                       f"resume sweep --storage {tmp_path}`\n")
