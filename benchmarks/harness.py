"""Tier 1a: a small simulated Tune controller that drives one scheduler over one seeded trial stream.

Execution model (the same for every scheduler): at most ``max_concurrent`` trials run at once;
each tick every running trial trains one report (in launch order) and the scheduler decides on
it; a stopped or finished trial frees its slot. A free slot goes to the trial the scheduler
chooses (a paused one, or PBT's ``choose_trial_to_run``), else to the next trial of the seed's
stream (benchmarks/scenario.py ``trial_stream``: the same configs in the same order for every
scheduler). The sweep ends when the budget of trial-reports is spent. Compute is counted in
trial-reports, including reports re-trained after a rollback. Simulated wall-clock time: tick x
``seconds_per_report`` (what the Supervisor's guards see).

"Reached" and "best": a trial's loss is the median of its last ``SMOOTH`` finite
validation.loss reports (cleared by a rollback), so one noisy report (real tiny-Tacotron2
validation losses scatter by ~8%) does not count as reaching the target.

Ground truth per trial (``ground_truth``): the same trial run unscheduled for ``max_reports``:
whether its fault acts (faulty) and whether it ends usable (benchmarks/usable.py), and whether
it would end usable without its fault. "Usable" at the end of a run is judged on the trial's
noise-free state (``SurrogateTrial.clean_metrics``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from benchmarks.drivers import DRIVERS, PAUSED, RUNNING, TERMINATED, SimController, SimTrial, TrialAction
from benchmarks.scenario import Scenario, TrialSpec, trial_stream
from benchmarks.surrogate import Calibration, SurrogateTrial
from benchmarks.usable import is_usable

SMOOTH = 3
# ASHA's and PBT's normal work: healthy_pruned
PRUNING_ACTIONS: frozenset[TrialAction] = frozenset({"prune", "exploit"})


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
    actions: list[tuple[int, TrialAction]] = field(default_factory=list)   # (report count, action)
    stopped: bool = False
    finished: bool = False
    recovered: bool = False
    final_loss: float = math.nan
    usable_unscheduled: bool = False          # ground truth: the unscheduled trial ends usable
    usable_without_fault: bool = False        # ... and would without its fault
    usable: bool = False                      # this run: the trial ends usable
    last_reported: float = math.nan           # its last reported validation.loss (what Ray ranks by)
    clean_loss: float = math.nan              # its noise-free validation.loss at the end
    window: deque[float] = field(default_factory=lambda: deque(maxlen=SMOOTH), repr=False)

    @property
    def faulty(self) -> bool:
        return not self.healthy

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
    compute_to_first_usable: int | None = None
    best_loss: float = math.inf
    best_reachable: float = math.nan          # clean loss of the best config of the space after max_reports
    curve: list[tuple[int, float]] = field(default_factory=list)   # (compute, best so far)
    trials: dict[str, TrialRecord] = field(default_factory=dict)
    decision_us: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)                   # smart: intervention lines

    @property
    def handed(self) -> TrialRecord | None:
        """The trial the sweep hands the user: the lowest finite last-reported validation.loss."""
        done = [t for t in self.trials.values() if math.isfinite(t.last_reported)]
        return min(done, key=lambda t: t.last_reported) if done else None

    @property
    def regret(self) -> float | None:
        """Clean loss of the handed trial minus the best clean loss reachable in the scenario."""
        h = self.handed
        if h is None or not math.isfinite(h.clean_loss):
            return None
        return h.clean_loss - self.best_reachable


def _unscheduled(spec: TrialSpec, scenario: Scenario, calibration: Calibration, fault: Any) -> tuple[bool, bool]:
    sim = SurrogateTrial(spec.seed, fault, calibration)
    acted = False
    for _ in range(scenario.max_reports):
        sim.step(spec.config)
        acted = acted or (fault is not None and fault.active(sim.state.report, spec.config))
    return acted, is_usable(sim.clean_metrics(spec.config), scenario.target)


_TRUTH: dict[tuple[str, str, int, float, str], tuple[bool, bool, bool]] = {}


def _truth(spec: TrialSpec, scenario: Scenario, calibration: Calibration) -> tuple[bool, bool, bool]:
    """(faulty, usable unscheduled, usable without its fault), cached: every scheduler asks for it."""
    key = (spec.trial_id, repr(spec.fault) + repr(sorted(spec.config.items())), scenario.max_reports, scenario.target, repr(calibration))
    if key not in _TRUTH:
        acted, usable = _unscheduled(spec, scenario, calibration, spec.fault)
        usable_clean = _unscheduled(spec, scenario, calibration, None)[1] if spec.fault is not None else usable
        _TRUTH[key] = (acted, usable, usable_clean)
    return _TRUTH[key]


def ground_truth(spec: TrialSpec, scenario: Scenario, calibration: Calibration) -> bool:
    """True when the trial, run unscheduled for max_reports, shows its fault (i.e. is faulty)."""
    return spec.fault is not None and _unscheduled(spec, scenario, calibration, spec.fault)[0]


_REACHABLE: dict[str, float] = {}


def best_reachable(scenario: Scenario, calibration: Calibration, grid: int = 25) -> float:
    """Lowest noise-free validation.loss after max_reports, fault-free, over a grid of the search space
    (the loss depends on learning_rate, batch_size, dropout and weight_decay only)."""
    key = repr((scenario.max_reports, sorted(scenario.search_space.items()), sorted(dict(scenario.fixed).items()), calibration, grid))
    if key in _REACHABLE:
        return _REACHABLE[key]
    axes: list[tuple[str, list[Any]]] = []
    for name, spec in scenario.search_space.items():
        kind, arg = next(iter(spec.items()))
        if name not in ("learning_rate", "batch_size", "dropout", "weight_decay"):
            continue
        if kind == "loguniform":
            lo, hi = math.log(arg[0]), math.log(arg[1])
            axes.append((name, [math.exp(lo + (hi - lo) * i / (grid - 1)) for i in range(grid)]))
        elif kind == "uniform":
            axes.append((name, [arg[0] + (arg[1] - arg[0]) * i / (grid - 1) for i in range(grid)]))
        elif kind == "choice":
            axes.append((name, list(arg)))
        else:
            axes.append((name, [arg]))
    best = math.inf
    sim = SurrogateTrial(0, None, calibration)
    for values in product(*[v for _, v in axes]):
        cfg = {**dict(scenario.fixed), **{n: x for (n, _), x in zip(axes, values)}}
        floor = sim.floor(cfg)   # the healthy clean curve after max_reports (surrogate.py)
        best = min(best, floor + (calibration.loss0 - floor) * math.exp(-sim.rate(cfg) * scenario.max_reports))
    _REACHABLE[key] = best
    return best


def run_population(scenario: Scenario, seed: int, scheduler: str, calibration: Calibration | None = None) -> RunRecord:
    """Drive ``scheduler`` over the trial stream of ``seed`` until the budget is spent."""
    cal = calibration or Calibration.load()
    stream = trial_stream(scenario, seed)
    sims: dict[str, SurrogateTrial] = {}
    specs: dict[str, TrialSpec] = {}
    controller = SimController(save_fn=lambda t: sims[t.trial_id].checkpoint())
    driver = DRIVERS[scheduler](scenario, seed, controller)
    rec = RunRecord(scheduler, seed, best_reachable=best_reachable(scenario, cal))

    def launch() -> SimTrial:
        s = next(stream)
        acted, usable, usable_clean = _truth(s, scenario, cal)
        rec.trials[s.trial_id] = TrialRecord(
            s.trial_id, s.fault.kind if s.fault else None, s.fault.onset if s.fault else None,
            s.fault.recoverable if s.fault else True, healthy=not acted,
            usable_unscheduled=usable, usable_without_fault=usable_clean,
        )
        sims[s.trial_id], specs[s.trial_id] = SurrogateTrial(s.seed, s.fault, cal), s
        trial = SimTrial(s.trial_id, s.config)
        controller.trials.append(trial)
        driver.add(trial)
        return trial

    running: list[SimTrial] = []
    tick = 0
    while rec.compute < scenario.budget:
        while len(running) < scenario.max_concurrent:
            nxt = driver.choose()
            if nxt is None:
                launch()
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
            spec = specs[trial.trial_id]
            _one_report(scenario, rec, driver, trial, sims[trial.trial_id], spec.fault, running, now)
    supervisor = getattr(driver, "supervisor", None)
    if supervisor is not None:
        rec.log = [i.line() for i in supervisor.interventions]
    for trial in controller.trials:
        tr, sim, fault = rec.trials[trial.trial_id], sims[trial.trial_id], specs[trial.trial_id].fault
        tr.final_loss = tr.last_reported = float(trial.last_result.get("validation.loss", math.nan))
        clean = sim.clean_metrics(trial.config) if sim.state.report else None
        tr.clean_loss = clean["validation.loss"] if clean else math.nan
        tr.usable = is_usable(clean, scenario.target)
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
    if rec.compute_to_first_usable is None and is_usable(sim.clean_metrics(trial.config), scenario.target):
        rec.compute_to_first_usable = rec.compute
    t0 = time.perf_counter_ns()
    verdict = driver.result(trial, result, sim.checkpoint(), now)
    rec.decision_us.append((time.perf_counter_ns() - t0) / 1e3)
    trial.last_result = result
    at_max_t = sim.state.report >= scenario.max_reports
    if verdict.kind == "stop":
        if at_max_t and verdict.action == "prune":   # ASHA's STOP at max_t is normal completion
            tr.finished = True
        else:
            tr.actions.append((tr.reports, verdict.action))
            tr.stopped = True
        _finish(driver, trial, result, running)
        return
    if verdict.kind == "restore":
        tr.actions.append((tr.reports, verdict.action))
        trial.set_config(verdict.config or trial.config)
        sim.restore(verdict.checkpoint, trial.config)
        tr.window.clear()
        at_max_t = sim.state.report >= scenario.max_reports
    if trial.status == PAUSED or verdict.kind == "pause":
        trial.status = PAUSED
        running.remove(trial)
        return
    if at_max_t:
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
