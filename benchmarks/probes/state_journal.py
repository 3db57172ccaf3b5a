"""Cost of saving the Supervisor's state (its journal) per completion and per intervention.

For each sweep size N: N trials report ``--reports`` healthy results each (one Supervisor, the
real TrialMonitor and rules, an in-memory recovery study so Optuna's SQLite file is not timed);
then ``--interventions`` trials explode once (the time of the journal write made by the
intervention is recorded), then all N trials complete one after another, with the state of all N
in memory (the time of each whole ``on_complete`` call is recorded: outcome told to the in-memory
study for the intervened trials, flag, journal write; and the journal write alone, as wall time
and as the thread's CPU time, which a loaded machine's preemption does not inflate; compactions
included where they fall; Python's garbage-collector pauses in that phase are recorded too). Also: the journal's size, the time to load and
compact it (a resume), and for comparison the time to write the whole state as one JSON file
(what earlier versions did at every completion).

    python -m benchmarks.probes.state_journal --trials 1000 10000 --out benchmarks/results/state_journal.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.factories import quadratic_metrics
from tuner.core.config import config_from_dict
from tuner.contract import RECOVERY_ACTIONS
from tuner.core.recovery import RecoveryPlanner
from tuner.core.supervisor import Supervisor
from tuner.core.supervisor_state import JOURNAL_FILE

CFG = config_from_dict({"training_recovery": {"min_training_time": 0, "min_validation_steps": 1},
                        "optuna": {"seed": 0}})
CONFIG = {"learning_rate": 0.1, "batch_size": 32}


def _ms(values: list[float]) -> dict[str, float]:
    """p50/p99/max/mean of durations in seconds, as milliseconds."""
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(values), "p50_ms": 1e3 * pick(0.50), "p99_ms": 1e3 * pick(0.99),
            "max_ms": 1e3 * ordered[-1], "mean_ms": 1e3 * statistics.fmean(values)}


def measure(trials: int, reports: int, interventions: int, folder: Path) -> dict[str, Any]:
    sup = Supervisor(CFG, folder, RecoveryPlanner(CFG, None, seed=0), echo=False)
    ids = [f"t{i:05d}" for i in range(trials)]
    for step in range(1, reports + 1):
        for trial_id in ids:
            sup.on_result(trial_id, CONFIG, quadratic_metrics(step, 0.1, False), f"/ckpt/{trial_id}/{step}",
                          now=0.0)   # one clock tick: no periodic save while filling
    sup.save()
    saves: list[float] = []
    save_cpu: list[float] = []
    real_save = sup.save

    def timed_save(now: float | None = None) -> Path | None:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return real_save(now)
        finally:
            saves.append(time.perf_counter() - start)
            save_cpu.append(time.thread_time() - cpu)

    sup.save = timed_save   # type: ignore[method-assign]
    for trial_id in ids[:interventions]:
        config = sup.expected_config(trial_id)
        action = sup.on_result(trial_id, config, quadratic_metrics(reports + 1, 0.1, True), None, now=0.0)
        assert action.kind in RECOVERY_ACTIONS, action
    intervention_saves = list(saves)
    saves.clear()
    save_cpu.clear()
    completions: list[float] = []
    pauses: list[float] = []   # Python's garbage collector, during the completions
    gc_start = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - gc_start[0])

    gc.callbacks.append(on_gc)
    try:
        for trial_id in ids:
            start = time.perf_counter()
            sup.on_complete(trial_id, None)
            completions.append(time.perf_counter() - start)
    finally:
        gc.callbacks.remove(on_gc)
    path = folder / JOURNAL_FILE
    size = path.stat().st_size
    start = time.perf_counter()
    resumed = Supervisor(CFG, folder, RecoveryPlanner(CFG, None, seed=0), echo=False)
    assert resumed.load() and len(resumed.trial_ids) == trials
    load_s = time.perf_counter() - start
    whole: list[float] = []
    for _ in range(3):
        start = time.perf_counter()
        (folder / "whole_state.json.tmp").write_text(json.dumps(sup.state_dict(), default=str))
        os.replace(folder / "whole_state.json.tmp", folder / "whole_state.json")
        whole.append(time.perf_counter() - start)
    return {"trials": trials, "reports_per_trial": reports,
            "completion": _ms(completions), "completion_save": _ms(saves),
            "completion_save_thread_cpu": _ms(save_cpu),
            "gc_pauses_during_completions": _ms(pauses) if pauses else {"n": 0},
            "intervention_save": _ms(intervention_saves),
            "journal_bytes_at_end": size, "journal_bytes_after_resume": path.stat().st_size,
            "resume_load_and_compact_s": load_s,
            "whole_state_file_write_ms": 1e3 * statistics.median(whole),
            "whole_state_file_bytes": (folder / "whole_state.json").stat().st_size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--reports", type=int, default=20, help="healthy results per trial")
    parser.add_argument("--interventions", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = []
    for n in args.trials:
        with tempfile.TemporaryDirectory() as folder:
            run = measure(n, args.reports, min(args.interventions, n), Path(folder))
        runs.append(run)
        print(json.dumps(run), flush=True)
    report = {"runs": runs, "python": platform.python_version(),
              "load_average_at_end": os.getloadavg(), "cpus": os.cpu_count(),
              "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
