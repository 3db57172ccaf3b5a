"""Supervisor on fake trials, without Ray: tables of result sequences -> actions.

Results come from ``tests.factories.quadratic_metrics`` (the contract metrics of a healthy quadratic
run, or of an exploded one: grad.norm 500, NaN losses). Checkpoints are plain path strings.
The RecoveryPlanner is the real one with an in-memory Optuna study.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.factories import SMART_TEST_CONFIG, quadratic_metrics
from tuner.core.config import config_from_dict
from tuner.contract import CHECKPOINT_RESTORED, CHECKPOINT_RESTORED_STEP, CHECKPOINT_UNREADABLE
from tuner.reporting.analysis_io import read_json_lines
from tuner.core.supervisor import JOURNAL_FILE, Supervisor
from tuner.core.supervisor_state import LEGACY_STATE_FILE, fold
from tuner.core.trial_errors import TrialError

CFG = config_from_dict(SMART_TEST_CONFIG)
CONFIG = {"learning_rate": 0.4, "batch_size": 32, "grad_clip_thresh": 1.0}


def _result(step: int, kind: str, lr: float = 0.4) -> dict[str, float]:
    """kind: "ok" (healthy), "boom" (exploded: grad.norm 500) or "nan" (NaN losses and grads)."""
    return {**quadratic_metrics(step, lr, kind == "boom", kind == "nan"), "training_iteration": float(step)}


def _run(sup: Supervisor, kinds: list[str], trial: str = "t1", config: dict | None = None,
         with_checkpoints: bool = True) -> list[Any]:
    """Feed results (steps 1..n) to the supervisor, following its config changes; the actions."""
    config = dict(config or CONFIG)
    actions = []
    for step, kind in enumerate(kinds, start=1):
        ckpt = f"/ckpt/{trial}/{step}" if with_checkpoints else None
        action = sup.on_result(trial, config, _result(step, kind), ckpt, now=float(step))
        actions.append(action)
        if action.new_config is not None:
            config = action.new_config
    return actions


@pytest.fixture
def sup(tmp_path: Path) -> Supervisor:
    return Supervisor(CFG, tmp_path / "exp", echo=False)


@pytest.mark.parametrize("kinds, expected", [
    (["ok"] * 8, ["continue"] * 8),
    (["ok", "ok", "ok", "boom"], ["continue", "continue", "continue", "mutate"]),
    (["ok", "boom"], ["continue", "mutate"]),
    (["boom"], ["restart"]),
    (["nan"], ["restart"]),
    (["nan", "nan"], ["restart", "restart"]),
])
def test_actions(sup: Supervisor, kinds: list[str], expected: list[str]) -> None:
    assert [a.kind for a in _run(sup, kinds)] == expected
    assert len(sup.interventions) == sum(k != "continue" for k in expected)


def test_explosion_rolls_back_to_the_last_healthy_checkpoint_with_halved_lr(sup: Supervisor) -> None:
    action = _run(sup, ["ok", "ok", "ok", "boom"])[-1]
    assert action.kind == "mutate"
    assert action.checkpoint == "/ckpt/t1/3"
    assert action.checkpoint_metrics["validation.step"] == 3.0
    assert action.checkpoint_metrics["training_iteration"] == 3.0
    assert 0.25 * 0.4 - 1e-12 <= action.new_config["learning_rate"] <= 0.5 * 0.4 + 1e-12
    assert action.new_config["batch_size"] == 32
    record = action.intervention
    assert (record.trial_id, record.step, record.action, record.rolled_back_to) == ("t1", 4, "mutate", 3)
    assert record.problems[0]["kind"] == "gradient_explosion"
    assert record.old_config["learning_rate"] == 0.4
    assert sup.recoveries("t1") == 1


@pytest.mark.parametrize("max_recoveries, kinds, expected_last", [
    (1, ["ok", "boom", "boom"], "stop"),
    (2, ["ok", "boom", "ok", "boom"], "mutate"),
    (2, ["ok", "boom", "boom", "boom"], "stop"),
    (0, ["ok", "boom"], "stop"),
])
def test_budget(tmp_path: Path, max_recoveries: int, kinds: list[str], expected_last: str) -> None:
    cfg = config_from_dict({"training_recovery": {"min_training_time": 0, "min_validation_steps": 1,
                                                  "max_recoveries_per_trial": max_recoveries}})
    sup = Supervisor(cfg, None, echo=False)
    actions = _run(sup, kinds)
    assert actions[-1].kind == expected_last
    if expected_last == "stop":
        assert "budget" in " ".join(actions[-1].intervention.reasons)
        assert sup.is_finished("t1")


@pytest.mark.parametrize("generation, expected", [(None, 1), (0, 1), (2, 3)])
def test_nan_from_the_first_report_restarts_with_a_new_generation(
        sup: Supervisor, generation: int | None, expected: int) -> None:
    config = dict(CONFIG) if generation is None else {**CONFIG, "_restart_generation": generation}
    action = _run(sup, ["nan"], config=config)[0]
    assert action.kind == "restart"
    assert action.checkpoint is None and action.intervention.rolled_back_to is None
    assert action.new_config["_restart_generation"] == expected
    assert action.new_config["learning_rate"] <= 0.5 * 0.4 + 1e-12


@pytest.mark.parametrize("kind", ["trial_crash", "out_of_memory"])
@pytest.mark.parametrize("batch_size, expected, reason", [
    (32, 16, "retrying with batch_size 32 -> 16"),
    (17, 8, "retrying with batch_size 17 -> 8"),
    (12, 8, "retrying with batch_size 12 -> 8"),
    (9, 8, "retrying with batch_size 9 -> 8"),
    (8, 8, "batch_size 8 is already at the minimum 8: retrying unchanged"),
    (4, 4, "batch_size 4 is already at the minimum 8: retrying unchanged"),   # never raised
    (None, 8, "retrying with batch_size (default 16) -> 8"),   # train_tts's default batch
])
def test_crash_and_oom_retry_with_half_the_batch(sup: Supervisor, kind: str, batch_size: int | None,
                                                 expected: int | None, reason: str) -> None:
    config = {"learning_rate": 0.1} if batch_size is None else {"learning_rate": 0.1,
                                                                "batch_size": batch_size}
    _run(sup, ["ok", "ok"], config=config)
    error = TrialError(kind, "RuntimeError", "boom")
    action = sup.on_error("t1", config, now=10.0, error=error)
    assert action.kind == "retry"
    assert action.new_config.get("batch_size") == expected
    assert action.checkpoint == "/ckpt/t1/2"
    assert action.intervention.action == "retry"
    assert [p["kind"] for p in action.intervention.problems] == [kind]
    assert action.intervention.reasons == (f"{error.describe()} (retry 1); {reason}",)
    assert f"retry ({kind}: " in action.intervention.line()


def test_error_retries_follow_the_adjustment_table(tmp_path: Path) -> None:
    """training_recovery.actions.trial_crash is a table entry like any other: a user file can
    make a crash retry lower the learning rate and keep the batch instead."""
    cfg = config_from_dict({"training_recovery": {"actions": {"trial_crash": {
        "batch_size": None, "learning_rate": {"scale": [0.5, 0.5]}}}}, "optuna": {"seed": 0}})
    sup = Supervisor(cfg, tmp_path / "exp", echo=False)
    action = sup.on_error("t1", CONFIG, now=1.0, error=TrialError("trial_crash", "ValueError", "x"))
    assert action.new_config == {**CONFIG, "learning_rate": 0.2}
    oom = sup.on_error("t1", action.new_config, now=2.0,
                       error=TrialError("out_of_memory", "OutOfMemoryError", "CUDA"))
    assert oom.new_config["batch_size"] == 16 and oom.new_config["learning_rate"] == 0.2


def test_error_without_a_kind_is_a_crash(sup: Supervisor) -> None:
    _run(sup, ["ok"])
    action = sup.on_error("t1", CONFIG, now=5.0)
    assert action.kind == "retry" and action.new_config["batch_size"] == 16
    assert action.intervention.problems[0]["kind"] == "trial_crash"


def test_lost_node_resumes_unchanged_outside_every_budget(sup: Supervisor, tmp_path: Path) -> None:
    """A lost node: config unchanged, no crash retry counted, recovery budget untouched, recorded
    as "resume" with its kind in the line and in interventions.jsonl; a later crash still halves."""
    _run(sup, ["ok", "ok", "ok", "boom"])   # one mutate: one recovery used
    config = sup.expected_config("t1")
    before = (sup.recoveries("t1"), sup._trials["t1"].retries)
    lost = TrialError("node_lost", "ActorDiedError", "The actor died because its node has died.")
    for n in (1, 2, 3):
        action = sup.on_error("t1", config, now=10.0 + n, error=lost, resume_step=3)
        assert action.kind == "resume" and action.new_config == config
        assert action.checkpoint is None   # the caller's own latest checkpoint
        assert f"(node loss {n})" in action.intervention.reasons[0]
    assert (sup.recoveries("t1"), sup._trials["t1"].retries) == before
    assert sup.expected_config("t1") == config
    line = action.intervention.line()
    assert "resume (node_lost: node lost (ActorDiedError: " in line
    assert line.endswith("; resumed from validation 3") and " -> " not in line
    records = read_json_lines(tmp_path / "exp" / "interventions.jsonl")
    assert [r["action"] for r in records] == ["mutate", "resume", "resume", "resume"]
    assert records[-1]["problems"][0]["kind"] == "node_lost"
    crash = sup.on_error("t1", config, now=20.0, error=TrialError("trial_crash", "ValueError", "x"))
    assert crash.new_config["batch_size"] == config["batch_size"] // 2
    assert "(retry 1)" in crash.intervention.reasons[0]


@pytest.mark.parametrize("attach_step, adopted", [(3, True), (2, False), (4, False)])
def test_checkpoint_attached_after_its_result(sup: Supervisor, attach_step: int, adopted: bool) -> None:
    """Ray's order: result N is decided before its checkpoint registers (matched by step)."""
    _run(sup, ["ok", "ok", "ok"], with_checkpoints=False)
    assert sup.healthy_checkpoint("t1") is None
    metrics = {"validation.step": float(attach_step), "training_iteration": float(attach_step)}
    assert sup.attach_checkpoint("t1", f"/c/{attach_step}", metrics) is adopted
    healthy = sup.healthy_checkpoint("t1")
    assert (healthy is not None and healthy.checkpoint == f"/c/{attach_step}") is adopted


