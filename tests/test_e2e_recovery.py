"""End-to-end: SmartScheduler on real Ray Tune (local, 2 CPUs) with tests/e2e_helpers.py trainables.

1. An exploding trial (learning_rate above the explosion limit, from validation 4 on) is rolled
   back to its pre-explosion checkpoint (validation 3; its step counter continues from there),
   its learning rate at least halved, and it finishes healthy, while a healthy trial running
   beside it is never touched. OptunaSearch proposes the trials (fixed first points).
   With a ConcurrencyLimiter letting more trials wait than run, the mutated trial resumes on
   the slot it freed, before any trial that had not started yet.
2. A trial that crashes once is retried (FailureConfig) with batch_size halved.
3. The driver process is killed (SIGKILL) mid-sweep after an intervention, restored in a new
   process, killed again once that run has journaled a trial's end, and restored again: nothing
   either run recorded is lost (interventions, budgets, finished trials, planner outcomes) and
   the sweep finishes healthy.
4. (slow) The real tiny Tacotron2 ``train_tts`` with an injected gradient explosion is rolled
   back one validation, its learning rate at least halved, and finishes healthy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from tests.e2e_helpers import EventLog, read_events, read_step_log, run_sweep, start_local_ray  # noqa: E402
from tuner.reporting.analysis_io import read_json_lines  # noqa: E402
from tuner.core.interventions import Intervention  # noqa: E402
from tuner.core.supervisor import INTERVENTIONS_FILE  # noqa: E402
from tuner.core.supervisor_state import read_state  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]   # hang guard: minutes when loaded

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_local():
    start_local_ray()
    yield
    ray.shutdown()


def _by_trial(log: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for line in log:
        out.setdefault(line["trial_id"], []).append(line)
    return out


def test_exploding_trial_is_rolled_back_and_the_healthy_one_untouched(ray_local, tmp_path: Path) -> None:
    space = {"learning_rate": tune.uniform(0.05, 0.6), "max_steps": 8, "sleep": 0.05,
             "explode_lr": 0.3, "explode_after": 4, "log_dir": str(tmp_path)}
    grid, scheduler = run_sweep(str(tmp_path / "results"), "explode", space, num_samples=2,
                                points=[{"learning_rate": 0.1}, {"learning_rate": 0.5}],
                                num_to_keep=1)
    assert all(r.error is None for r in grid)
    interventions = scheduler.interventions
    assert [i.action for i in interventions] == ["mutate"]
    record = interventions[0]
    assert (record.step, record.rolled_back_to) == (4, 3)
    assert record.new_config["learning_rate"] <= 0.5 * record.old_config["learning_rate"]
    logs = _by_trial(read_step_log(tmp_path))
    sick, healthy = logs[record.trial_id], next(v for k, v in logs.items() if k != record.trial_id)
    assert [s["step"] for s in sick] == [1, 2, 3, 4, 4, 5, 6, 7, 8]
    assert [s["restored_from"] for s in sick[4:]] == [3] * 5
    assert {s["learning_rate"] for s in sick[4:]} == {record.new_config["learning_rate"]}
    assert [(s["step"], s["learning_rate"], s["restored_from"]) for s in healthy] == [
        (step, 0.1, None) for step in range(1, 9)]
    final = {r.metrics["trial_id"]: r.metrics for r in grid}
    assert final[record.trial_id]["grad.norm"] < 100 and final[record.trial_id]["validation.step"] == 8
    exp_dir = tmp_path / "results" / "explode"
    assert [d["trial_id"] for d in read_json_lines(exp_dir / INTERVENTIONS_FILE)] == [record.trial_id]
    assert "1 interventions" in scheduler.debug_string()


@pytest.mark.timeout(900)   # minutes on a loaded machine; the assertions do not depend on it
def test_mutated_trial_resumes_before_waiting_new_trials(ray_local, tmp_path: Path) -> None:
    """6 trials, ConcurrencyLimiter(max_concurrent=4) on 2 CPUs: 2 run, 2 wait with actor
    requests queued. The first trial explodes at validation 3 and is paused for a mutation; it
    must take the freed CPU back at once (Ray alone queues it behind both waiting trials).

    Asserted on the order of the events Ray's controller processed (EventLog), not on timing.
    The explosion waits until both first trials have logged a step, so both CPUs are held by
    started trials when it happens; from then until the mutated trial restarts, a trial that had
    not started may start only on a CPU freed by another trial's end (a slot count that never
    goes below zero), however long actors take to start on a loaded machine."""
    space = {"learning_rate": tune.uniform(0.05, 0.25), "max_steps": 6, "sleep": 0.2,
             "explode_lr": 0.3, "explode_after": 3, "explode_waits_for": 2,
             "log_dir": str(tmp_path)}
    grid, scheduler = run_sweep(str(tmp_path / "results"), "prompt", space, num_samples=6,
                                points=[{"learning_rate": 0.5}], max_concurrent=4,
                                callbacks=[EventLog(tmp_path / "events.jsonl")])
    assert all(r.error is None for r in grid) and len(grid) == 6
    [record] = scheduler.interventions
    events = read_events(tmp_path / "events.jsonl")
    mutated = record.trial_id
    exploded = next(i for i, e in enumerate(events)
                    if (e["event"], e["trial_id"], e["step"]) == ("result", mutated, 3.0))
    restarted = next(i for i, e in enumerate(events) if i > exploded
                     and (e["event"], e["trial_id"]) == ("start", mutated))
    started = {e["trial_id"] for e in events[:exploded] if e["event"] == "start"}
    assert len(started) == 2, f"both CPUs were not held by started trials at the explosion: {events}"
    free = 0   # CPUs freed by other trials since the explosion (the mutated one's is its own)
    for e in events[exploded + 1:restarted]:
        if e["event"] in ("complete", "error"):
            free += 1
        elif e["event"] == "start":
            free -= 1
            started.add(e["trial_id"])
            assert free >= 0, f"trial {e['trial_id']} took the mutated trial's CPU: {events}"
    later = {e["trial_id"] for e in events[restarted:] if e["event"] == "start"} - started
    assert later, "no trial waited for the mutated one: the test lost its point"
    steps = [e["step"] for e in events if (e["event"], e["trial_id"]) == ("result", mutated)]
    assert steps == [1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 6.0]   # rolled back to validation 2
    log = [s["step"] for s in read_step_log(tmp_path) if s["trial_id"] == mutated]
    assert log == [1, 2, 3, 3, 4, 5, 6]


@pytest.mark.parametrize("message, kind", [("CUDA out of memory, simulated", "out_of_memory"),
                                           ("shapes (3,) and (4,) do not match", "trial_crash")])
def test_crashing_trial_is_retried_with_half_the_batch(ray_local, tmp_path: Path, message: str,
                                                       kind: str) -> None:
    space = {"learning_rate": 0.1, "batch_size": 32, "max_steps": 5, "crash_at": 3,
             "crash_marker": str(tmp_path / "crashed"), "crash_message": message,
             "log_dir": str(tmp_path)}
    grid, scheduler = run_sweep(str(tmp_path / "results"), "crash", space, max_failures=1)
    assert grid[0].error is None and grid[0].config["batch_size"] == 16
    assert [(i.action, i.old_config["batch_size"], i.new_config["batch_size"])
            for i in scheduler.interventions] == [("retry", 32, 16)]
    # the kind is read back from the error Ray recorded for the trial (tuner/core/trial_errors.py)
    assert scheduler.interventions[0].problems[0]["kind"] == kind
    assert message in scheduler.interventions[0].reasons[0]
    log = read_step_log(tmp_path)
    assert [(s["step"], s["batch_size"], s["restored_from"]) for s in log] == [
        (1, 32, None), (2, 32, None), (3, 16, 2), (4, 16, 2), (5, 16, 2)]


def _driver(mode: str, tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1", "PYTHONPATH": str(ROOT),
           "SMART_TUNER_TEST_RUN": str(tmp_path)}   # marks every process this driver starts
    args = [sys.executable, "-m", "tests.e2e_helpers", mode, str(tmp_path / "results"), "killed",
            str(tmp_path), str(tmp_path / f"{mode}.json")]
    return subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{mode}.err", "w"))


def _kill_group(proc: subprocess.Popen, tmp_path: Path) -> None:
    """SIGKILL the driver and its process group, then any Ray worker it started that outlived
    it (workers run in their own process groups; they carry the driver's marker variable)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    marker = f"SMART_TUNER_TEST_RUN={tmp_path}".encode()
    time.sleep(1.0)
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _wait_for(proc: subprocess.Popen, err: Path, done: Any, what: str, seconds: float = 200) -> None:
    """Poll ``done()`` every 0.2 s while the driver runs; fail naming ``what`` at the deadline."""
    deadline = time.time() + seconds
    while not done():
        assert proc.poll() is None, f"driver ended before {what}: " + err.read_text()[-3000:]
        assert time.time() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.2)


