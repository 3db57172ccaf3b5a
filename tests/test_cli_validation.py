"""Every key of a sweep definition checked before Ray starts, and nothing written when one is bad.

Each case is a real `smart-tuner` command line through `main([...])`: exit status 2, one line
naming the field, the value and the fix, and the folders left exactly as they were (so a failed
start never blocks the experiment name).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tuner.cli import main

GOOD_SEARCH = "search: {learning_rate: {loguniform: [1.0e-4, 1.0e-2]}}\n"


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse mistakes
        return int(exc.code or 0)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "a_file").write_text("not a folder\n")
    return tmp_path


@pytest.mark.parametrize("space, config, expected", [
    ("config: {max_step: 200}\n" + GOOD_SEARCH, None,
     "config.max_step: unknown train_tts config key 'max_step'; did you mean 'max_steps'?"),
    ("search: {lerning_rate: {loguniform: [1.0e-4, 1.0e-2]}}\n", None,
     "search.lerning_rate: unknown train_tts config key 'lerning_rate'; did you mean "
     "'learning_rate'?"),
    (GOOD_SEARCH, "training_recovery:\n  actions:\n    gradient_explosion:\n"
                  "      learnin_rate: {scale: [0.25, 0.5]}\n",
     "unknown key training_recovery.actions.gradient_explosion.learnin_rate in "),
    ("search: {dropout: {uniform: [0.5, 1.5]}}\n", None,
     "search.dropout.uniform = [0.5, 1.5] reaches 1.5, outside what train_tts allows: must be a "
     "number in [0, 0.9]; narrow the range"),
    ("search: {batch_size: {uniform: [8, 32]}}\n", None,
     "search.batch_size.uniform: batch_size is an integer; search it with randint or choice"),
    ("config: {model: {decoder_rnn_dm: 64}}\n" + GOOD_SEARCH, None,
     "config.model.decoder_rnn_dm: unknown Tacotron2Config field 'decoder_rnn_dm'; did you mean "
     "'decoder_rnn_dim'?"),
    ("config: {preset: tiny}\n", None, "search: is empty or missing, so there is nothing to tune"),
    (GOOD_SEARCH + "smart_tuner: {optuna: {storage: 'not a url'}}\n", None,
     "optuna.storage 'not a url' cannot be opened (Could not parse SQLAlchemy URL"),
    (GOOD_SEARCH + "smart_tuner: {optuna: {storage: 'sqlite:///{workdir}/a_file/r.db'}}\n", None,
     "a_file is a file, not a folder"),
])
def test_bad_sweep_definition_exits_2_and_writes_nothing(
        workdir: Path, capsys: pytest.CaptureFixture, space: str, config: str | None,
        expected: str) -> None:
    (workdir / "space.yaml").write_text(space.replace("{workdir}", str(workdir)))
    argv = ["tune", "--search-space", "space.yaml", "--storage", "runs", "--name", "x"]
    if config is not None:
        (workdir / "my.yaml").write_text(config)
        argv += ["--config", "my.yaml"]
    before = _tree(workdir)
    code = _run(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("smart-tuner: error: ") and err.count("\n") == 1
    assert expected in err
    assert _tree(workdir) == before  # no runs/ folder: the name x stays free


def test_storage_that_cannot_be_written_is_one_line(workdir: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    (workdir / "space.yaml").write_text(GOOD_SEARCH)
    before = _tree(workdir)
    code = _run(["tune", "--search-space", "space.yaml", "--storage", "a_file/runs"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"smart-tuner: error: --storage {workdir / 'a_file' / 'runs'}: "
                   f"{workdir / 'a_file'} is a file, not a folder; pick another folder\n")
    assert _tree(workdir) == before


def test_corpus_into_a_folder_that_cannot_be_written_is_one_line(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    before = _tree(workdir)
    code = _run(["corpus", "a_file/corpus", "--n", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"smart-tuner: error: corpus folder {workdir / 'a_file' / 'corpus'}: "
                   f"{workdir / 'a_file'} is a file, not a folder; pick another folder\n")
    assert _tree(workdir) == before


@pytest.fixture
def read_only_dir(workdir: Path) -> Path:
    """A folder nobody may write in, root included (immutable flag); skipped where chattr fails."""
    folder = workdir / "ro"
    folder.mkdir()
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root and a supporting file system)")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("argv", [["corpus", "ro/corpus", "--n", "2"],
                                  ["tune", "--search-space", "space.yaml", "--storage", "ro/runs"]])
def test_read_only_folder_is_one_line(read_only_dir: Path, capsys: pytest.CaptureFixture,
                                      argv: list[str]) -> None:
    (read_only_dir.parent / "space.yaml").write_text(GOOD_SEARCH)
    code = _run(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot write in {read_only_dir} (read-only or no permission)" in err
    assert err.count("\n") == 1
    assert list(read_only_dir.iterdir()) == []


def test_failure_while_building_the_tuner_leaves_the_name_free(
        workdir: Path, corpus_dir: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the experiment folder was made (here: Ray's Tuner refusing after it wrote
    its tuner.pkl) removes the folder again."""
    from tuner.cli import commands as cli_commands

    def build_tuner_that_fails(space, settings, *args, **kwargs):  # noqa: ANN001, ANN202
        (settings.experiment_dir / "tuner.pkl").write_bytes(b"partial")
        raise cli_commands.SweepError("Ray refused the tuner")

    monkeypatch.setattr(cli_commands, "build_tuner", build_tuner_that_fails)
    (workdir / "space.yaml").write_text(
        f"config: {{data_dir: {corpus_dir}, cache_dir: {workdir / 'cache'}}}\n" + GOOD_SEARCH)
    argv = ["tune", "--search-space", "space.yaml", "--storage", "runs", "--name", "x"]
    assert _run(argv) == 2
    assert "Ray refused the tuner" in capsys.readouterr().err
    assert list((workdir / "runs").iterdir()) == []  # nothing under the name: it stays free
    assert _run(argv) == 2
    assert "already exists" not in capsys.readouterr().err


def test_resume_in_a_read_only_experiment_folder_is_one_line(
        read_only_dir: Path, capsys: pytest.CaptureFixture) -> None:
    from tuner.raytune.sweep import SweepSettings

    subprocess.run(["chattr", "-i", str(read_only_dir)], check=True)
    settings = SweepSettings("s.yaml", str(read_only_dir), "sweep", 1, 1, 1.0, 0.0, "smart",
                             "validation.loss", "min", "sqlite:///x")
    (read_only_dir / "sweep").mkdir()
    settings.save()
    subprocess.run(["chattr", "+i", str(read_only_dir / "sweep")], check=True)
    try:
        before = _tree(read_only_dir)
        code = _run(["resume", "sweep", "--storage", str(read_only_dir)])
        err = capsys.readouterr().err
        assert code == 2
        assert err == (f"smart-tuner: error: --storage: experiment folder {read_only_dir / 'sweep'}: "
                       f"cannot write in {read_only_dir / 'sweep'} (read-only or no permission); "
                       "pick a writable folder\n")
        assert _tree(read_only_dir) == before
    finally:
        subprocess.run(["chattr", "-i", str(read_only_dir / "sweep")], check=True)
        subprocess.run(["chattr", "+i", str(read_only_dir)], check=True)  # the fixture undoes it
