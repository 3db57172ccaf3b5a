"""Tier 1b: the same surrogate populations through REAL Ray Tune (a few seeds).

Each trial is a function trainable that steps ``SurrogateTrial`` and reports the contract
metrics with a checkpoint (``state.json``) at every report; on restore it continues from the
checkpoint under the trial's *current* config (a checkpoint of an older ``_restart_generation``
is ignored: fresh start), exactly as ``train_tts`` does. The population is fed in order through
``BasicVariantGenerator(points_to_evaluate=...)``, so every scheduler sees the same trials.
Schedulers: FIFO, FIFO + ``nan_budget_stopper`` (stop a trial at a non-finite loss/grad norm),
ASHA, PBT and ``tuner.raytune.scheduler.SmartScheduler``; the stopper also ends the whole
sweep when the budget of trial-reports is spent.

Each trial appends one JSON line per report to a shared log (time, trial, report index, the
config it trained under, validation.loss, whether its fault acted); the records of tier 1a are
rebuilt from it. Actions are inferred: a report followed by a report of the same trial that is
not the next report index or has another config was an intervention (mutate/restart/exploit);
a trial that ends before ``max_reports`` while the sweep was still well inside its budget
(``max_concurrent`` reports of slack) was stopped. Trials run with 2 / max_concurrent CPUs each.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from benchmarks.drivers import non_finite, pbt_mutations
from benchmarks.harness import RunRecord, TrialRecord, _score, _truth, best_reachable
from benchmarks.metrics import summarize
from benchmarks.scenario import Scenario, load_scenario, population
from benchmarks.surrogate import Calibration, SurrogateTrial, state_from_dict, state_to_dict
from benchmarks.usable import is_usable

HP_KEYS = ("learning_rate", "batch_size", "dropout", "weight_decay", "guided_attention_weight",
           "gate_loss_weight", "gate_pos_weight", "gate_threshold", "grad_clip_thresh", "lr_restart",
           "reset_attention", "_restart_generation")


def surrogate_trainable(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: one surrogate trial of (scenario, seed, index)."""
    from ray import tune

    sc = load_scenario(config["_scenario"])
    spec = population(replace(sc, trials=config["_trials"]), config["_seed"])[config["_index"]]
    sim = SurrogateTrial(spec.seed, spec.fault, Calibration(**config["_calibration"]))
    generation = int(config.get("_restart_generation", 0) or 0)
    ckpt = tune.get_checkpoint()
    state = None
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = state_from_dict(json.loads((Path(d) / "state.json").read_text()))
    sim.restore(state if state is not None and state.generation >= generation else None, config)
    hp = {k: config[k] for k in HP_KEYS if k in config}
    with open(config["_log"], "a") as log:
        while sim.state.report < sc.max_reports:
            metrics = sim.step(config)
            active = spec.fault is not None and spec.fault.active(sim.state.report, config)
            clean = sim.clean_metrics(config)
            log.write(json.dumps({"t": time.time_ns(), "trial": spec.trial_id, "report": sim.state.report,
                                  "config": hp, "val": metrics["validation.loss"] if math.isfinite(metrics["validation.loss"]) else None,
                                  "active": active, "diverged": sim.state.damage.diverged,
                                  "usable": is_usable(clean, sc.target),
                                  "clean": clean["validation.loss"] if math.isfinite(clean["validation.loss"]) else None}) + "\n")
            log.flush()
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "state.json").write_text(json.dumps(state_to_dict(sim.checkpoint())))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def nan_budget_stopper(budget: int, stop_nan: bool) -> Any:
    """A ray.tune.Stopper: ends the sweep after ``budget`` reports; optionally stops NaN trials."""
    from ray.tune import Stopper

    class NanBudgetStopper(Stopper):
        def __init__(self) -> None:
            self.budget, self.stop_nan, self.count = budget, stop_nan, 0

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            self.count += 1
            return self.stop_nan and non_finite(result)

        def stop_all(self) -> bool:
            return self.count >= self.budget

    return NanBudgetStopper()


def _scheduler(name: str, sc: Scenario) -> Any:
    from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, PopulationBasedTraining

    if name == "asha":
        return AsyncHyperBandScheduler(time_attr="validation.step", max_t=sc.max_reports, **dict(sc.asha))
    if name == "pbt":
        return PopulationBasedTraining(time_attr="validation.step", hyperparam_mutations=pbt_mutations(sc.search_space),
                                       log_config=False, **dict(sc.pbt))
    if name == "smart":
        from tuner.raytune.scheduler import SmartScheduler

        return SmartScheduler(echo=False)
    return FIFOScheduler()