def _finished(state: dict | None) -> set[str]:
    return set() if state is None else {t for t, s in state["trials"].items() if s["finished"]}


def _assert_kept(old: dict, new: dict) -> None:
    """Everything recorded in ``old`` is still in ``new``: interventions (in order, not
    repeated), finished flags, recovery budgets spent, results seen, planner outcomes told."""
    assert new["interventions"][:len(old["interventions"])] == old["interventions"]
    for tid, trial in old["trials"].items():
        later = new["trials"][tid]
        assert later["finished"] or not trial["finished"], f"trial {tid} no longer finished"
        assert later["monitor"]["recoveries"] >= trial["monitor"]["recoveries"]
        assert later["monitor"]["history"]["total_reports"] >= \
            trial["monitor"]["history"]["total_reports"]
    told = set(old["trials"]) - set(old["planner"]["pending"])
    assert not told & set(new["planner"]["pending"]), "a told outcome is pending again"


@pytest.mark.timeout(1200)   # three drivers, each starting Ray: minutes on a loaded machine
def test_kill_resume_kill_resume_loses_nothing(tmp_path: Path) -> None:
    """Three trials (learning rates 0.1, 0.5, 0.2; 0.5 explodes at validation 3) on 2 CPUs. The
    driver is SIGKILLed after the intervention, restored, SIGKILLed again once the restored run
    has journaled a trial's end, and restored again: the journal read after each kill is kept
    whole by the next run (Ray's restore syncs the folder's *.json files back, not *.jsonl)."""
    exp_dir = tmp_path / "results" / "killed"
    proc = _driver("fit", tmp_path)
    try:
        _wait_for(proc, tmp_path / "fit.err", lambda: (exp_dir / INTERVENTIONS_FILE).exists(),
                  "intervention")
        time.sleep(0.5)
    finally:
        _kill_group(proc, tmp_path)
    before = [Intervention.from_dict(d) for d in read_json_lines(exp_dir / INTERVENTIONS_FILE)]
    assert [i.action for i in before] == ["mutate"]
    assert not (tmp_path / "fit.json").exists()   # killed mid-sweep
    first = read_state(exp_dir)

    proc = _driver("restore", tmp_path)
    try:
        _wait_for(proc, tmp_path / "restore.err",
                  lambda: _finished(read_state(exp_dir)) - _finished(first), "trial end journaled")
    finally:
        _kill_group(proc, tmp_path)
    second = read_state(exp_dir)
    assert _finished(second) - _finished(first)            # the restored run recorded an end
    assert len(_finished(second)) < 3 and not (tmp_path / "restore.json").exists()
    _assert_kept(first, second)

    proc = _driver("restore", tmp_path)
    try:
        assert proc.wait(timeout=200) == 0, (tmp_path / "restore.err").read_text()[-3000:]
    finally:
        _kill_group(proc, tmp_path)
    summary = json.loads((tmp_path / "restore.json").read_text())
    assert len(summary) == 3 and all(r["error"] is None for r in summary)
    assert all(r["metrics"]["validation.step"] == 14 and r["metrics"]["grad.norm"] < 100
               for r in summary)
    final = read_state(exp_dir)
    _assert_kept(second, final)
    assert _finished(final) == set(final["trials"]) and len(final["trials"]) == 3
    after = [Intervention.from_dict(d) for d in read_json_lines(exp_dir / INTERVENTIONS_FILE)]
    assert after == before   # not lost, and not repeated
    assert len(final["interventions"]) == 1 and final["planner"]["pending"] == {}
    mutated = before[0].trial_id
    assert final["trials"][mutated]["config"]["learning_rate"] <= 0.25
    budgets = {tid: t["monitor"]["recoveries"] for tid, t in final["trials"].items()}
    assert budgets[mutated] == 1 and sorted(budgets.values()) == [0, 0, 1]


