"""Sweep metrics: per-scheduler summaries over seeds, Wilson intervals, best-so-far curves.

What a sweep user loses (issue 8; "usable" is defined once, in benchmarks/usable.py):
- ``compute_lost_share``: trial-reports spent on trials that end unusable / all trial-reports
  (pooled over seeds). Trials still running when the budget runs out count as they end.
- ``usable_models``: trials that end usable (sum over seeds); ``usable_per_100_reports``: the
  same per 100 trial-reports of compute.
- ``faulty_usable``: trials whose fault acts when they run unscheduled (ground truth) that were
  started and end usable, with ``faulty`` (how many were started) and ``usable_without_fault``
  (how many of them would end usable without the fault: the most any scheduler can save).
- ``healthy_interventions``: stops, mutations and restarts of trials that end usable when run
  unscheduled (ground truth). ASHA's pruning and PBT's exploits of such trials are their normal
  work and counted apart as ``healthy_pruned``; a trial that reaches ``max_reports`` completes
  (ASHA's STOP there is no intervention).
- ``compute_to_first_usable``: trial-reports until some trial's state is first usable; median
  over seeds (a seed without one counts as +inf).
- ``regret``: noise-free validation.loss of the model the sweep hands the user (the trial with
  the lowest last reported validation.loss, as ``ResultGrid.get_best_result`` picks it) minus
  the lowest noise-free loss reachable in the scenario (``harness.best_reachable``); median
  over seeds.

Earlier definitions (per scheduler, over all seeds of a scenario):
- ``compute_to_target``: trial-reports summed over all trials until the first report at which a
  trial's smoothed validation.loss (median of its last 3 reports, benchmarks/harness.py) <= target; median over seeds, a seed that never reaches it counting as +inf
  (so the median is null when more than half miss).
- ``best_loss_at_budget``: lowest smoothed validation.loss before the budget ran out;
  median over seeds.
- ``faults_injected``: faults that acted on a trial in this run (a trial never started, or
  cured before the onset, injects none). ``faults_recovered``: recoverable faults whose trial ended
  (finished or running at budget) not stopped, not diverged, with a config that satisfies the cure.
- ``false_positive_interventions``: stops, mutations, restarts and PBT exploits of trials whose
  ground truth (the same trial unscheduled) is healthy. For ASHA and PBT these are their normal
  pruning/exploit, counted by the same rule.
- ``detection_latency_reports``: median over faults of reports from the first faulty report to the
  first action on that trial, inclusive (1 = acted on the first faulty report).
NaN policy: NaN losses never count as reached or best; missing values are written as null.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Sequence

from benchmarks.faults import EXPLOSION_NAN_KINDS
from benchmarks.harness import PRUNING_ACTIONS, RunRecord


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score 95% interval of a proportion k / n (None when n == 0)."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def median_inf(values: Sequence[float | None]) -> float | None:
    """Median where None means "never" (+inf); None when the median itself is +inf."""
    if not values:
        return None
    m = statistics.median([math.inf if v is None else float(v) for v in values])
    return None if math.isinf(m) else m


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]); None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def _median(values: Iterable[float]) -> float | None:
    v = list(values)
    return statistics.median(v) if v else None


def summarize(runs: Sequence[RunRecord]) -> dict[str, Any]:
    """The sweep.json entry of one scheduler from its runs (one per seed)."""
    trials = [t for r in runs for t in r.trials.values()]
    manifested = [t for t in trials if t.manifested_at is not None]
    recoverable = [t for t in manifested if t.recoverable]
    recovered = [t for t in recoverable if t.recovered]
    unrecoverable = [t for t in manifested if not t.recoverable]
    healthy = [t for t in trials if t.healthy]
    fp = [a for t in healthy for a in t.actions]
    touched = [t for t in healthy if t.actions]
    latencies = [t.latency for t in manifested if t.latency is not None]
    by_kind: dict[str, Any] = {}
    for kind in sorted({t.fault for t in manifested if t.fault}):
        ks = [t for t in manifested if t.fault == kind]
        lat = [t.latency for t in ks if t.latency is not None]
        by_kind[kind] = {
            "injected": len(ks), "recovered": sum(t.recovered for t in ks),
            "acted_on": len(lat), "stopped": sum(t.stopped for t in ks),
            "detection_latency_reports": _median(lat),
        }
    explosion_lat = [t.latency for t in manifested if t.fault in EXPLOSION_NAN_KINDS and t.latency is not None]
    rate = len(recovered) / len(recoverable) if recoverable else None
    return {**user_metrics(runs), **{
        "compute_to_target": median_inf([r.compute_to_target for r in runs]),
        "compute_to_target_per_seed": [r.compute_to_target for r in runs],
        "target_reached_seeds": sum(r.compute_to_target is not None for r in runs),
        "best_loss_at_budget": _median(r.best_loss for r in runs if math.isfinite(r.best_loss)),
        "best_loss_at_budget_per_seed": [r.best_loss if math.isfinite(r.best_loss) else None for r in runs],
        "compute_used_mean": statistics.mean(r.compute for r in runs),
        "faults_injected": len(manifested),
        "recoverable_faults_injected": len(recoverable),
        "faults_recovered": len(recovered),
        "faults_recovered_rate": rate,
        "faults_recovered_wilson95": wilson(len(recovered), len(recoverable)),
        "unrecoverable_faults_injected": len(unrecoverable),
        "unrecoverable_faults_stopped": sum(t.stopped for t in unrecoverable),
        "false_positive_interventions": len(fp),
        "healthy_trials": len(healthy),
        "healthy_trials_intervened": len(touched),
        "healthy_trials_intervened_wilson95": wilson(len(touched), len(healthy)),
        "actions_on_faulty_before_onset": sum(
            1 for t in manifested for at, _ in t.actions if at < (t.manifested_at or 0)
        ),
        "detection_latency_reports": _median(latencies),
        "detection_latency_explosion_reports": _median(explosion_lat),
        "faults_acted_on": len(latencies),
        "by_fault": by_kind,
        "decision_us_p50_in_sweep": percentile([d for r in runs for d in r.decision_us], 50),
        "decision_us_p99_in_sweep": percentile([d for r in runs for d in r.decision_us], 99),
    }}


def user_metrics(runs: Sequence[RunRecord]) -> dict[str, Any]:
    """The issue-8 keys (see the module docstring) from the runs of one scheduler."""
    trials = [t for r in runs for t in r.trials.values()]
    compute = sum(t.reports for t in trials)
    usable = [t for t in trials if t.usable]
    faulty = [t for t in trials if t.faulty]
    faulty_ok = [t for t in faulty if t.usable]
    ok_unscheduled = [t for t in trials if t.usable_unscheduled]
    interventions = [a for t in ok_unscheduled for _, a in t.actions if a not in PRUNING_ACTIONS]
    pruned = [a for t in ok_unscheduled for _, a in t.actions if a in PRUNING_ACTIONS]
    regrets = [r.regret for r in runs]
    return {
        "compute_lost_share": sum(t.reports for t in trials if not t.usable) / compute if compute else None,
        "usable_models": len(usable),
        "usable_per_100_reports": 100.0 * len(usable) / compute if compute else None,
        "faulty_usable": {"usable": len(faulty_ok), "faulty": len(faulty),
                          "usable_without_fault": sum(t.usable_without_fault for t in faulty),
                          "rate": len(faulty_ok) / len(faulty) if faulty else None,
                          "wilson95": wilson(len(faulty_ok), len(faulty))},
        "healthy_interventions": len(interventions),
        "healthy_interventions_trials": sum(1 for t in ok_unscheduled if any(a not in PRUNING_ACTIONS for _, a in t.actions)),
        "healthy_pruned": len(pruned),
        "usable_unscheduled_trials": len(ok_unscheduled),
        "compute_to_first_usable": median_inf([r.compute_to_first_usable for r in runs]),
        "compute_to_first_usable_per_seed": [r.compute_to_first_usable for r in runs],
        "regret": median_inf(regrets),
        "regret_per_seed": regrets,
        "best_reachable_loss": runs[0].best_reachable if runs else None,
        "trials_started": len(trials),
        "compute_lost_split": _lost_split(trials, compute),
    }


def _lost_split(trials: Sequence[Any], compute: int) -> dict[str, float | None]:
    """Shares of all trial-reports lost, by why the trial ended unusable."""
    lost = {"faulty": 0, "healthy_stopped": 0, "healthy_finished_unusable": 0, "healthy_running_at_budget": 0}
    for t in trials:
        if t.usable:
            continue
        key = ("faulty" if t.faulty else "healthy_stopped" if t.stopped
               else "healthy_finished_unusable" if t.finished else "healthy_running_at_budget")
        lost[key] += t.reports
    return {k: v / compute if compute else None for k, v in lost.items()}


def ratio_to(runs: Sequence[RunRecord], base: Sequence[RunRecord]) -> float | None:
    """Median over seeds of compute_to_target(runs) / compute_to_target(base) (+inf when missed)."""
    ratios = []
    for r, b in zip(runs, base):
        if b.compute_to_target is None:
            continue
        ratios.append(math.inf if r.compute_to_target is None else r.compute_to_target / b.compute_to_target)
    return median_inf(ratios)


def best_so_far(runs: Sequence[RunRecord], budget: int, points: int = 60) -> list[tuple[int, float | None]]:
    """Median over seeds of the best validation.loss reached by each compute level."""
    grid = sorted({max(1, round(budget * i / points)) for i in range(1, points + 1)})
    out = []
    for c in grid:
        vals = []
        for r in runs:
            best = [v for at, v in r.curve if at <= c]
            vals.append(best[-1] if best else math.inf)
        m = statistics.median(vals)
        out.append((c, None if math.isinf(m) else m))
    return out
