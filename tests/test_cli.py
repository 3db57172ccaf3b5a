"""Tests for tuner/cli/__init__.py: one-line errors with exit status 2, and one real end-to-end sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.tiny_space import RECOVERY_GUARDS, exploding, write_tiny_space
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
                          cwd=REPO, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"smart-tuner: error: search space file {str(tmp_path / 'nope.yaml')!r} not found; pass an "
        "existing YAML file such as search_spaces/quickstart.yaml"]




@pytest.mark.ray
@pytest.mark.timeout(900)   # tune + resume of 2 tiny trials: ~5 min on a loaded 2-core machine
def test_tune_end_to_end_then_analyze_and_resume(tmp_path: Path, corpus_dir: Path,
                                                 capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import ray
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    space = write_tiny_space(tmp_path / "space.yaml", corpus_dir, tmp_path / "cache",
                             num_samples=2, max_concurrent=2, resources={"cpu": 1, "gpu": 0},
                             config={"max_steps": 10, **exploding(6)}, smart_tuner=RECOVERY_GUARDS)
    storage = tmp_path / "runs"
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        assert main(["tune", "--search-space", space, "--storage", str(storage),
                     "--name", "e2e"]) == 0
        out = capsys.readouterr().out
        assert main(["resume", "e2e", "--storage", str(storage)]) == 0
        resumed_out = capsys.readouterr().out
    finally:
        ray.shutdown()
    exp = storage / "e2e"
    for needle in ("trial", "learning_rate", "outcome", f"report:      {exp / 'report.md'}",
                   "mlflow ui --backend-store-uri sqlite:///", f"tensorboard --logdir {exp}",
                   "  trial     status", "best trial:  ", f"checkpoint:  {exp}/train_tts_"):
        assert needle in out
    # quiet: Smart Tuner's table and lines, not Ray's per-checkpoint/per-session chatter
    for chatter in ("Checkpoint successfully created", "Configuration for experiment",
                    "To visualize your results with TensorBoard", "\x1b[0m", "is already reported"):
        assert chatter not in out
    assert len(out.splitlines()) < 80, out
    assert "outcome" in resumed_out
    assert (exp / "report.md").is_file() and (exp / "curves_grad_norm.png").is_file()
    trials = sorted(exp.glob("train_tts_*"))
    assert len(trials) == 2
    # TensorBoard once: the only folders with event files are the trials' own, with the markers
    assert {p.parent for p in exp.rglob("events.out.tfevents.*")} == \
        {t / "tensorboard" for t in trials}
    assert list(exp.glob("train_tts_*/tensorboard/*.interventions"))
    for trial in trials:
        # every report is kept, the exploding one that triggered the rollback included
        grads = [r["grad.norm"] for r in map(json.loads, (trial / "result.json").open())]
        assert max(grads) > 200.0, grads
        # bounded disk: at most the latest, the last healthy and the best checkpoint
        assert 1 <= len(list(trial.glob("checkpoint_*"))) <= 3

    interventions = (exp / "interventions.jsonl").read_text().splitlines()
    assert interventions, "every trial explodes above lr 6e-4, so SmartScheduler must act"
    client = MlflowClient(tracking_uri=f"sqlite:///{exp / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("e2e").experiment_id])
    parent = [r for r in runs if r.data.tags.get("smart_tuner.role") == "sweep"]
    runs = [r for r in runs if r not in parent]
    assert len(parent) == 1 and len(runs) == 2
    assert all(r.data.tags["mlflow.parentRunId"] == parent[0].info.run_id for r in runs)
    assert all("validation.loss" in r.data.metrics and "grad.norm" in r.data.metrics for r in runs)
    assert sum(int(r.data.tags.get("smart_tuner.interventions", 0)) for r in runs) == \
        len(interventions)

    assert main(["analyze", "e2e", "--storage", str(storage)]) == 0
    assert "## Recommendations" in capsys.readouterr().out
    assert _run(["tune", "--search-space", space, "--storage", str(storage), "--name", "e2e"]) == 2


def _cluster_commands() -> list[list[str]]:
    """The `smart-tuner ...` command lines documented in cluster.yaml's header."""
    import re
    import shlex

    commands = []
    for line in (REPO / "cluster.yaml").read_text().splitlines():
        match = re.search(r"smart-tuner (tune|resume|analyze|corpus)[^\"]*", line)
        if line.startswith("#") and match:
            commands.append(shlex.split(match.group(0))[1:])
    return commands