@pytest.mark.slow
def test_train_tts_explosion_is_rolled_back_and_finishes_healthy(
        ray_local, corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real tiny Tacotron2 trainable, gradients blown up (x1e4) from step 5 while lr > 6e-4."""
    from tuner.core.config import config_from_dict
    from tuner.raytune.scheduler import SmartScheduler
    from tuner.trainable import train_tts

    config = {
        "data_dir": str(corpus_dir), "cache_dir": str(tmp_path / "cache"), "preset": "tiny",
        "model": {"decoder_rnn_dim": 64, "attention_rnn_dim": 64, "postnet_embedding_dim": 32,
                  "prenet_dim": 32},
        "batch_size": 4, "max_steps": 10, "validation_interval": 2, "num_threads": 1,
        "device": "cpu", "learning_rate": 1.0e-3, "tensorboard": False,
        "inject": {"explode_after_step": 5, "explode_lr_threshold": 6.0e-4},
    }
    # guards keep the slow-to-judge rules quiet on an untrained model; an explosion acts at once
    smart = config_from_dict({"training_recovery": {"min_training_time": 0,
                                                    "min_validation_steps": 100},
                              "optuna": {"seed": 0}})
    scheduler = SmartScheduler(config=smart)
    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)   # write result.json
    grid = tune.Tuner(
        train_tts, param_space=config,
        tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=1),
        run_config=tune.RunConfig(name="tts", storage_path=str(tmp_path / "results"), verbose=0),
    ).fit()
    result = grid[0]
    assert result.error is None
    [record] = scheduler.interventions
    assert (record.action, record.step, record.rolled_back_to) == ("mutate", 3, 2)
    assert result.config["learning_rate"] <= 0.5 * 1.0e-3
    # the rollback answers the explosion only: the guarded attention/gate rules change nothing
    assert set(record.changes()) <= {"learning_rate", "grad_clip_thresh"}
    final = result.metrics
    assert (final["validation.step"], final["training.step"]) == (5, 10)
    assert final["grad.norm"] < 200 and final["nan_skips"] == 0
    assert record.problems[0]["metric"] == "grad.norm" and record.problems[0]["value"] > 200
    rows = [json.loads(line) for line in (Path(result.path) / "result.json").read_text().splitlines()]
    after = [(r["validation.step"], r["training.step"]) for r in rows][-3:]
    assert after == [(3, 6), (4, 8), (5, 10)]   # resumed at step 4 (from scratch: (1, 2), ...)
    assert all(r["grad.norm"] < 200 for r in rows[-3:])
