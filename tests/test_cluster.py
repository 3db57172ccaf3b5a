"""The cluster path on this machine: a 2-node Ray cluster loses the node under a running trial.

Ray's own ``ray.cluster_utils.Cluster`` starts a head node with no CPUs (as cluster.yaml's head:
it runs the driver only) and one worker node with 1 CPU. ``smart-tuner tune`` runs in its own
process against it (``RAY_ADDRESS``): one tiny ``train_tts`` trial (SmartScheduler, OptunaSearch,
MLflow, 10 validations) on the 24-utterance conftest corpus. Once the trial has reported twice,
the worker node is killed (raylet and all, not gracefully) and a replacement node joins, as the
autoscaler replaces a lost spot instance. Checked, by the order of events only:

- the CLI exits 0 and its summary calls the trial "finished";
- one intervention, "resume" with problem kind node_lost (line printed, interventions.jsonl,
  the scheduler's state journal), config unchanged, not counted as a crash retry or a recovery;
- the trial continued from its last checkpoint on the replacement node: validation.step goes on
  from that checkpoint's step (no restart from 1), in another process, with the same config;
- one writer per trial folder: the folder's claim is attempt 2 and Ray's final checkpoint was
  written by attempt 2.

Marked ``cluster`` (run by ``pytest -m cluster``, which .ci/run calls after ``make test``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from tests.test_trainable import SMALL_MODEL  # noqa: E402
from tuner.reporting.analysis_io import read_json_lines  # noqa: E402
from tuner.core.interventions import Intervention  # noqa: E402
from tuner.core.supervisor_state import read_state  # noqa: E402
from tuner.training import attempts  # noqa: E402
from tuner.training.checkpoint import load_checkpoint  # noqa: E402

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
VALIDATIONS = 10


def _search_space(path: Path, corpus_dir: Path, cache_dir: Path) -> Path:
    space = {
        "metric": "validation.loss", "mode": "min", "num_samples": 1, "max_concurrent": 1,
        "scheduler": "smart", "resources": {"cpu": 1, "gpu": 0}, "build_corpus": False,
        "config": {"data_dir": str(corpus_dir), "cache_dir": str(cache_dir), "preset": "tiny",
                   "model": SMALL_MODEL, "device": "cpu", "num_threads": 1, "batch_size": 3,
                   "max_steps": 2 * VALIDATIONS, "validation_interval": 2, "tensorboard": True},
        "search": {"learning_rate": {"choice": [2.0e-3]}},
    }
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def _wait_for(what: str, check, proc: subprocess.Popen, log: Path, limit_s: float = 600.0):
    """Poll ``check()`` until it returns a truthy value; fail early if the CLI exits first."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"the CLI exited ({proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"no {what} within {limit_s:.0f} s:\n{log.read_text()[-3000:]}")


def _kill_marked(marker: str) -> None:
    """SIGKILL every process (but this one) whose environment carries ``marker``: workers that
    outlived their raylet."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int(entry.name) != os.getpid() and \
                    marker.encode() in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    marker = f"SMART_TUNER_TEST_RUN={tmp_path}"
    monkeypatch.setenv("SMART_TUNER_TEST_RUN", str(tmp_path))  # inherited by every Ray process
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "0")
    last: Exception | None = None
    for _ in range(3):   # a busy machine: a node may time out starting, so try again
        try:
            cluster = Cluster(initialize_head=True, connect=False,
                              head_node_args={"num_cpus": 0, "include_dashboard": False})
            break
        except Exception as err:  # noqa: BLE001 - Ray raises plain Exception on a slow start
            last = err
            _kill_marked(marker)
    else:
        pytest.skip(f"a local Ray head node did not start: {last}")
    try:
        yield cluster
    finally:
        cluster.shutdown()
        _kill_marked(marker)


def test_lost_node_resumes_the_trial_unchanged(cluster, corpus_dir: Path, tmp_path: Path) -> None:
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    space = _search_space(tmp_path / "space.yaml", corpus_dir, tmp_path / "cache")
    runs, log = tmp_path / "runs", tmp_path / "cli.log"
    env = {**os.environ, "RAY_ADDRESS": cluster.address, "PYTHONPATH": str(ROOT),
           "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuner.cli", "tune", "--search-space", str(space),
             "--storage", str(runs), "--name", "lost"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        exp = runs / "lost"

        def two_reports():
            files = list(exp.glob("*/result.json"))
            rows = [json.loads(x) for x in files[0].read_text().splitlines()] if files else []
            return rows if len(rows) >= 2 else None

        before = _wait_for("two reports of the trial", two_reports, proc, log)
        assert before[-1]["validation.step"] < VALIDATIONS, "the trial finished before the kill"
        cluster.remove_node(worker, allow_graceful=False)    # the node under the trial is lost
        cluster.add_node(num_cpus=1)                         # the autoscaler's replacement
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]

    [trial_dir] = [d for d in exp.iterdir() if (d / "result.json").is_file()]
    rows = [json.loads(x) for x in (trial_dir / "result.json").read_text().splitlines()]
    trial_id = rows[0]["trial_id"]
    [record] = [Intervention.from_dict(d) for d in read_json_lines(exp / "interventions.jsonl")]
    assert (record.trial_id, record.action) == (trial_id, "resume")
    assert [p["kind"] for p in record.problems] == ["node_lost"]
    assert record.new_config == record.old_config and record.changes() == {}
    assert f"[smart-tuner] trial {trial_id} validation " in text and \
        "resume (node_lost: node lost (" in text
    state = read_state(exp)   # the scheduler's state journal
    assert [i["action"] for i in state["interventions"]] == ["resume"]
    saved = state["trials"][trial_id]
    assert saved["retries"] == 0 and saved["monitor"]["recoveries"] == 0

    # continued from its last checkpoint (not from scratch), in a new process, same config
    steps = [int(r["validation.step"]) for r in rows]
    resumed_at = next(i for i in range(1, len(steps)) if rows[i]["pid"] != rows[0]["pid"])
    assert steps[:resumed_at] == list(range(1, resumed_at + 1))
    assert steps[resumed_at] > 1 and steps[resumed_at] <= steps[resumed_at - 1] + 1
    assert steps[-1] == VALIDATIONS and steps[resumed_at:] == list(range(steps[resumed_at],
                                                                         VALIDATIONS + 1))
    assert record.rolled_back_to == steps[resumed_at] - 1
    assert {r["config"]["learning_rate"] for r in rows} == {2.0e-3}
    assert {r["config"]["batch_size"] for r in rows} == {3}

    # one writer per trial folder
    from pyarrow.fs import LocalFileSystem
    assert attempts.current(LocalFileSystem(), str(trial_dir)) == 2
    newest = max(trial_dir.glob("checkpoint_*"), key=lambda p: int(p.name.split("_")[1]))
    assert load_checkpoint(newest)["attempt"] == 2

    # the summary table calls it finished
    # (after the progress tables; each row starts with "* " for the best trial or two spaces)
    summary = text.split("Summary, ranked by", 1)[1]
    row = next(line for line in summary.splitlines() if line[2:].startswith(trial_id))
    assert "finished" in row.split(), row