def test_unhealthy_result_checkpoint_is_never_adopted(sup: Supervisor) -> None:
    _run(sup, ["ok", "ok"], with_checkpoints=False)
    sup.attach_checkpoint("t1", "/c/2", {"validation.step": 2.0})
    action = sup.on_result("t1", CONFIG, _result(3, "boom"), None, now=3.0)
    assert action.kind == "mutate" and action.checkpoint == "/c/2"
    assert sup.attach_checkpoint("t1", "/c/3", {"validation.step": 3.0}) is False


def _folder(step: int, root: str = "/ckpt/t1") -> str:
    return f"{root}/checkpoint_{step:06d}"


# (healthy checkpoints reported before (0: none), checkpoint folder the trial was given, the one it
#  restored, the last healthy checkpoint afterwards (None: none))
FALLBACK = [
    (3, _folder(3), _folder(2), _folder(2)),   # a rollback to it: the record was unreadable
    (3, _folder(4), _folder(2), _folder(2)),   # a resume from Ray's latest: 4 and 3 unreadable
    (3, _folder(4), _folder(3), _folder(3)),   # only the latest unreadable: the record restored
    (1, _folder(3), _folder(2), _folder(1)),   # the record is older than the one restored: readable
    (4, _folder(3), _folder(2), _folder(4)),   # the record is newer than the one given: not tried
    (3, _folder(3, "/other"), _folder(2, "/other"), _folder(3)),   # another trial's folders
    (0, _folder(3), _folder(2), None),         # no healthy checkpoint yet: none afterwards either
]