def run_one(sc: Scenario, calibration: Calibration, seed: int, name: str, workdir: Path,
            log_dir: Path | None = None) -> RunRecord:
    """One scheduler over one seed's population on real Ray Tune; the record rebuilt from the log."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    specs = population(sc, seed)
    log = (log_dir or workdir).resolve() / f"{name}_{seed}.jsonl"   # trials run in their own folders
    log.write_text("")
    consts = {"_scenario": str(Path(sc.path).resolve()), "_seed": seed, "_trials": sc.trials, "_log": str(log),
              "_calibration": asdict(calibration)}
    mutable = pbt_mutations(sc.search_space)
    space: dict[str, Any] = {**dict(sc.fixed), **{k: s for k, s in specs[0].config.items() if k not in mutable and k not in sc.fixed},
                             **mutable, **consts, "_index": tune.randint(0, sc.trials)}
    points = [{**{k: v for k, v in s.config.items() if k in mutable}, "_index": i} for i, s in enumerate(specs)]
    stopper = nan_budget_stopper(sc.budget, stop_nan=name == "fifo_nan_stop")
    tuner = tune.Tuner(
        tune.with_resources(surrogate_trainable, {"cpu": 2.0 / sc.max_concurrent}),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric="validation.loss", mode="min", num_samples=sc.trials, scheduler=_scheduler(name, sc),
            search_alg=BasicVariantGenerator(points_to_evaluate=points), max_concurrent_trials=sc.max_concurrent,
        ),
        run_config=tune.RunConfig(storage_path=str(workdir / "ray"), name=f"{name}_{seed}", stop=stopper, verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=None)),
    )
    tuner.fit()
    return rebuild(sc, calibration, seed, name, specs, log)


def rebuild(sc: Scenario, calibration: Calibration, seed: int, name: str, specs: list, log: Path) -> RunRecord:
    """RunRecord from the per-report log (see the module docstring for the inference rules)."""
    lines = sorted((json.loads(x) for x in log.read_text().splitlines() if x.strip()), key=lambda d: d["t"])
    rec = RunRecord(name, seed, best_reachable=best_reachable(sc, calibration))
    by_id = {s.trial_id: s for s in specs}
    for s in specs:
        acted, usable, usable_clean = _truth(s, sc, calibration)
        rec.trials[s.trial_id] = TrialRecord(s.trial_id, s.fault.kind if s.fault else None, s.fault.onset if s.fault else None,
                                             s.fault.recoverable if s.fault else True, healthy=not acted,
                                             usable_unscheduled=usable, usable_without_fault=usable_clean)
    per: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for i, d in enumerate(lines, start=1):
        tr = rec.trials[d["trial"]]
        rec.compute = i
        tr.reports += 1
        seq = per[d["trial"]]
        if seq and (d["report"] != seq[-1][1]["report"] + 1 or d["config"] != seq[-1][1]["config"]):
            tr.window.clear()   # rolled back: the smoothing window restarts, as in tier 1a
        seq.append((i, d))
        if d["active"] and tr.manifested_at is None:
            tr.manifested_at = tr.reports
        _score(rec, tr, d["val"] if d["val"] is not None else math.nan, sc.target)
        if rec.compute_to_first_usable is None and d.get("usable"):
            rec.compute_to_first_usable = rec.compute
    for tid, seq in per.items():
        tr, spec = rec.trials[tid], by_id[tid]
        for n, ((_, a), (_, b)) in enumerate(zip(seq, seq[1:]), start=1):
            if b["report"] != a["report"] + 1 or b["config"] != a["config"]:
                tr.actions.append((n, "exploit" if name == "pbt" else "restart" if b["report"] == 1 else "restore"))
        last_i, last = seq[-1]
        tr.finished = last["report"] >= sc.max_reports
        if not tr.finished and last_i < min(rec.compute, sc.budget) - sc.max_concurrent:
            tr.stopped = True
            tr.actions.append((len(seq), "prune" if name == "asha" else "stop"))
        tr.final_loss = tr.last_reported = last["val"] if last["val"] is not None else math.nan
        tr.usable = bool(last.get("usable"))
        tr.clean_loss = last["clean"] if last.get("clean") is not None else math.nan
        tr.recovered = bool(spec.fault is not None and spec.fault.recoverable and tr.manifested_at is not None
                            and not tr.stopped and spec.fault.cured(last["config"]) and not last["diverged"]
                            and last["val"] is not None)
    return rec


def run(sc: Scenario, calibration: Calibration, seeds: tuple[int, ...], log_dir: Path | None = None) -> dict[str, Any]:
    """Tier-1b summaries per scheduler (sweep.json ``tier1b_ray_tune``); per-report logs kept in ``log_dir``."""
    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray").setLevel(logging.ERROR)
    t0 = time.time()
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"seeds": list(seeds), "trials": sc.trials}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in sc.schedulers:
                try:
                    runs = [run_one(sc, calibration, seed, name, Path(tmp), log_dir) for seed in seeds]
                    s = summarize(runs)
                    s.pop("decision_us_p50_in_sweep", None)
                    s.pop("decision_us_p99_in_sweep", None)
                    out[name] = s
                except ImportError as e:
                    out[name] = {"error": f"{type(e).__name__}: {e}"}
                print(f"  tier 1b {name}: done at {time.time() - t0:.0f} s", flush=True)
    finally:
        ray.shutdown()
    out["elapsed_s"] = round(time.time() - t0, 1)
    return out


if __name__ == "__main__":
    import sys

    scen = load_scenario(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/scenarios/default.yaml")
    print(json.dumps(run(scen, Calibration.load(), scen.ray_tune_seeds), indent=1, default=str))
