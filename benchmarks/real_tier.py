"""Tier 2: a small real sweep of tiny-Tacotron2 trials on CPU, FIFO against SmartScheduler.

``python -m benchmarks.sweep --scenario ... --real`` (or ``python -m benchmarks.real_tier``) runs
the same two trials under each scheduler on real Ray Tune with ``tuner.trainable.train_tts``:

- ``healthy``: learning_rate 1e-3;
- ``explodes``: learning_rate 3e-3 with ``inject: {explode_lr_after_step: EXPLODE_AT}``: from that
  step on, while its learning rate is above 0.75 x the initial one, its gradients are multiplied
  by 1e4 (tuner/training/faults.py), so halving the learning rate cures it.

Each trial trains ``MAX_STEPS`` steps, validating every ``INTERVAL``; one CPU thread per trial.
Figures per scheduler: per trial the final and best validation.loss, whether its last report is
finite, the training steps it ran (re-trained steps after a rollback count again) and the
interventions; and the wall time of the sweep. Minutes on 2 cores.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MAX_STEPS, INTERVAL, EXPLODE_AT = 150, 25, 60
TRIALS = {"healthy": {"learning_rate": 1e-3}, "explodes": {"learning_rate": 3e-3, "inject": {"explode_lr_after_step": EXPLODE_AT}}}


def _sweep(name: str, storage: Path) -> dict[str, Any]:
    from ray import tune

    from tuner.trainable import train_tts

    base = {"data_dir": str(ROOT / "data" / "corpus"), "preset": "tiny", "max_steps": MAX_STEPS,
            "validation_interval": INTERVAL, "num_threads": 1, "tensorboard": False, "device": "cpu", "seed": 0}
    space = {**base, "_name": tune.grid_search(list(TRIALS)),
             "learning_rate": tune.sample_from(lambda spec: TRIALS[spec.config["_name"]]["learning_rate"]),
             "inject": tune.sample_from(lambda spec: TRIALS[spec.config["_name"]].get("inject", {}))}
    rows: dict[str, list[dict[str, float]]] = {label: [] for label in TRIALS}

    class Collect(tune.Callback):
        """Every reported result, per trial label (the driver sees them all, rollbacks included)."""

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            rows[trial.config["_name"]].append({k: float(result.get(k, math.nan)) for k in
                                               ("validation.loss", "training.step", "learning_rate", "grad.norm")})

    scheduler: Any = None
    if name == "smart":
        from tuner.raytune.scheduler import SmartScheduler

        scheduler = SmartScheduler(echo=True)
    t0 = time.time()
    tuner = tune.Tuner(
        tune.with_resources(train_tts, {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(metric="validation.loss", mode="min", scheduler=scheduler, max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=str(storage), name=name, verbose=0, callbacks=[Collect()],
                                  failure_config=tune.FailureConfig(max_failures=1)),
    )
    grid = tuner.fit()
    out: dict[str, Any] = {"wall_s": round(time.time() - t0, 1), "trials": {}}
    for res in grid:
        label = res.config.get("_name")
        vals = [r["validation.loss"] for r in rows[label]]
        finite = [v for v in vals if math.isfinite(v)]
        out["trials"][label] = {
            "reports": len(vals), "training_steps_run": len(vals) * INTERVAL,
            "steps_reported": [int(r["training.step"]) for r in rows[label] if math.isfinite(r["training.step"])],
            "max_grad_norm": max((r["grad.norm"] for r in rows[label] if math.isfinite(r["grad.norm"])), default=None),
            "non_finite_reports": sum(not math.isfinite(r["validation.loss"]) or not math.isfinite(r["grad.norm"])
                                      for r in rows[label]),
            "final_validation_loss": vals[-1] if vals and math.isfinite(vals[-1]) else None, "best_validation_loss": min(finite) if finite else None,
            "last_report_finite": bool(vals) and math.isfinite(vals[-1]),
            "final_learning_rate": res.config.get("learning_rate"), "error": str(res.error) if res.error else None,
        }
    if scheduler is not None:
        out["interventions"] = [i.line() for i in scheduler.interventions]
    return out


def _markdown(doc: dict[str, Any]) -> str:
    rows = ["| scheduler | trial | reports | training steps run | final / best validation.loss | last finite | final lr |",
            "|---|---|---|---|---|---|---|"]
    for name in ("fifo", "smart"):
        for label, t in doc.get(name, {}).get("trials", {}).items():
            fin, best = t["final_validation_loss"], t["best_validation_loss"]
            rows.append(f"| {name} | {label} | {t['reports']} | {t['training_steps_run']} | "
                        f"{'n/a' if fin is None else f'{fin:.3f}'} / {'n/a' if best is None else f'{best:.3f}'} | "
                        f"{t['last_report_finite']} | {t['final_learning_rate']} |")
    lines = [f"Two trials ({MAX_STEPS} steps, validation every {INTERVAL}; `explodes` has lr 3e-3 and gradients x1e4 "
             f"from step {EXPLODE_AT} while lr > 0.75 x initial). Wall time: fifo {doc.get('fifo', {}).get('wall_s')} s, "
             f"smart {doc.get('smart', {}).get('wall_s')} s.", ""] + rows
    for line in doc.get("smart", {}).get("interventions", []):
        lines.append(f"\n    {line}")
    return "\n".join(lines)


def run() -> dict[str, Any]:
    """Tier-2 figures (sweep.json ``tier2_real``)."""
    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    logging.getLogger("ray").setLevel(logging.ERROR)
    doc: dict[str, Any] = {"recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("fifo", "smart"):
                doc[name] = _sweep(name, Path(tmp))
    finally:
        ray.shutdown()
    doc["markdown"] = _markdown(doc)
    return doc


if __name__ == "__main__":
    from benchmarks.report import json_safe

    out = Path(__file__).parent / "results" / "tier2_real.json"
    doc = json_safe(run())
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(doc["markdown"])