@pytest.mark.parametrize("reported, given, restored, expected", FALLBACK)
def test_a_checkpoint_fallback_moves_the_last_healthy_checkpoint(
        sup: Supervisor, reported: int, given: str, restored: str, expected: str | None) -> None:
    for step in range(1, reported + 1):
        sup.on_result("t1", CONFIG, _result(step, "ok"), _folder(step), now=float(step))
    back = int(restored[-6:])   # the trial reports once more from the restored validation step
    fallback = {CHECKPOINT_UNREADABLE: given, CHECKPOINT_RESTORED: restored,
                CHECKPOINT_RESTORED_STEP: float(back)}
    assert sup.on_result("t1", CONFIG, {**_result(back + 1, "ok"), **fallback}, None,
                         now=reported + 1.0).kind == "continue"   # before a periodic save is due
    healthy = sup.healthy_checkpoint("t1")
    assert (None if healthy is None else healthy.checkpoint) == expected
    if reported and expected != _folder(reported):   # moved: journaled with that result, resumed
        saved = fold(sup.experiment_dir / JOURNAL_FILE)["trials"]["t1"]["healthy"]
        assert (saved["checkpoint"], saved["step"]) == (restored, back)
        other = Supervisor(CFG, sup.experiment_dir, echo=False)
        assert other.load() and other.healthy_checkpoint("t1").checkpoint == restored
    action = sup.on_result("t1", CONFIG, _result(back + 2, "boom"), None, now=reported + 2.0)
    if expected is None:
        assert action.kind == "restart" and action.checkpoint is None
    else:   # the next rollback targets the readable checkpoint
        step = int(expected[-6:])
        assert (action.kind, action.checkpoint, action.intervention.rolled_back_to) == \
            ("mutate", expected, step)
        assert action.checkpoint_metrics["validation.step"] == float(step)


