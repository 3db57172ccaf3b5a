"""benchmarks/probes/rule_cost.py: the profile times every callee and each active rule, and puts
the wrapped functions back."""
from __future__ import annotations

from benchmarks.probes import rule_cost
from tuner.core import policy, supervisor
from tuner.core.rules import _streams


def test_profile_times_each_callee_and_rule_and_unwraps() -> None:
    before = (supervisor.Supervisor.on_result, policy.diagnose, _streams.LossTracker.push)
    got = rule_cost.profile(n_trials=2, decisions=20)
    assert (supervisor.Supervisor.on_result, policy.diagnose, _streams.LossTracker.push) == before
    labels = [label.strip() for label in got]
    assert labels[:3] == ["total (unwrapped)", "Supervisor.on_result", "numeric"]
    assert set(rule_cost.RULE_NAMES) <= set(labels)
    assert labels.index("diagnose") < labels.index("gradient_explosion") < labels.index("stagnation")
    assert all(v > 0 for v in got.values())
    # each part runs inside what contains it, decision by decision, so its median is no larger
    assert got["    History.append"] <= got["  TrialMonitor.observe"] <= got["Supervisor.on_result"]


def test_tracker_push_is_timed() -> None:
    assert rule_cost.tracker(n_trials=3, decisions=12) > 0
