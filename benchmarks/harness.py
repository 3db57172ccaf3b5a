"""Tier 1a: a small simulated Tune controller that drives one scheduler over one seeded population.

Execution model (the same for every scheduler): at most ``max_concurrent`` trials run at once;
each tick every running trial trains one report (in launch order) and the scheduler decides on
it; a stopped or finished trial frees its slot for the next one the scheduler chooses (FIFO
order, or PBT's ``choose_trial_to_run``). Compute is counted in trial-reports, including reports
re-trained after a rollback; the sweep ends when the budget is spent or no trial is left.
Simulated wall-clock time: tick x ``seconds_per_report`` (what the Supervisor's guards see).

"Reached" and "best": a trial's loss is the median of its last ``SMOOTH`` finite
validation.loss reports (cleared by a rollback), so one noisy report (real tiny-Tacotron2
validation losses scatter by ~8%) does not count as reaching the target.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from benchmarks.drivers import DRIVERS, PAUSED, RUNNING, TERMINATED, SimController, SimTrial
from benchmarks.scenario import Scenario, TrialSpec, population
from benchmarks.surrogate import Calibration, SurrogateTrial


SMOOTH = 3


def smoothed(window: deque[float]) -> float | None:
    """Median of a full window of the last SMOOTH finite losses, else None."""
    return statistics.median(window) if len(window) == SMOOTH else None


@dataclass
class TrialRecord:
    """What happened to one trial under one scheduler."""

    trial_id: str
    fault: str | None
    onset: int | None
    recoverable: bool
    healthy: bool                             # ground truth: the unscheduled trial shows no fault
    reports: int = 0                          # compute this trial used (trial-reports)
    manifested_at: int | None = None          # this trial's report count when the fault first acted
    actions: list[tuple[int, str]] = field(default_factory=list)   # (report count, action)
    stopped: bool = False
    finished: bool = False
    recovered: bool = False
    final_loss: float = math.nan
    window: deque[float] = field(default_factory=lambda: deque(maxlen=SMOOTH), repr=False)

    @property
    def latency(self) -> int | None:
        """Reports from fault onset to the first intervention or stop, inclusive (1 = at once)."""
        if self.manifested_at is None:
            return None
        for at, _ in self.actions:
            if at >= self.manifested_at:
                return at - self.manifested_at + 1
        return None


@dataclass
class RunRecord:
    scheduler: str
    seed: int
    compute: int = 0
    compute_to_target: int | None = None
    best_loss: float = math.inf
    curve: list[tuple[int, float]] = field(default_factory=list)   # (compute, best so far)
    trials: dict[str, TrialRecord] = field(default_factory=dict)
    decision_us: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)                   # smart: intervention lines


def ground_truth(spec: TrialSpec, scenario: Scenario, calibration: Calibration) -> bool:
    """True when the trial, run unscheduled for max_reports, shows its fault (i.e. is faulty)."""
    if spec.fault is None:
        return False
    sim = SurrogateTrial(spec.seed, spec.fault, calibration)
    for _ in range(scenario.max_reports):
        sim.step(spec.config)
        if spec.fault.active(sim.state.report, spec.config):
            return True
    return False


def run_population(scenario: Scenario, seed: int, scheduler: str, calibration: Calibration | None = None) -> RunRecord:
    """Drive ``scheduler`` over the population of ``seed``; return its record."""
    cal = calibration or Calibration.load()
    specs = population(scenario, seed)
    sims = {s.trial_id: SurrogateTrial(s.seed, s.fault, cal) for s in specs}
    controller = SimController(save_fn=lambda t: sims[t.trial_id].checkpoint())
    driver = DRIVERS[scheduler](scenario, seed, controller)
    rec = RunRecord(scheduler, seed)
    for s in specs:
        faulty = ground_truth(s, scenario, cal)
        rec.trials[s.trial_id] = TrialRecord(
            s.trial_id, s.fault.kind if s.fault else None, s.fault.onset if s.fault else None,
            s.fault.recoverable if s.fault else True, healthy=not faulty,
        )
        trial = SimTrial(s.trial_id, s.config)
        controller.trials.append(trial)
        driver.add(trial)
    faults = {s.trial_id: s.fault for s in specs}
    running: list[SimTrial] = []
    tick = 0
    while rec.compute < scenario.budget:
        while len(running) < scenario.max_concurrent:
            nxt = driver.choose()
            if nxt is None:
                break
            nxt.status = RUNNING
            running.append(nxt)
        if not running:
            break
        tick += 1
        now = tick * scenario.seconds_per_report
        for trial in list(running):
            if rec.compute >= scenario.budget:
                break
            _one_report(scenario, rec, driver, trial, sims[trial.trial_id], faults[trial.trial_id], running, now)
    supervisor = getattr(driver, "supervisor", None)
    if supervisor is not None:
        rec.log = [i.line() for i in supervisor.interventions]
    for trial in controller.trials:
        tr, sim, fault = rec.trials[trial.trial_id], sims[trial.trial_id], faults[trial.trial_id]
        tr.final_loss = float(trial.last_result.get("validation.loss", math.nan))
        tr.recovered = bool(
            fault is not None and fault.recoverable and tr.manifested_at is not None and not tr.stopped
            and fault.cured(trial.config) and not sim.state.damage.diverged and math.isfinite(tr.final_loss)
        )
    return rec


def _one_report(scenario: Scenario, rec: RunRecord, driver: Any, trial: SimTrial, sim: SurrogateTrial,
                fault: Any, running: list[SimTrial], now: float) -> None:
    tr = rec.trials[trial.trial_id]
    result: dict[str, Any] = sim.step(trial.config)
    result["training_iteration"] = int(result["validation.step"])
    rec.compute += 1
    tr.reports += 1
    if tr.manifested_at is None and fault is not None and fault.active(sim.state.report, trial.config):
        tr.manifested_at = tr.reports
    _score(rec, tr, result["validation.loss"], scenario.target)
    t0 = time.perf_counter_ns()
    verdict = driver.result(trial, result, sim.checkpoint(), now)
    rec.decision_us.append((time.perf_counter_ns() - t0) / 1e3)
    trial.last_result = result
    if verdict.kind == "stop":
        tr.actions.append((tr.reports, verdict.action))
        tr.stopped = True
        _finish(driver, trial, result, running)
        return
    if verdict.kind == "restore":
        tr.actions.append((tr.reports, verdict.action))
        trial.set_config(verdict.config or trial.config)
        sim.restore(verdict.checkpoint, trial.config)
        tr.window.clear()
    if trial.status == PAUSED or verdict.kind == "pause":
        trial.status = PAUSED
        running.remove(trial)
        return
    if sim.state.report >= scenario.max_reports:
        tr.finished = True
        _finish(driver, trial, result, running)


def _score(rec: RunRecord, tr: TrialRecord, val: float, target: float) -> None:
    """Update best-so-far and compute-to-target with the trial's smoothed loss."""
    if math.isfinite(val):
        tr.window.append(val)
    loss = smoothed(tr.window)
    if loss is None:
        return
    if loss < rec.best_loss:
        rec.best_loss = loss
        rec.curve.append((rec.compute, loss))
    if rec.compute_to_target is None and loss <= target:
        rec.compute_to_target = rec.compute


def _finish(driver: Any, trial: SimTrial, result: dict[str, Any], running: list[SimTrial]) -> None:
    driver.complete(trial, result)
    trial.status = TERMINATED
    running.remove(trial)