def test_outcome_told_to_the_planner_after_n_reports(tmp_path: Path) -> None:
    sup = Supervisor(CFG, None, outcome_reports=2, echo=False)
    _run(sup, ["ok", "ok", "boom"])
    assert "t1" in sup.planner.pending
    config = sup.expected_config("t1")
    for step in (3, 4):
        sup.on_result("t1", config, _result(step, "ok", lr=config["learning_rate"]), None, float(step))
    assert "t1" not in sup.planner.pending
    done = [t for t in sup.planner.study.trials if t.value is not None]
    assert len(done) == 1 and math.isclose(done[0].value, _result(4, "ok", config["learning_rate"])[
        "validation.loss"])


def test_interventions_jsonl_listeners_and_state_file(sup: Supervisor) -> None:
    heard = []
    sup.add_listener(heard.append)
    _run(sup, ["ok", "boom"], trial="a")
    _run(sup, ["nan"], trial="b")
    folder = sup.experiment_dir
    assert [i["action"] for i in read_json_lines(folder / "interventions.jsonl")] == ["mutate", "restart"]
    assert heard == sup.interventions
    saved = fold(folder / JOURNAL_FILE)
    assert set(saved["trials"]) == {"a", "b"} and len(saved["interventions"]) == 2
    assert Supervisor.saved_trial_ids(folder) == {"a", "b"}
    assert (folder / "recovery.db").is_file()


def test_state_round_trip(sup: Supervisor, tmp_path: Path) -> None:
    _run(sup, ["ok", "ok", "boom", "ok"], trial="a")
    _run(sup, ["ok"] * 3, trial="b")
    state = sup.state_dict()
    sup.save()
    other = Supervisor(CFG, tmp_path / "exp", echo=False)
    assert other.load() is True
    assert json.dumps(other.state_dict(), sort_keys=True) == json.dumps(state, sort_keys=True)
    assert other.interventions == sup.interventions
    assert other.recoveries("a") == 1 and other.healthy_checkpoint("b").checkpoint == "/ckpt/b/3"
    # the restored copy decides exactly as the original does
    config = sup.expected_config("a")
    next_a = [s.on_result("a", config, _result(5, "boom"), None, 5.0) for s in (sup, other)]
    assert next_a[0].kind == next_a[1].kind == "mutate"
    assert next_a[0].checkpoint == next_a[1].checkpoint == "/ckpt/a/4"


def _lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / JOURNAL_FILE).read_text().splitlines()]


def test_journal_appends_only_what_changed(sup: Supervisor) -> None:
    """After the first (snapshot) write, an intervention appends its record and one line for its
    trial; a completion appends one line; other trials are not rewritten."""
    folder = sup.experiment_dir
    for trial in ("a", "b", "c"):
        _run(sup, ["ok"], trial=trial)
        sup.on_complete(trial)
    before = _lines(folder)
    _run(sup, ["ok", "boom"], trial="d")
    added = _lines(folder)[len(before):]
    assert _lines(folder)[:len(before)] == before        # nothing rewritten
    assert [(r["kind"], r.get("id")) for r in added] == [("intervention", None), ("trial", "d")]
    assert added[1]["planner"]["pending"] is not None     # the planner's open proposal for d
    sup.on_complete("d")
    last = _lines(folder)[-1]
    assert (last["kind"], last["id"], last["state"]["finished"]) == ("trial", "d", True)
    assert last["planner"]["pending"] is None             # its outcome was told at completion


