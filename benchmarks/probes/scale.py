"""Scale: thousands of trivial trials on real Ray Tune, SmartScheduler against FIFO in one run.

    python -m benchmarks.probes.scale --trials 2000 --reports 4 [--concurrent 8] [--repeats 1]
                               [--out benchmarks/results/scale.json]
    python -m benchmarks.probes.scale --hooks-only --trials 2000 --reports 4   # no Ray: hooks alone

Each scheduler runs in its own driver process (``python -m benchmarks.probes.scale --child ...``), one
after the other in the order FIFO, Smart (repeated ``--repeats`` times, alternating), so that the
driver's peak memory (``ru_maxrss`` of that process) belongs to one sweep only. Every child starts
its own local Ray with ``--concurrent`` logical CPUs; each trial takes one, so up to
``--concurrent`` trials run at once. The trial (``trivial_trainable``) reports ``--reports``
healthy contract-metric results (no sleep, no checkpoint) and ends: what is measured is the cost
of Ray Tune plus the scheduler per trial, not training.

Per run it records: ``wall_s`` (Tuner.fit only, Ray start-up excluded), ``scheduler_hook_s`` (wall
time inside the scheduler's hooks, summed), ``driver_peak_rss_mib``,
``folder_mib`` and ``files`` of the experiment folder, trials terminated/errored, and for Smart
the number of interventions (0 expected: the trials are healthy). The summary's ``ratio`` is
Smart's median wall time over FIFO's. Ray's own 10,000-trial release test takes 715 s against
625 s ideal (1.14x); the goal here is <= 1.05x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCHEDULERS = ("fifo", "smart")


def trivial_trainable(config: dict[str, Any]) -> None:
    """``config['reports']`` healthy results with every metric SmartScheduler reads."""
    from ray import tune

    lr = float(config["learning_rate"])
    for step in range(1, int(config["reports"]) + 1):
        loss = 1.0 / step + lr
        tune.report({"training.loss": loss, "validation.loss": loss * 1.05, "grad.norm": 1.0,
                     "validation.attention_score": 0.5, "validation.gate_accuracy": 0.9,
                     "overfitting.gap": 0.05, "validation.step": step})


def folder_size(path: Path) -> tuple[int, int]:
    """(bytes, files) under ``path``."""
    total = files = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                total += os.path.getsize(os.path.join(root, name))
                files += 1
            except OSError:
                pass
    return total, files


HOOKS = ("on_trial_add", "on_trial_result", "on_trial_complete", "on_trial_error",
         "on_trial_remove", "choose_trial_to_run")


def _timed(cls: type) -> type:
    """A subclass of scheduler ``cls`` that adds the wall time spent in its hooks to
    ``hook_seconds`` (what the scheduler itself costs the driver)."""

    def wrap(name: str) -> Any:
        method = getattr(cls, name)

        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                self.hook_seconds += time.perf_counter() - t0
        return timed

    return type(f"Timed{cls.__name__}", (cls,), {"hook_seconds": 0.0,
                                                 **{h: wrap(h) for h in HOOKS}})


def _scheduler(kind: str) -> Any:
    if kind == "fifo":
        from ray.tune.schedulers import FIFOScheduler

        return _timed(FIFOScheduler)()
    from tuner.raytune.scheduler import SmartScheduler

    return _timed(SmartScheduler)(echo=False)


def child(kind: str, trials: int, reports: int, concurrent: int, storage: str) -> dict[str, Any]:
    """One sweep in this process; returns its measurements."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune

    ray.init(num_cpus=concurrent, include_dashboard=False, log_to_driver=False,
             configure_logging=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    scheduler = _scheduler(kind)
    name = f"scale-{kind}"
    tuner = tune.Tuner(
        trivial_trainable,
        param_space={"learning_rate": tune.loguniform(1e-4, 1e-2), "reports": reports},
        tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=trials,
                                    metric="validation.loss", mode="min", reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0))
    t0 = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    size, files = folder_size(Path(storage, name))
    out = {"scheduler": kind, "trials": trials, "reports": reports, "concurrent": concurrent,
           "wall_s": round(wall, 2), "driver_peak_rss_mib": round(peak_kib / 1024, 1),
           "folder_mib": round(size / 2**20, 2), "files": files,
           "terminated": sum(r.error is None for r in grid),
           "errored": sum(r.error is not None for r in grid),
           "iterations": sum(int(r.metrics.get("training_iteration", 0)) for r in grid),
           "scheduler_hook_s": round(scheduler.hook_seconds, 2)}
    if kind == "smart":
        out["interventions"] = len(scheduler.interventions)
    ray.shutdown()
    return out


