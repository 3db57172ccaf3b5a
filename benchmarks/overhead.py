"""Per-result decision time of SmartScheduler, ASHA and PBT at 1, 100, 1,000 and 10,000 concurrent
trials whose histories are full (200 reports, the Smart Tuner's ``history_size``).

``python -m benchmarks.overhead [--trials 1 100 1000 10000] [--history 200] [--out FILE]`` prints,
per population size and scheduler (all three in the same process, same run), the p50 and p99
(nearest rank) of the wall time of ONE scheduler decision in microseconds
(``time.perf_counter_ns`` around the call only), on one precomputed healthy surrogate trajectory.

Every trial is first brought to ``--history`` reports without timing: SmartScheduler gets one
real decision (its monitor and incremental trackers are created) and then the rest of the
reports appended to its History (the ring buffer and trackers as ``History.append`` feeds them,
sharing one result dict per report across trials, so 10,000 x 200 reports fit in memory); ASHA
gets the results at its rung milestones (grace 4, reduction factor 3: 4, 12, 36, 108), so its
rungs hold every trial; PBT keeps only a last score per trial, set directly, with a quarter of
the trials due to perturb at their next report (perturbation interval 4). Then every trial
reports once more per round, round-robin, until at least 2,000 decisions are timed (one round at
10,000 trials).

- smart: ``tuner.raytune.scheduler.SmartScheduler.on_trial_result`` (checkpoint sync, record -> diagnose
  -> decide, state journal written at most every 10 s into a temporary experiment folder); with
  healthy trials it never mutates, so no Ray controller call is made;
- asha: ``AsyncHyperBandScheduler.on_trial_result``; pbt: ``PopulationBasedTraining.on_trial_result``
  (quantiles recomputed when a trial's perturbation is due), both with the harness's lightweight
  trials and controller.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

from benchmarks.drivers import RUNNING, SimController, SimTrial
from benchmarks.metrics import percentile
from benchmarks.surrogate import Calibration, SurrogateTrial

CONFIG = {"learning_rate": 1e-3, "batch_size": 16, "dropout": 0.1, "weight_decay": 1e-6,
          "guided_attention_weight": 1.0, "gate_loss_weight": 1.0}


def _results(n_reports: int) -> list[dict[str, Any]]:
    """A healthy trial's reports: the surrogate's metrics, with losses that keep improving slowly
    (0.5% noise) so that no rule and no early stopping acts within 2,200 reports: the surrogate's
    own curve flattens by report ~40 and early stopping would stop it at report 96, after which
    every timed decision would be a stop intervention, not the rules' per-result cost."""
    import math
    import random

    rng = random.Random(0)
    sim = SurrogateTrial(0, None, Calibration.load())
    out = []
    for k in range(n_reports):
        r: dict[str, Any] = sim.step(CONFIG)
        train = 2.4 + 20.0 * math.exp(-k / 1000)
        r["training.loss"] = train * (1 + rng.gauss(0, 0.001))
        r["validation.loss"] = (train + 0.1) * (1 + rng.gauss(0, 0.005))
        r["overfitting.gap"] = r["validation.loss"] - r["training.loss"]
        r["training_iteration"] = int(r["validation.step"])
        out.append(r)
    return out


class _Scheduler:
    """One scheduler under test: ``add`` trials, time ``decide`` calls, ``complete`` trials."""

    def __init__(self, name: str, controller: SimController) -> None:
        self.name, self.controller = name, controller
        if name == "smart":
            import tempfile

            from tuner.raytune.scheduler import SmartScheduler

            self._tmp = tempfile.TemporaryDirectory()
            self.sched = SmartScheduler(experiment_dir=self._tmp.name, echo=False)
            return
        if name == "asha":
            from ray.tune.schedulers import AsyncHyperBandScheduler

            self.sched: Any = AsyncHyperBandScheduler(time_attr="training_iteration", metric="validation.loss",
                                                      mode="min", max_t=100_000, grace_period=4, reduction_factor=3)
        else:
            from ray import tune
            from ray.tune.schedulers import PopulationBasedTraining

            self.sched = PopulationBasedTraining(time_attr="training_iteration", metric="validation.loss", mode="min",
                                                 perturbation_interval=4, log_config=False,
                                                 hyperparam_mutations={"learning_rate": tune.loguniform(1e-4, 1e-2)})

    def add(self, t: SimTrial) -> None:
        self.sched.on_trial_add(self.controller, t)

    def decide(self, t: SimTrial, r: dict[str, Any], now: float) -> Any:
        return self.sched.on_trial_result(self.controller, t, r)

    def complete(self, t: SimTrial, r: dict[str, Any]) -> None:
        self.sched.on_trial_complete(self.controller, t, r)


