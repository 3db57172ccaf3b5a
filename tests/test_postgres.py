"""PostgreSQL for the cluster set-up: an MLflow tracking server with a PostgreSQL backend store
and the Optuna recovery study (``optuna.storage``) on PostgreSQL, both used by a real sweep.

The PostgreSQL server comes from PyPI (``pgserver``, in the ``dev`` extra). Postgres refuses to
run as root; when the tests run as root, pgserver creates a system user ``pgserver`` and runs the
server as that user. The test is skipped with one line when the server cannot start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tiny_space import RECOVERY_GUARDS, exploding, write_tiny_space
from tuner.core.config import config_from_dict
from tuner.core.recovery import storage_url

REPO = Path(__file__).resolve().parents[1]


def test_optuna_storage_url_wins_over_the_experiment_folder(tmp_path: Path) -> None:
    url = "postgresql://smart:secret@localhost:5432/recovery"
    cfg = config_from_dict({"optuna": {"storage": url}})
    assert storage_url(cfg, tmp_path) == url
    assert storage_url(config_from_dict({}), tmp_path) == f"sqlite:///{tmp_path / 'recovery.db'}"


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A PostgreSQL server (pgserver) with databases ``mlflow`` and ``recovery``: their URLs."""
    try:
        import pgserver
        import sqlalchemy  # noqa: F401
    except ImportError as err:
        pytest.skip(f"pgserver not installed ({err}); pip install -e '.[dev]'")
    pgdata = tmp_path_factory.mktemp("pg") / "pgdata"
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="delete")
        for name in ("mlflow", "recovery"):
            server.psql(f"CREATE DATABASE {name};")
    except Exception as err:  # no binaries for this platform, no useradd as root, ...
        pytest.skip(f"PostgreSQL (pgserver) did not start: {type(err).__name__}: {err}")
    try:
        yield {name: server.get_uri(name) for name in ("mlflow", "recovery")}
    finally:
        server.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(postgres: dict[str, str],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` with the PostgreSQL backend store; its tracking URI."""
    port = _free_port()
    artifacts = tmp_path_factory.mktemp("mlartifacts")
    log = open(artifacts.parent / "mlflow-server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres["mlflow"],
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240   # creating the schema takes a while on a busy machine
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            tail = (artifacts.parent / "mlflow-server.log").read_text()[-300:].strip()
            pytest.fail(f"mlflow server on PostgreSQL did not start: {tail}")
        time.sleep(1)
    try:
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()




@pytest.mark.ray
@pytest.mark.timeout(2400)   # a server, its schema and a fresh driver; minutes when loaded
def test_sweep_tracks_to_mlflow_server_and_optuna_on_postgres(
        postgres: dict[str, str], mlflow_server: str, corpus_dir: Path, tmp_path: Path) -> None:
    import optuna
    import sqlalchemy as sa
    from mlflow.tracking import MlflowClient

    space = write_tiny_space(
        tmp_path / "space.yaml", corpus_dir, tmp_path / "features", resources={"cpu": 1, "gpu": 0},
        config=exploding(4),
        smart_tuner={**RECOVERY_GUARDS,
                     "optuna": {"storage": postgres["recovery"], "study_name": "pg-recovery"}})
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_AIR_NEW_OUTPUT": "0",
           "RAY_ADDRESS": "local", "RAY_memory_monitor_refresh_ms": "0", "MLFLOW_TRACKING_URI": mlflow_server}
    with open(tmp_path / "tune.log", "w") as log:   # a fresh driver with its own local Ray
        proc = subprocess.run([sys.executable, "-m", "tuner.cli", "tune", "--search-space",
                               str(space), "--storage", str(tmp_path / "runs"), "--name", "pg1"],
                              env=env, cwd=tmp_path, stdout=log, stderr=subprocess.PIPE,
                              text=True, timeout=1500)
    proc.stdout = (tmp_path / "tune.log").read_text()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"mlflow ui --backend-store-uri {mlflow_server}" in proc.stdout
    exp = tmp_path / "runs" / "pg1"
    interventions = (exp / "interventions.jsonl").read_text().splitlines()
    assert interventions, "the trial explodes above lr 6e-4, so SmartScheduler must act"
    assert not (exp / "recovery.db").exists() and not (exp / "mlflow.db").exists()

    # the recovery study lives in PostgreSQL and picked the new values
    study = optuna.load_study(study_name="pg-recovery", storage=postgres["recovery"])
    assert len(study.trials) >= 1
    assert all(t.params for t in study.trials)

    # MLflow: the run, its metrics and the intervention tags, through the server
    client = MlflowClient(tracking_uri=mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("pg1").experiment_id])
    trial_runs = [r for r in runs if "validation.loss" in r.data.metrics]
    assert len(trial_runs) == 1 and "grad.norm" in trial_runs[0].data.metrics
    assert int(trial_runs[0].data.tags["smart_tuner.interventions"]) == len(interventions)
    # ... and the server keeps them in PostgreSQL
    with sa.create_engine(postgres["mlflow"]).connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM runs")).scalar() == len(runs)
        assert conn.execute(sa.text(
            "SELECT COUNT(*) FROM metrics WHERE key = 'validation.loss'")).scalar() >= 1
