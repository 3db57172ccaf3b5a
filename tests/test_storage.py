"""tuner/raytune/storage.py: local folders and URIs, and `--storage s3://` for tune, resume and analyze
against a local S3 server (moto's server mode) that the test starts."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tiny_space import RECOVERY_GUARDS, exploding, write_tiny_space
from tuner.raytune.storage import is_remote, join, working_copy

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("storage, expected", [
    ("s3://bucket/prefix", True), ("gs://b", True), ("/tmp/runs", False), ("runs", False),
    ("file:///tmp/runs", False)])
def test_is_remote(storage: str, expected: bool) -> None:
    assert is_remote(storage) is expected


@pytest.mark.parametrize("storage, parts, expected", [
    ("s3://bucket/prefix", ("lj",), "s3://bucket/prefix/lj"),
    ("s3://bucket/prefix/", ("lj", "report.md"), "s3://bucket/prefix/lj/report.md"),
    ("s3://bucket/p?endpoint_override=localhost:9000", ("lj",),
     "s3://bucket/p/lj?endpoint_override=localhost:9000"),
    ("/tmp/runs", ("lj",), "/tmp/runs/lj")])
def test_join_keeps_the_scheme_and_query(storage: str, parts: tuple[str, ...],
                                         expected: str) -> None:
    assert join(storage, *parts) == expected


def test_working_copy_is_under_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMART_TUNER_CACHE", str(tmp_path))
    assert working_copy("s3://bucket/prefix/lj?x=1") == tmp_path / "s3" / "bucket/prefix/lj"


# ---------------------------------------------------------------------------- local S3 server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_priority() -> None:
    """Run the S3 server at the default CPU priority even when the tests run under ``nice``:
    the AWS SDK gives up on a request after 3 s without a byte, which a starved server misses."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:  # not allowed to raise priority: keep the inherited one
        pass


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    """A moto S3 server on a free port with bucket ``runs``; the environment that reaches it."""
    try:
        import boto3
        import moto.server  # noqa: F401
    except ImportError as err:
        pytest.skip(f"moto[server] not installed ({err}); pip install -e '.[dev]'")
    port = _free_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=_default_priority)
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket="runs")
            break
        except Exception as err:  # not listening yet
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.skip(f"moto S3 server did not start on port {port}: {err}")
            time.sleep(0.5)
    try:
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _objects(env: dict[str, str], prefix: str) -> dict[str, bytes]:
    import boto3

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    listing = client.list_objects_v2(Bucket="runs", Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix):]: client.get_object(Bucket="runs", Key=o["Key"])["Body"].read()
            for o in listing if not o["Key"].endswith("/") and "checkpoint_" not in o["Key"]
            and "tfevents" not in o["Key"]}


def _study_trials(db: bytes, folder: Path) -> int:
    """Trials in the Optuna recovery study of a recovery.db file's bytes."""
    path = folder / "recovery.db"
    path.write_bytes(db)
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]




def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """``smart-tuner ARGS`` in a fresh process with its own local Ray (whose workers inherit
    ``env``); stdout and stderr also go to ``cwd/<command>-<n>.log``."""
    full = {**os.environ, **env, "PYTHONPATH": str(REPO), "RAY_AIR_NEW_OUTPUT": "0",
            "RAY_ADDRESS": "local", "RAY_memory_monitor_refresh_ms": "0"}
    log = cwd / f"{args[0]}-{len(list(cwd.glob('*.log')))}.log"
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "tuner.cli", *args], env=full, cwd=cwd,
                              stdout=out, stderr=subprocess.PIPE, text=True, timeout=1500)
    return subprocess.CompletedProcess(proc.args, proc.returncode, log.read_text(), proc.stderr)


@pytest.mark.ray
@pytest.mark.timeout(3000)   # three fresh drivers; minutes on a loaded machine
def test_s3_storage_tune_resume_analyze(s3_env: dict[str, str], corpus_dir: Path,
                                        tmp_path: Path) -> None:
    env = {**s3_env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "SMART_TUNER_CACHE": str(tmp_path / "cache-home")}
    space = write_tiny_space(tmp_path / "space.yaml", corpus_dir, tmp_path / "features",
                             resources={"cpu": 1, "gpu": 0}, config=exploding(4),
                             smart_tuner=RECOVERY_GUARDS)
    storage = "s3://runs/sweeps"

    tune = _cli(["tune", "--search-space", str(space), "--storage", storage, "--name", "s1"],
                env, tmp_path)
    assert tune.returncode == 0, tune.stderr[-3000:]
    assert "report:      s3://runs/sweeps/s1/report.md" in tune.stdout
    assert not (tmp_path / "runs").exists()   # nothing went to a local ./runs
    first = _objects(s3_env, "sweeps/s1/")
    for name in ("smart_tuner_sweep.json", "smart_tuner_config.yaml", "tuner.pkl",
                 "interventions.jsonl", "recovery.db", "smart_tuner_state.jsonl", "report.md"):
        assert name in first, sorted(first)
    assert any(k.endswith("/result.json") for k in first)
    interventions = first["interventions.jsonl"].decode().splitlines()
    assert interventions, "the trial explodes above lr 6e-4, so SmartScheduler must act"
    asked = _study_trials(first["recovery.db"], tmp_path)
    assert asked >= 1   # the recovery study picked the new values

    # resume: Tuner.restore from the URI; the scheduler's files come back from S3 first, so
    # Ray's next upload does not replace the recovery study or the interventions with new ones
    resume = _cli(["resume", "s1", "--storage", storage], env, tmp_path)
    assert resume.returncode == 0, resume.stderr[-3000:]
    after = _objects(s3_env, "sweeps/s1/")
    assert after["interventions.jsonl"].decode().splitlines() == interventions
    assert _study_trials(after["recovery.db"], tmp_path) == asked

    # analyze: downloads a working copy, uploads report.md and the curves back
    import boto3

    boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").delete_object(
        Bucket="runs", Key="sweeps/s1/report.md")
    analyze = _cli(["analyze", "s1", "--storage", storage], env, tmp_path)
    assert analyze.returncode == 0, analyze.stderr[-3000:]
    assert "## Recommendations" in analyze.stdout
    final = _objects(s3_env, "sweeps/s1/")
    assert b"Recommendations" in final["report.md"]
    assert "curves_grad_norm.png" in final
    assert (tmp_path / "cache-home" / "s3" / "runs/sweeps/s1" / "interventions.jsonl").is_file()

    # user mistakes: one line, exit 2
    for args, needle in ((["analyze", "nope", "--storage", storage], "no experiment 'nope'"),
                         (["resume", "nope", "--storage", storage], "no experiment 'nope'"),
                         (["tune", "--search-space", str(space), "--storage", storage, "--name",
                           "s1"], "already exists")):
        proc = _cli(args, env, tmp_path)
        assert proc.returncode == 2 and needle in proc.stderr, (args, proc.stderr[-2000:])
        assert len(proc.stderr.strip().splitlines()) == 1