def _ids(n: int, cohort: int) -> list[str]:
    return [f"o{cohort}_{i:05d}" for i in range(n)]


def _prefill(sched: _Scheduler, trials: list[SimTrial], results: list[dict[str, Any]], history: int) -> None:
    """Bring every trial to ``history`` reports without timing (see the module docstring)."""
    name = sched.name
    if name == "smart":
        sup = sched.sched._ensure_supervisor(trials[0])
        shared = None
        for t in trials:
            sched.decide(t, results[0], 60.0)               # creates the trial's monitor and trackers
            h = sup._trials[t.trial_id].monitor.history
            if shared is None:
                keep = h.keep
                shared = [{k: float(v) for k, v in r.items() if isinstance(v, (int, float)) and (keep is None or k in keep)}
                          for r in results[1:history]]
            for clean in shared:                           # History.append without a new dict per trial
                h._record(clean)
        return
    if name == "asha":
        for k in sorted({4 * 3 ** i for i in range(8) if 4 * 3 ** i < history}):   # its rungs up to `history`
            for t in trials:
                sched.decide(t, {**results[k - 1], "training_iteration": k}, 60.0 * k)
                t.status = RUNNING
        return
    for i, t in enumerate(trials):                         # PBT keeps one score per trial
        state = sched.sched._trial_state[t]
        state.last_score = -float(results[history - 1]["validation.loss"])
        state.last_train_time = history
        state.last_perturbation_time = history - 1 - i % 4  # a quarter perturbs at each next report


def measure(name: str, n_trials: int, results: list[dict[str, Any]], history: int = 200,
            min_decisions: int = 2000) -> dict[str, float | int | None]:
    """p50/p99 microseconds of one decision of scheduler ``name`` with ``n_trials`` concurrent
    trials whose histories already hold ``history`` reports: every trial is prefilled (untimed),
    then each reports once more per round, round-robin, until ``min_decisions`` are timed."""
    controller = SimController(save_fn=lambda t: None)
    sched = _Scheduler(name, controller)
    trials = [SimTrial(i, CONFIG) for i in _ids(n_trials, 0)]
    controller.trials = trials
    for t in trials:
        t.status = RUNNING
        sched.add(t)
    _prefill(sched, trials, results, history)
    rounds = max(1, -(-min_decisions // n_trials))
    times: list[float] = []
    for k in range(history, history + rounds):
        r = {**results[k], "training_iteration": k + 1}
        for t in trials:
            t0 = time.perf_counter_ns()
            sched.decide(t, r, 60.0 * (k + 1))
            times.append((time.perf_counter_ns() - t0) / 1e3)
            t.status = RUNNING   # PBT may pause trials; keep everyone running
    for t in trials:
        sched.complete(t, results[history + rounds - 1])
    return {"p50": percentile(times, 50), "p99": percentile(times, 99), "decisions": len(times),
            "history_reports": history}


def run(sizes: tuple[int, ...] = (1, 100, 1000), schedulers: tuple[str, ...] = ("smart", "asha", "pbt"),
        history: int = 200) -> dict[str, Any]:
    """{scheduler: {str(size): {p50, p99, decisions, history_reports}}}; a scheduler that cannot
    load gets {"error": ...}. Sizes are measured in the order given, all schedulers per size."""
    logging.getLogger("ray.tune.schedulers").setLevel(logging.WARNING)
    results = _results(history + 2000)
    out: dict[str, Any] = {}
    for n in sizes:
        for name in schedulers:
            try:
                out.setdefault(name, {})[str(n)] = measure(name, n, results, history)
            except ImportError as e:
                out[name] = {"error": f"{type(e).__name__}: {e}"}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[1, 100, 1000, 10000])
    ap.add_argument("--history", type=int, default=200, help="reports already in every trial's history")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    text = json.dumps(run(tuple(args.trials), history=args.history), indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
