"""benchmarks/probes/scale.py: the parts that run without Ray (the Ray sweep itself is the benchmark)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.probes.scale import _timed, folder_size, hooks_only


def test_folder_size_counts_every_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.json").write_bytes(b"12345")
    (tmp_path / "y").write_bytes(b"123")
    assert folder_size(tmp_path) == (8, 2)


def test_timed_scheduler_adds_hook_time_and_keeps_results() -> None:
    calls = []

    class Sched:
        def on_trial_add(self, controller: object, trial: object) -> None:
            calls.append(("add", trial))

        def on_trial_result(self, controller: object, trial: object, result: dict) -> str:
            calls.append(("result", trial))
            return "CONTINUE"

        on_trial_complete = on_trial_error = on_trial_remove = on_trial_add

        def choose_trial_to_run(self, controller: object) -> None:
            return None

    sched = _timed(Sched)()
    sched.on_trial_add(None, "t1")
    assert sched.on_trial_result(None, "t1", {}) == "CONTINUE"
    assert calls == [("add", "t1"), ("result", "t1")]
    assert sched.hook_seconds > 0.0


def test_hooks_only_runs_every_trial_through_smart_scheduler() -> None:
    out = hooks_only(trials=100, reports=3, concurrent=4)
    assert out["trials"] == 100 and out["interventions"] == 0   # healthy trials: left alone
    assert out["hook_s"] > 0   # 400 hook calls take more than the 5 ms that round to 0.0