def test_journal_is_compacted(sup: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tuner.core.supervisor_state.COMPACT_MIN_LINES", 10)
    folder = sup.experiment_dir
    for step in range(1, 30):   # one trial, saved after every result
        sup.on_result("a", CONFIG, _result(step, "ok"), None, float(step))
        sup.save()
    lines = _lines(folder)
    assert [r["kind"] for r in lines[:2]] == ["header", "trial"] and len(lines) <= 11
    assert fold(folder / JOURNAL_FILE)["trials"]["a"]["monitor"]["history"]["total_reports"] == 29


def test_load_compacts_and_keeps_everything(sup: Supervisor, tmp_path: Path) -> None:
    _run(sup, ["ok", "ok", "boom", "ok"], trial="a")
    for _ in range(3):
        _run(sup, ["ok"], trial="b")
        sup.save()                           # b journaled three times, a once since its mutate
    other = Supervisor(CFG, tmp_path / "exp", echo=False)
    assert other.load() is True
    assert [r["kind"] for r in _lines(tmp_path / "exp")] == [
        "header", "trial", "trial", "intervention"]
    assert json.dumps(other.state_dict(), sort_keys=True) == json.dumps(sup.state_dict(),
                                                                         sort_keys=True)


def test_a_torn_last_line_is_skipped(sup: Supervisor, tmp_path: Path,
                                     caplog: pytest.LogCaptureFixture) -> None:
    _run(sup, ["ok", "boom"], trial="a")
    path = tmp_path / "exp" / JOURNAL_FILE
    whole = path.read_text()
    with open(path, "a") as f:
        f.write('{"kind": "trial", "id": "a", "sta')     # the driver was killed mid-write
    other = Supervisor(CFG, tmp_path / "exp", echo=False)
    assert other.load() is True and other.interventions == sup.interventions
    assert f"{path} line {whole.count(chr(10)) + 1} is not complete JSON" in caplog.text
    assert "sta" not in path.read_text().splitlines()[-1][-5:]   # compacted: the torn line gone


def test_an_earlier_versions_state_file_is_resumed(sup: Supervisor, tmp_path: Path) -> None:
    _run(sup, ["ok", "ok", "boom"], trial="a")
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / LEGACY_STATE_FILE).write_text(json.dumps(sup.state_dict()))
    assert Supervisor.saved_trial_ids(folder) == {"a"}
    other = Supervisor(CFG, folder, echo=False)
    assert other.load() is True and other.interventions == sup.interventions
    assert other.recoveries("a") == 1 and (folder / JOURNAL_FILE).is_file()


def test_a_new_sweep_replaces_a_journal_it_did_not_load(sup: Supervisor, tmp_path: Path) -> None:
    _run(sup, ["ok", "boom"], trial="old")
    fresh = Supervisor(CFG, tmp_path / "exp", echo=False)
    _run(fresh, ["ok"], trial="new")
    fresh.on_complete("new")
    assert Supervisor.saved_trial_ids(tmp_path / "exp") == {"new"}


@pytest.mark.parametrize("state, message", [({"version": 7}, "version 7")])
def test_bad_state_is_refused(sup: Supervisor, state: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sup.load_state_dict(state)


def test_failed_recoveries_are_told_as_failed_and_the_best_is_a_successful_one() -> None:
    """Recoveries that explode again at the next report are told +inf, although the report they
    failed on has a lower validation.loss than the successful ones' outcomes; recoveries that hold
    for outcome_reports are told their loss. The study's best trial is then a successful one."""
    sup = Supervisor(CFG, None, outcome_reports=2, echo=False)
    failed, succeeded = [], []
    for n, pattern in enumerate(["fail", "ok", "fail", "fail", "ok", "fail"]):
        trial = f"t{n}"
        _run(sup, ["ok", "ok", "boom"], trial=trial)      # the first recovery of each trial
        number = sup.planner.pending[trial]
        config = sup.expected_config(trial)
        if pattern == "fail":
            # explodes again at once, on a report whose loss (0.01) beats every successful outcome
            boom = {**_result(4, "boom"), "validation.loss": 0.01}
            action = sup.on_result(trial, config, boom, None, now=4.0)
            assert action.kind == "mutate"
            failed.append(number)
            succeeded.append(sup.planner.pending[trial])   # the second recovery holds to the end
            sup.on_complete(trial, _result(5, "ok"))
        else:
            for step in (4, 5):
                sup.on_result(trial, config, _result(step, "ok", lr=config["learning_rate"]), None, float(step))
            succeeded.append(number)
    trials = {t.number: t for t in sup.planner.study.trials}
    assert all(trials[n].value == math.inf for n in failed)
    assert all(math.isfinite(trials[n].value) for n in succeeded)
    assert sup.planner.study.best_trial.number in succeeded


def test_budget_spent_tells_the_last_recovery_failed() -> None:
    cfg = config_from_dict({"training_recovery": {"min_training_time": 0, "min_validation_steps": 1,
                                                  "max_recoveries_per_trial": 1}, "optuna": {"seed": 0}})
    sup = Supervisor(cfg, None, outcome_reports=3, echo=False)
    actions = _run(sup, ["ok", "ok", "boom", "boom"])
    assert [a.kind for a in actions][-2:] == ["mutate", "stop"]
    assert [t.value for t in sup.planner.study.trials] == [math.inf]
