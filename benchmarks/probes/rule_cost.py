"""Where SmartScheduler's per-result decision time goes (issue 7 item 5, the rule cost):

    python -m benchmarks.probes.rule_cost profile [--trials N] [--decisions D]
    python -m benchmarks.probes.rule_cost tracker [--trials N] [--decisions D]

``profile``: N trials brought to full 200-report histories as ``benchmarks/overhead.py`` does
(its ``_results`` and ``_prefill``), then D decisions of ``SmartScheduler.on_trial_result``,
round-robin; each callee below is wrapped in ``time.perf_counter_ns`` and the p50 over the
decisions of its time per decision is printed (the wrappers add ~0.1-0.3 us per wrapped call,
so the parts add up to more than the unwrapped total, which is printed first).
``tracker``: the p50 of one ``LossTracker.push`` (stagnation's settings, the one tracker that
overfitting shares) on N trackers fed round-robin, each after 200 pushes: the cost of the
incremental statistics alone, in and out of the CPU cache.
A probe to read a profile with, not a benchmark of record (that is ``benchmarks.overhead``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from typing import Any, Callable

from benchmarks import overhead
from benchmarks.drivers import RUNNING, SimController, SimTrial

# (label, module, attribute path): the callees timed by ``profile``, outermost first
CALLEES = (
    ("Supervisor.on_result", "tuner.core.supervisor", "Supervisor.on_result"),
    ("  numeric", "tuner.core.supervisor", "numeric"),
    ("  TrialMonitor.observe", "tuner.core.policy", "TrialMonitor.observe"),
    ("    History.append", "tuner.core.history", "History.append"),
    ("      LossTracker.push", "tuner.core.rules._streams", "LossTracker.push"),
    ("      EarlierLevel.push", "tuner.core.rules._streams", "EarlierLevel.push"),
    ("    diagnose", "tuner.core.policy", "diagnose"),
    ("    TrialMonitor._track_best", "tuner.core.policy", "TrialMonitor._track_best"),
    ("    TrialMonitor._decide", "tuner.core.policy", "TrialMonitor._decide"),
)


def _wrap(fn: Callable[..., Any], label: str, spent: dict[str, int]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter_ns() - t0
    return timed


def _scheduler(n_trials: int, results: list[dict[str, Any]]) -> tuple[Any, list[SimTrial]]:
    controller = SimController(save_fn=lambda t: None)
    sched = overhead._Scheduler("smart", controller)
    trials = [SimTrial(i, overhead.CONFIG) for i in overhead._ids(n_trials, 0)]
    controller.trials = trials
    for t in trials:
        t.status = RUNNING
        sched.add(t)
    overhead._prefill(sched, trials, results, 200)
    return sched, trials


def profile(n_trials: int = 1, decisions: int = 2000) -> dict[str, float]:
    """{label: p50 microseconds per decision}; "total (unwrapped)" from a first pass without
    wrappers, the callees' from a second pass with them."""
    import importlib

    results = overhead._results(200 + 2 * decisions // n_trials + 4)
    sched, trials = _scheduler(n_trials, results)
    rounds = max(1, decisions // n_trials)
    totals = []
    for k in range(200, 200 + rounds):
        r = {**results[k], "training_iteration": k + 1}
        for t in trials:
            t0 = time.perf_counter_ns()
            sched.decide(t, r, 0.0)
            totals.append(time.perf_counter_ns() - t0)
    spent: dict[str, int] = defaultdict(int)
    originals = []
    for label, module, path in CALLEES:
        owner: Any = importlib.import_module(module)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        originals.append((owner, name, getattr(owner, name)))
        setattr(owner, name, _wrap(getattr(owner, name), label, spent))
    sup = sched.sched._ensure_supervisor(trials[0])
    for t in trials:      # the rules a monitor found once, each wrapped
        monitor = sup._trials[t.trial_id].monitor
        monitor._rules = tuple((_wrap(rule, "      " + rule.__name__, spent), cfg) for rule, cfg in monitor._rules)
    per: dict[str, list[int]] = defaultdict(list)
    try:
        for k in range(200 + rounds, 200 + 2 * rounds):
            r = {**results[k], "training_iteration": k + 1}
            for t in trials:
                spent.clear()
                sched.decide(t, r, 0.0)
                for label in list(spent):
                    per[label].append(spent[label])
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)
    out = {"total (unwrapped)": statistics.median(totals) / 1e3}
    for label, _, _ in CALLEES:
        out[label] = statistics.median(per[label]) / 1e3 if per[label] else 0.0
        if label.strip() == "diagnose":         # its rules, in RULES order, under it
            for name in RULE_NAMES:
                if per.get("      " + name):
                    out["      " + name] = statistics.median(per["      " + name]) / 1e3
    return out


RULE_NAMES = ("gradient_explosion", "validation_loss", "training_degradation", "attention_collapse",
              "gate_collapse", "overfitting", "stagnation")


def tracker(n_trials: int = 1000, decisions: int = 4000) -> float:
    """p50 microseconds of one LossTracker.push over n_trials trackers fed round-robin."""
    from tuner.core.rules._streams import LossTracker

    results = overhead._results(200 + decisions // n_trials + 4)
    trackers = [LossTracker("validation.loss", "training.loss", 200, 3, 20, (20, 100), 8) for _ in range(n_trials)]
    for r in results[:200]:
        for t in trackers:
            t.push(r)
    times = []
    for r in results[200:200 + max(1, decisions // n_trials)]:
        for t in trackers:
            t0 = time.perf_counter_ns()
            t.push(r)
            times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e3


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("profile", "tracker"))
    ap.add_argument("--trials", type=int, nargs="+", default=[1, 1000])
    ap.add_argument("--decisions", type=int, default=2000, help="timed decisions (pushes) per size")
    args = ap.parse_args(argv)
    for n in args.trials:
        if args.what == "tracker":
            print(f"{n} trackers: LossTracker.push p50 {tracker(n, args.decisions):.2f} us", flush=True)
            continue
        print(f"{n} trials, p50 us per decision:", flush=True)
        for label, value in profile(n, args.decisions).items():
            print(f"  {label:34s} {value:7.2f}", flush=True)


if __name__ == "__main__":
    main()
