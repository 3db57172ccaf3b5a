"""A sweep of REAL tiny-Tacotron2 trials through real Ray Tune: ``make bench-real``.

    python -m benchmarks.real_sweep --scenario benchmarks/scenarios/real.yaml --data-dir data/corpus \\
        [--configs N] [--steps S] [--variants natural transient] [--time-budget-s T] [--out FILE]

The scenario (benchmarks/scenarios/real.yaml) fixes a seeded stream of configs (learning rates
reaching into the unstable region), the steps per trial, the target and the schedulers. Every
scheduler (FIFO, ASHA, SmartScheduler) runs the same configs in the same order, ``max_concurrent``
one-thread trials at a time, ``train_tts`` unchanged. Variants: ``natural`` (no injected fault:
the failures are the configs' own) and ``transient`` (every trial gets the product's one-shot
learning-rate spike, ``inject: {lr_spike_at_step, lr_spike_steps, lr_spike_factor}`` from the
scenario's ``transient:`` block, tuner/training/faults.py: its end depends on no hyperparameter,
so no scheduler's adjustment ends it; the natural variant's FIFO run shows what it does
unscheduled). ``spike`` is retired and kept only to rerun the old JSON's variant: its spike
(benchmarks/real_faults.py) lasts while the learning rate stays above 0.75x the original, which
only Smart Tuner lowers, so only Smart Tuner could end it. FIFO runs first in each variant: its
trials are the ground truth ("usable when run unscheduled"; a *failing* trial is one FIFO's run
ends unusable).

Per scheduler and variant it writes the keys of issue 8 (benchmarks/metrics.py defines them for
the surrogate; here compute is counted in training steps, reports x validation_interval, and
"clean" validation loss is the reported one) with wall time and the 1-min load average before and
after, to ``benchmarks/results/real_sweep.json``. ASHA's trials that end at a rung before
max_t are its pruning (``healthy_pruned``); trials still running when ``--time-budget-s`` ends
a scheduler's run are marked ``cut`` and left out of the ground truth.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.metrics import wilson
from benchmarks.usable import is_usable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
VARIANTS = ("natural", "spike", "transient")
KEEP = ("training.step", "training.loss", "validation.loss", "grad.norm", "overfitting.gap",
        "validation.attention_score", "validation.gate_accuracy", "learning_rate", "nan_skips",
        "restored_from_nan", "training.skipped_steps", "training.interval_steps")


def load_real(path: str | Path) -> dict[str, Any]:
    """The real-sweep scenario (yaml.safe_load); one clear line on a missing or bad key."""
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"{p}: scenario file not found; use benchmarks/scenarios/real.yaml")
    sc = yaml.safe_load(p.read_text())
    for key in ("configs", "stream_seed", "max_steps", "validation_interval", "target", "max_concurrent",
                "schedulers", "search_space", "fixed"):
        if key not in (sc or {}):
            raise SystemExit(f"{p}: missing key {key!r}; see benchmarks/scenarios/real.yaml")
    return sc


def config_stream(sc: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The first ``n`` configs of the scenario's seeded stream (same for every scheduler)."""
    from benchmarks.scenario import _sample

    rng = random.Random(int(sc["stream_seed"]))
    return [{k: _sample(v, rng) for k, v in sc["search_space"].items()} for _ in range(n)]


def _scheduler(name: str, sc: dict[str, Any], reports: int) -> Any:
    from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler

    if name == "asha":
        return AsyncHyperBandScheduler(time_attr="training_iteration", max_t=reports, **dict(sc.get("asha", {})))
    if name == "smart":
        from tuner.raytune.scheduler import SmartScheduler

        return SmartScheduler(echo=True)
    return FIFOScheduler()


def transient_inject(sc: dict[str, Any]) -> dict[str, float]:
    """The ``inject`` mapping of the ``transient`` variant, from the scenario's ``transient:`` block."""
    t = sc.get("transient")
    fix = "the transient variant needs `transient: {at_step: S, steps: W, factor: K}` (S, W >= 1, K > 0); " \
          "see benchmarks/scenarios/real.yaml"
    if not isinstance(t, dict) or "at_step" not in t:
        raise SystemExit(f"scenario: transient = {t!r}: {fix}")
    try:
        inject = {"lr_spike_at_step": int(t["at_step"]), "lr_spike_steps": int(t.get("steps", 50)),
                  "lr_spike_factor": float(t.get("factor", 20.0))}
    except (TypeError, ValueError):
        raise SystemExit(f"scenario: transient = {t!r}: {fix}") from None
    if min(inject.values()) <= 0:
        raise SystemExit(f"scenario: transient = {t!r}: {fix}")
    return inject


