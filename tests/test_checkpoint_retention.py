"""Checkpoint retention of a Smart Tuner sweep (tuner/raytune/sweep.py ``_checkpoint_config`` with
SmartScheduler pinning the last healthy checkpoint): real local Ray Tune, one trial."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

LOSSES = [1.0, 0.5, 0.8, 0.9, 0.95]  # best = report 2; every report healthy


def _trainable(config: dict) -> None:
    """Before each report, records which checkpoints (by report number) exist in its folder."""
    from ray import tune

    exp = Path(config["experiment_dir"])
    for i, loss in enumerate(LOSSES, start=1):
        kept = sorted(int(json.loads((d / "state.json").read_text())["report"])
                      for d in exp.glob("*/checkpoint_*") if (d / "state.json").is_file())
        with (exp / "kept.jsonl").open("a") as f:
            f.write(json.dumps({"before": i, "kept": kept}) + "\n")
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "state.json").write_text(json.dumps({"report": i}))
            tune.report({"validation.loss": loss, "training.loss": loss, "grad.norm": 1.0,
                         "validation.attention_score": 0.8, "validation.gate_accuracy": 0.9,
                         "overfitting.gap": 0.0, "validation.step": float(i)},
                        checkpoint=tune.Checkpoint.from_directory(folder))


@pytest.mark.ray
@pytest.mark.timeout(240)
def test_keeps_latest_healthy_and_best(tmp_path: Path) -> None:
    import ray
    from ray import tune

    from tuner.core.config import config_from_dict
    from tuner.raytune.scheduler import SmartScheduler
    from tuner.raytune.sweep import SweepSettings, _checkpoint_config

    settings = SweepSettings(search_space="s.yaml", storage=str(tmp_path), name="exp",
                             num_samples=1, max_concurrent=1, cpus_per_trial=1, gpus_per_trial=0,
                             scheduler="smart", metric="validation.loss", mode="min",
                             tracking_uri="", keep_checkpoints=1)
    exp = tmp_path / "exp"
    exp.mkdir()
    # the guards hold every slow-to-judge rule back: all five reports are healthy
    cfg = config_from_dict({"training_recovery": {"min_training_time": 1e6,
                                                  "min_validation_steps": 1000}})
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        tune.Tuner(
            _trainable, param_space={"experiment_dir": str(exp)},
            tune_config=tune.TuneConfig(scheduler=SmartScheduler(config=cfg),
                                        metric="validation.loss", mode="min"),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0,
                                      checkpoint_config=_checkpoint_config(settings)),
        ).fit()
    finally:
        ray.shutdown()
    kept = {r["before"]: r["kept"] for r in map(json.loads, (exp / "kept.jsonl").open())}
    # Before report 5: best (2), last healthy (3: pinned when report 4 arrived), latest (4);
    # report 1 (neither) is gone. Without the pin, 3 would have been deleted with 4's arrival.
    assert kept[5] == [2, 3, 4]
    assert kept[4] == [2, 3] or kept[4] == [1, 2, 3]  # 1 (healthy until 3 arrived) may be freed
    # Trial over: no rollback ahead, the healthy one is handed back and only best + latest stay.
    final = sorted(int(json.loads((d / "state.json").read_text())["report"])
                   for d in exp.glob("*/checkpoint_*"))
    assert final == [2, 5]
