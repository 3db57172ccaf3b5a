"""Per-result decision time of SmartScheduler, ASHA and PBT at 1, 100 and 1,000 concurrent trials.

``python -m benchmarks.overhead [--trials 1 100 1000]`` prints and returns, per scheduler and
population size, the p50 and p99 (nearest rank) of the wall time of ONE scheduler decision in
microseconds (``time.perf_counter_ns`` around the call only). All three run in the same process,
on the same precomputed healthy surrogate trajectory (40 reports), fed round-robin: every trial
reports once per round, so histories grow as in a sweep. Each cell times at least 2,000 decisions
(cohorts of trials that report min(40, max(8, 2000 // trials)) times, then complete).

- smart: ``tuner.scheduler.SmartScheduler.on_trial_result`` (checkpoint sync, record -> diagnose
  -> decide, state file written at most every 10 s into a temporary experiment folder); with
  healthy trials it never mutates, so no Ray controller call is made;
- asha: ``AsyncHyperBandScheduler.on_trial_result``; pbt: ``PopulationBasedTraining.on_trial_result``
  (perturbation_interval 4, so quantiles are recomputed every 4th result of a trial), both with
  the harness's lightweight trials and controller.
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
    sim = SurrogateTrial(0, None, Calibration.load())
    out = []
    for _ in range(n_reports):
        r: dict[str, Any] = sim.step(CONFIG)
        r["training_iteration"] = int(r["validation.step"])
        out.append(r)
    return out


class _Scheduler:
    """One scheduler under test: ``add`` trials, time ``decide`` calls, ``complete`` trials."""

    def __init__(self, name: str, controller: SimController) -> None:
        self.name, self.controller = name, controller
        if name == "smart":
            import tempfile

            from tuner.scheduler import SmartScheduler

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


def measure(name: str, n_trials: int, results: list[dict[str, Any]]) -> dict[str, float | int | None]:
    """p50/p99 microseconds of one decision of scheduler ``name`` with ``n_trials`` concurrent trials.

    Cohorts of ``n_trials`` trials each report ``rounds`` = min(len(results), max(8, 2000 // n))
    results round-robin, then complete; cohorts repeat until at least 2,000 decisions are timed.
    """
    controller = SimController(save_fn=lambda t: None)
    sched = _Scheduler(name, controller)
    rounds = min(len(results), max(8, 2000 // n_trials))
    times: list[float] = []
    cohort = 0
    while len(times) < 2000:
        trials = [SimTrial(f"o{cohort}_{i:05d}", CONFIG) for i in range(n_trials)]
        controller.trials = trials
        for t in trials:
            t.status = RUNNING
            sched.add(t)
        for k in range(rounds):
            r = results[k]
            for t in trials:
                t0 = time.perf_counter_ns()
                sched.decide(t, r, 60.0 * (k + 1))
                times.append((time.perf_counter_ns() - t0) / 1e3)
                t.status = RUNNING   # PBT may pause trials; keep everyone running
        for t in trials:
            sched.complete(t, results[rounds - 1])
            t.status = "TERMINATED"
        cohort += 1
    return {"p50": percentile(times, 50), "p99": percentile(times, 99), "decisions": len(times)}


def run(sizes: tuple[int, ...] = (1, 100, 1000), schedulers: tuple[str, ...] = ("smart", "asha", "pbt")) -> dict[str, Any]:
    """{scheduler: {str(size): {p50, p99, decisions}}}; a scheduler that cannot load gets {"error": ...}."""
    logging.getLogger("ray.tune.schedulers").setLevel(logging.WARNING)
    results = _results(40)
    out: dict[str, Any] = {}
    for name in schedulers:
        try:
            out[name] = {str(n): measure(name, n, results) for n in sizes}
        except ImportError as e:
            out[name] = {"error": f"{type(e).__name__}: {e}"}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[1, 100, 1000])
    args = ap.parse_args(argv)
    print(json.dumps(run(tuple(args.trials)), indent=1))


if __name__ == "__main__":
    main()