def _trial_setup(variant: str, sc: dict[str, Any], configs: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """The trainable, the per-trial points and the keys every trial shares, of one variant."""
    from tuner.trainable import train_tts

    points = [{**c, "_index": i} for i, c in enumerate(configs)]
    if variant == "transient":   # the same mapping for every trial: a constant of the param space
        return train_tts, points, {"inject": transient_inject(sc)}
    if variant == "spike":       # retired (module docstring): flat keys, a per-trial threshold
        from benchmarks.real_faults import spike_keys, train_tts_spiked

        spike = sc["spike"]
        return train_tts_spiked, [{**p, **spike_keys(int(spike["after_step"]), float(spike["factor"]),
                                                     0.75 * float(p["learning_rate"]))} for p in points], {}
    return train_tts, points, {}


def run_scheduler(name: str, sc: dict[str, Any], configs: list[dict[str, Any]], variant: str,
                  data_dir: str, steps: int, storage: Path, time_budget_s: float | None) -> dict[str, Any]:
    """One scheduler over ``configs`` on real Ray Tune: per trial its reports (in global order) and actions."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    interval = int(sc["validation_interval"])
    reports_max = steps // interval
    trainable, points, shared = _trial_setup(variant, sc, configs)
    # per-trial keys: a choice over their values, which points_to_evaluate then fixes per trial
    space = {**dict(sc["fixed"]), "data_dir": data_dir, "max_steps": steps, "validation_interval": interval, **shared,
             **{k: tune.choice(sorted({p[k] for p in points})) for k in points[0]}}
    order: list[dict[str, Any]] = []
    ids: dict[str, int] = {}

    class Collect(tune.Callback):
        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            ids[trial.trial_id] = int(trial.config["_index"])
            order.append({"index": int(trial.config["_index"]), "t": round(time.time() - t0, 1),
                          "lr": float(trial.config["learning_rate"]),
                          **{k: _num(result.get(k)) for k in KEEP}})

    scheduler = _scheduler(name, sc, reports_max)
    t0 = time.time()
    load0 = os.getloadavg()[0]
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(metric="validation.loss", mode="min", num_samples=len(points), scheduler=scheduler,
                                    search_alg=BasicVariantGenerator(points_to_evaluate=points, random_state=0),
                                    max_concurrent_trials=int(sc["max_concurrent"]), time_budget_s=time_budget_s),
        run_config=tune.RunConfig(storage_path=str(storage), name=f"{name}", verbose=0, callbacks=[Collect()],
                                  failure_config=tune.FailureConfig(max_failures=1)),
    )
    grid = tuner.fit()
    wall = time.time() - t0
    errors = {int(r.config["_index"]): str(r.error).splitlines()[0] for r in grid if r.error and r.config}
    actions: dict[int, list[str]] = {}
    if name == "smart":
        for iv in scheduler.interventions:
            if iv.trial_id in ids:
                actions.setdefault(ids[iv.trial_id], []).append(iv.action)
    return {"wall_s": round(wall, 1), "load_1min_start": round(load0, 2), "load_1min_end": round(os.getloadavg()[0], 2),
            "time_budget_hit": bool(time_budget_s and wall >= time_budget_s - 5), "reports": order,
            "actions": {str(k): v for k, v in actions.items()}, "errors": {str(k): v for k, v in errors.items()},
            "interventions": [iv.line() for iv in scheduler.interventions] if name == "smart" else []}


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def trial_reports(run: dict[str, Any], n: int) -> dict[int, list[dict[str, Any]]]:
    """Config index -> its reports in one scheduler's run, in the order they arrived (after a
    rollback a trial reports earlier steps again: they stay where they came)."""
    return {i: [r for r in run["reports"] if r["index"] == i] for i in range(n)}


def summarize(name: str, run: dict[str, Any], fifo: dict[str, Any], n: int, sc: dict[str, Any], steps: int,
              best: float | None) -> dict[str, Any]:
    """Issue-8 keys for one scheduler's real run (FIFO's run of the same variant is the ground truth)."""
    interval, target = int(sc["validation_interval"]), float(sc["target"])
    reports_max = steps // interval
    asha = sc.get("asha", {})
    g, rf = int(asha.get("grace_period", 1)), int(asha.get("reduction_factor", 2))
    rungs = tuple(g * rf ** k for k in range(10) if g * rf ** k < reports_max)
    per, truth = trial_reports(run, n), trial_reports(fifo, n)

    def usable(r: dict[str, Any] | None) -> bool:
        return bool(r) and is_usable(r, target)

    def complete(reps: list[dict[str, Any]]) -> bool:
        return bool(reps) and (reps[-1]["training.step"] or 0) >= steps

    truth_usable = {i: usable(t[-1]) if complete(t) else None for i, t in truth.items()}
    rows = {}
    for i, reps in per.items():
        acts = list(run["actions"].get(str(i), []))
        last = reps[-1] if reps else None
        if reps and not complete(reps) and not acts and not run["errors"].get(str(i)):
            acts.append("prune" if name == "asha" and len(reps) in rungs else "cut")
        rows[i] = {"reports": len(reps), "usable": usable(last),
                   "actions": acts, "final_loss": last["validation.loss"] if last else None}
    compute = sum(r["reports"] for r in rows.values()) * interval
    failing = [i for i, u in truth_usable.items() if u is False]
    ok = [i for i, u in truth_usable.items() if u is True]
    first = None
    seen = 0
    for r in run["reports"]:
        seen += interval
        if first is None and usable(r):
            first = seen
    finals = [(r["final_loss"], i) for i, r in rows.items() if r["final_loss"] is not None]
    handed = min(finals)[1] if finals else None
    interventions = [a for i in ok for a in rows[i]["actions"] if a not in ("prune", "cut")]
    return {
        "compute_steps": compute,
        "compute_lost_share": sum(r["reports"] for r in rows.values() if not r["usable"]) * interval / compute if compute else None,
        "usable_models": sum(r["usable"] for r in rows.values()),
        "usable_per_100_reports": 100.0 * sum(r["usable"] for r in rows.values()) / (compute / interval) if compute else None,
        "faulty_usable": {"usable": sum(rows[i]["usable"] for i in failing), "faulty": len(failing),
                          "rate": sum(rows[i]["usable"] for i in failing) / len(failing) if failing else None,
                          "wilson95": wilson(sum(rows[i]["usable"] for i in failing), len(failing)),
                          "definition": "configs whose FIFO run (same variant) ends unusable"},
        "healthy_interventions": len(interventions),
        "healthy_pruned": sum(a == "prune" for i in ok for a in rows[i]["actions"]),
        "usable_unscheduled_trials": len(ok),
        "compute_to_first_usable": first,
        "regret": None if handed is None or best is None else rows[handed]["final_loss"] - best,
        "handed_trial": handed,
        "trials": {str(i): r for i, r in rows.items()},
        "wall_s": run["wall_s"], "load_1min_start": run["load_1min_start"], "load_1min_end": run["load_1min_end"],
        "time_budget_hit": run["time_budget_hit"], "errors": run["errors"], "interventions": run["interventions"],
    }


def summarize_doc(doc: dict[str, Any], sc: dict[str, Any]) -> None:
    """Fill ``doc["variants"]`` from ``doc["raw"]`` (FIFO of each variant is the ground truth)."""
    n, steps = len(doc["configs"]), int(doc["steps"])
    for variant, runs in doc["raw"].items():
        fifo = runs.get("fifo")
        if fifo is None:
            continue
        finals = [reps[-1]["validation.loss"] for rr in runs.values() for reps in trial_reports(rr, n).values()
                  if reps and reps[-1]["validation.loss"] is not None]
        best = min(finals) if finals else None
        doc["variants"][variant] = {"best_final_loss": best, **{
            name: summarize(name, runs[name], fifo, n, sc, steps, best) for name in ("fifo", "asha", "smart") if name in runs}}


def merge(paths: list[Path], sc: dict[str, Any]) -> dict[str, Any]:
    """One document from runs recorded by separate processes (same configs, steps and interval)."""
    docs = [json.loads(p.read_text()) for p in paths]
    doc = {**docs[0], "raw": {}, "variants": {}, "merged_from": [str(p) for p in paths],
           "commands": [d.get("command") for d in docs], "elapsed_s": max(d.get("elapsed_s") or 0 for d in docs)}
    for d in docs:
        if (d["configs"], d["steps"], d["validation_interval"]) != (doc["configs"], doc["steps"], doc["validation_interval"]):
            raise SystemExit(f"--merge: {d.get('command')} ran other configs/steps/interval than {doc.get('command')}")
        for variant, runs in d["raw"].items():
            doc["raw"].setdefault(variant, {}).update(runs)
    summarize_doc(doc, {**sc, "validation_interval": doc["validation_interval"]})
    return doc


def run(sc: dict[str, Any], data_dir: str, n: int, steps: int, variants: list[str], time_budget_s: float | None,
        out: Path) -> dict[str, Any]:
    """Every variant x scheduler; writes ``out`` after each scheduler (a cut run keeps what finished)."""
    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray").setLevel(logging.ERROR)
    configs = config_stream(sc, n)
    extra = {"transient_inject": transient_inject(sc)} if "transient" in variants else {}
    doc: dict[str, Any] = {"command": None, "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "configs": configs, "steps": steps, "validation_interval": sc["validation_interval"],
                           "target": sc["target"], "max_concurrent": sc["max_concurrent"], "time_budget_s": time_budget_s,
                           "torch_threads_per_trial": 1, **extra, "raw": {}, "variants": {}}
    ray.init(num_cpus=int(sc["max_concurrent"]), include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for variant in variants:
                doc["raw"][variant] = {}
                for name in sc["schedulers"]:
                    print(f"real sweep: {variant} / {name}: {n} configs x {steps} steps", flush=True)
                    doc["raw"][variant][name] = run_scheduler(name, sc, configs, variant, data_dir, steps,
                                                              Path(tmp) / variant, time_budget_s)
                    out.write_text(json.dumps(doc, indent=1) + "\n")
    finally:
        ray.shutdown()
    summarize_doc(doc, sc)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.real_sweep", description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(Path(__file__).parent / "scenarios" / "real.yaml"))
    ap.add_argument("--data-dir", default=str(ROOT / "data" / "corpus"))
    ap.add_argument("--configs", type=int, help="override the scenario's number of configs")
    ap.add_argument("--steps", type=int, help="override max_steps per trial")
    ap.add_argument("--interval", type=int, help="override validation_interval (steps per report)")
    ap.add_argument("--variants", nargs="+", default=["natural", "transient"], choices=VARIANTS,
                    help="natural: no injected fault; transient: the one-shot learning-rate spike of the scenario's "
                         "transient block (default: natural transient); spike: retired, its end depends on the "
                         "learning rate, which only Smart Tuner lowers (kept to rerun the old JSON's variant)")
    ap.add_argument("--time-budget-s", type=float, help="Ray Tune time_budget_s per scheduler run")
    ap.add_argument("--schedulers", nargs="+", choices=["fifo", "asha", "smart"], help="override the scenario's schedulers")
    ap.add_argument("--merge", nargs="+", type=Path, help="only merge these recorded JSON files into --out")
    ap.add_argument("--out", default=str(RESULTS / "real_sweep.json"))
    args = ap.parse_args(argv)
    sc = load_real(args.scenario)
    if args.merge:
        doc = merge(args.merge, sc)
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.out} from {len(args.merge)} files", flush=True)
        return 0
    if "transient" in args.variants:
        transient_inject(sc)   # a missing or bad block: one line before any trial starts
    if args.schedulers:
        sc["schedulers"] = args.schedulers
    if args.interval:
        sc["validation_interval"] = args.interval
    data_dir = str(Path(args.data_dir).resolve())
    if not (Path(data_dir) / "metadata.csv").exists():
        raise SystemExit(f"--data-dir {data_dir}: no metadata.csv there; build it with `smart-tuner corpus {args.data_dir}`")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    doc = run(sc, data_dir, args.configs or int(sc["configs"]), args.steps or int(sc["max_steps"]), args.variants,
              args.time_budget_s, out)
    doc["command"] = "python -m benchmarks.real_sweep " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    doc["elapsed_s"] = round(time.time() - t0, 1)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out} in {doc['elapsed_s']} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