def hooks_only(trials: int, reports: int, concurrent: int) -> dict[str, Any]:
    """SmartScheduler's hooks alone, without Ray: ``trials`` trials in waves of ``concurrent``
    (add, ``reports`` results each, round-robin, complete) on the benchmark harness's stand-in
    trials and controller (``benchmarks/drivers.py``), state written to a temporary folder.
    Returns the seconds spent in the hooks in total and per trial: the driver CPU the scheduler
    adds, free of the machine's Ray noise."""
    from benchmarks.drivers import RUNNING, SimController, SimTrial
    from tuner.raytune.scheduler import SmartScheduler

    with tempfile.TemporaryDirectory() as folder:
        controller = SimController(save_fn=lambda t: None)
        scheduler = SmartScheduler(experiment_dir=folder, echo=False)
        t0 = time.perf_counter()
        for start in range(0, trials, concurrent):
            wave = [SimTrial(f"t{i:06d}", {"learning_rate": 1e-3})
                    for i in range(start, min(trials, start + concurrent))]
            controller.trials = wave
            for t in wave:
                t.status = RUNNING
                scheduler.on_trial_add(controller, t)
            for step in range(1, reports + 1):
                loss = 1.0 / step
                result = {"training.loss": loss, "validation.loss": loss * 1.05,
                          "grad.norm": 1.0, "validation.attention_score": 0.5,
                          "validation.gate_accuracy": 0.9, "overfitting.gap": 0.05,
                          "validation.step": step, "training_iteration": step}
                for t in wave:
                    scheduler.on_trial_result(controller, t, result)
            for t in wave:
                scheduler.on_trial_complete(controller, t, result)
                t.status = "TERMINATED"
        total = time.perf_counter() - t0
    return {"scheduler": "smart (hooks only, no Ray)", "trials": trials, "reports": reports,
            "concurrent": concurrent, "hook_s": round(total, 2),
            "per_trial_ms": round(1000 * total / trials, 2),
            "interventions": len(scheduler.interventions)}


def _run_child(kind: str, args: argparse.Namespace, storage: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        cmd = [sys.executable, "-m", "benchmarks.probes.scale", "--child", kind, "--trials",
               str(args.trials), "--reports", str(args.reports), "--concurrent",
               str(args.concurrent), "--storage", storage, "--child-out", out.name]
        subprocess.run(cmd, check=True)
        return json.loads(Path(out.name).read_text())


def _versions() -> dict[str, str]:
    import optuna
    import ray

    return {"python": platform.python_version(), "ray": ray.__version__,
            "optuna": optuna.__version__}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """All runs (FIFO, Smart alternating) and the summary."""
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="scale-") as root:
        for rep in range(args.repeats):
            for kind in SCHEDULERS:
                storage = str(Path(root, f"rep{rep}"))
                result = _run_child(kind, args, storage)
                print(json.dumps(result), flush=True)
                runs.append(result)
    wall = {k: statistics.median(r["wall_s"] for r in runs if r["scheduler"] == k)
            for k in SCHEDULERS}
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "uptime_before": args.uptime_before, "uptime_after": _uptime(),
            "versions": _versions(), "cpus": os.cpu_count(),
            "command": " ".join(["python -m benchmarks.probes.scale"] + (args.argv or [])),
            "runs": runs, "median_wall_s": wall,
            "ratio": round(wall["smart"] / wall["fifo"], 3),
            "per_trial_ms": {k: round(1000 * v / args.trials, 1) for k, v in wall.items()}}


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--reports", type=int, default=4)
    ap.add_argument("--concurrent", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=None, help="also write the summary JSON here")
    ap.add_argument("--hooks-only", action="store_true",
                    help="time SmartScheduler's hooks alone, without Ray (seconds)")
    ap.add_argument("--child", choices=SCHEDULERS, help=argparse.SUPPRESS)
    ap.add_argument("--storage", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        result = child(args.child, args.trials, args.reports, args.concurrent, args.storage)
        Path(args.child_out).write_text(json.dumps(result))
        return
    if args.hooks_only:
        print(json.dumps({**hooks_only(args.trials, args.reports, args.concurrent),
                          "versions": _versions(), "uptime": _uptime()}))
        return
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.uptime_before = _uptime()
    summary = run(args)
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