def test_cluster_yaml_is_a_valid_ray_cluster_config() -> None:
    import json

    import jsonschema
    import ray.autoscaler
    import yaml

    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    assert config["available_node_types"]["gpu_worker"]["resources"]["GPU"] == 1
    # every node installs this package under the repository's constraints (tests/test_cluster_yaml.py
    # checks the rest of the set-up)
    assert any("-c ~/smart-tuner/constraints.txt -e" in c for c in config["setup_commands"])
    assert [c[0] for c in _cluster_commands()] == ["tune", "resume", "analyze"]


@pytest.mark.parametrize("argv", _cluster_commands())
def test_cluster_commands_parse(argv: list[str]) -> None:
    from tuner.cli import build_parser

    args = build_parser().parse_args(argv)
    assert args.storage == "/shared/runs"


def _damaged_cache(root: Path, cache: Path) -> str:
    from model.data import prepare_features

    path = prepare_features(root, cache_dir=cache, progress=False)
    path.write_bytes(path.read_bytes()[:1000])   # truncated
    return f"feature cache {path} is damaged"


def _id_outside(root: Path, cache: Path) -> str:
    lines = (root / "metadata.csv").read_text().splitlines()
    lines[1] = "../../outside|hello|hello"
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return "metadata.csv line 2: id '../../outside' is not a file name inside"


@pytest.mark.parametrize("spoil", [_damaged_cache, _id_outside])
def test_bad_dataset_or_cache_exits_2_before_the_sweep(tmp_path: Path, corpus_dir: Path,
                                                        capsys: pytest.CaptureFixture,
                                                        spoil: Any) -> None:
    import shutil

    root = Path(shutil.copytree(corpus_dir, tmp_path / "ds", ignore=shutil.ignore_patterns(".cache")))
    expected = spoil(root, tmp_path / "cache")
    space = _write(tmp_path, "space.yaml", f"config: {{data_dir: {root}, cache_dir: {tmp_path / 'cache'}}}\n"
                                           "search: {learning_rate: {loguniform: [1.0e-4, 1.0e-2]}}\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code = _run(["tune", "--search-space", space, "--storage", str(tmp_path / "runs"), "--name", "x"])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert {p: after[p] for p in before} == before   # the damaged cache is left for the user
    assert {p.name for p in set(after) - set(before)} <= {"wav-hashes.json"}


def test_resume_with_a_damaged_cache_exits_2_before_ray(tmp_path: Path, corpus_dir: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    import json

    from tuner.raytune.sweep import SweepSettings

    expected = _damaged_cache(corpus_dir, tmp_path / "cache")
    settings = SweepSettings("s.yaml", str(tmp_path / "runs"), "exp", 2, 1, 1.0, 0.0, "smart",
                             "validation.loss", "min", "sqlite:///x.db")
    (settings.experiment_dir / "trial_0").mkdir(parents=True)
    settings.save()
    (settings.experiment_dir / "trial_0" / "params.json").write_text(json.dumps(
        {"data_dir": str(corpus_dir), "cache_dir": str(tmp_path / "cache")}))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code = _run(["resume", "exp", "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and err.count("\n") == 1 and "Traceback" not in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    "name, storage, expected",
    [
        ("sweep", None, "runs/sweep"),            # a name in the default ./runs
        ("runs/sweep", None, "runs/sweep"),       # a relative path: not runs/runs/sweep
        ("{abs}", None, "elsewhere/sweep"),       # an absolute path
        ("sweep", "elsewhere", "elsewhere/sweep"),
    ],
)
def test_analyze_takes_a_name_or_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        name: str, storage: str | None, expected: str) -> None:
    from tuner.cli.commands import experiment_folder

    monkeypatch.chdir(tmp_path)
    for folder in ("runs/sweep", "elsewhere/sweep"):
        (tmp_path / folder).mkdir(parents=True)
    name = name.format(abs=tmp_path / "elsewhere" / "sweep")
    assert experiment_folder(name, storage) == (tmp_path / expected).resolve()


def test_analyze_html_from_a_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.test_analysis import experiment as make_experiment

    exp = make_experiment.__wrapped__(tmp_path)
    assert main(["analyze", str(exp), "--html"]) == 0
    out = capsys.readouterr().out
    assert f"html:   {exp / 'report.html'}" in out
    assert "data:image/png;base64," in (exp / "report.html").read_text()


def test_help_texts_and_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        main(["tune", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--num-samples N number of trials", "--gpus-per-trial F GPUs per trial",
                   "--scheduler {smart,fifo,asha,pbt} smart: detect and repair",
                   "--max-concurrent N trials running at a time", "--keep-checkpoints N|all",
                   "-v, --verbose also print Ray's own output"):
        assert option in text
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("smart-tuner ")
