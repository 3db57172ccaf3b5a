"""CPU training figures of ``train_tts``: tiny preset, built-in corpus, default hyperparameters.

Runs the real trial loop (``tuner.trainable.run_training`` machinery, no Ray) until
``validation.attention_score >= --target`` or ``--max-minutes``, validating every
``--validation-interval`` steps, and measures:

- training steps/s (validation excluded, from ``training.steps_per_s``) and overall steps/s
  (wall time of the trial including validations);
- peak RSS of the process (``resource.getrusage(RUSAGE_SELF).ru_maxrss``);
- steps and minutes (from the first step, validations included; feature loading is timed apart)
  until the target score, and the alignment image of the first validation utterance at that point;
- the 1-minute load average (``os.getloadavg``) at every validation: the CPU is shared, so
  figures taken under load > the thread count are slower than on an idle machine.

Writes ``benchmarks/results/cpu_training.json``, ``benchmarks/results/alignment_at_0.5.png`` and the
``cpu-training`` section of BENCHMARKS.md (between its markers)::

    .venv/bin/python -m benchmarks.probes.cpu_training --data-dir data/corpus --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from tuner.trainable import DEFAULTS, LocalSession, TrainSettings
from tuner.training.loop import Trainer

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
BEGIN, END = "<!-- cpu-training:begin -->", "<!-- cpu-training:end -->"
HYPERPARAMETERS = ("learning_rate", "batch_size", "dropout", "weight_decay", "grad_clip_thresh",
                   "guided_attention_weight", "gate_loss_weight", "gate_pos_weight", "gate_threshold",
                   "warmup_steps", "lr_schedule", "lr_decay_steps", "seed")


class _Done(Exception):
    """Raised from the report hook to end the run (target reached or time budget spent)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="data/corpus", help="LJSpeech-layout dataset (smart-tuner corpus DIR)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--target", type=float, default=0.5, help="validation.attention_score to reach")
    p.add_argument("--validation-interval", type=int, default=25)
    p.add_argument("--max-minutes", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--no-write", action="store_true", help="print the figures only")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train until the target or the budget; return the figures as a JSON-ready dict."""
    config = {"data_dir": str(Path(args.data_dir).resolve()), "preset": "tiny", "num_threads": args.threads,
              "validation_interval": args.validation_interval, "max_steps": 1_000_000, "tensorboard": False,
              "seed": args.seed}
    curve: list[dict[str, float]] = []
    reached: dict[str, Any] = {}
    load_start = os.getloadavg()[0]
    setup_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cpu-training-") as tmp:
        trainer: Trainer | None = None
        clock: dict[str, float] = {}

        def on_report(metrics: dict[str, float], _checkpoint: Path) -> None:
            minutes = (time.perf_counter() - clock.setdefault("start", setup_start)) / 60.0
            score = metrics["validation.attention_score"]
            curve.append({"step": metrics["training.step"], "minutes": round(minutes, 3),
                          "attention_score": score, "gate_accuracy": metrics["validation.gate_accuracy"],
                          "training.loss": metrics["training.loss"], "validation.loss": metrics["validation.loss"],
                          "training.steps_per_s": metrics["training.steps_per_s"],
                          "load_1min": os.getloadavg()[0]})
            print(f"step {int(metrics['training.step'])}  {minutes:.2f} min  attention {score:.3f}  "
                  f"val loss {metrics['validation.loss']:.3f}  {metrics['training.steps_per_s']:.2f} steps/s  "
                  f"load {curve[-1]['load_1min']:.1f}", flush=True)
            if score >= args.target and trainer is not None and trainer.last_sample is not None:
                reached.update(step=metrics["training.step"], minutes=minutes)
                if not args.no_write:
                    _save_alignment(trainer.last_sample.alignment, int(metrics["training.step"]), score)
                raise _Done
            if minutes >= args.max_minutes:
                raise _Done

        settings = TrainSettings.from_config(config)
        trainer = Trainer(settings, LocalSession(tmp, on_report=on_report), config)
        trainer.setup()
        clock["start"] = time.perf_counter()
        setup_seconds = clock["start"] - setup_start
        try:
            trainer.run()
        except _Done:
            pass
        wall = time.perf_counter() - clock["start"]
    train_seconds = sum(1.0 / c["training.steps_per_s"] * args.validation_interval for c in curve)
    return {
        "command": _command(),
        "machine": {"cpus": os.cpu_count(), "threads": args.threads, "torch": torch.__version__,
                    "python": platform.python_version()},
        "config": {**{k: DEFAULTS[k] for k in HYPERPARAMETERS}, **config, "data_dir": args.data_dir,
                   "model": "tiny preset", "n_utterances": len(trainer.features.ids),
                   "n_validation": len(trainer.val_idx)},
        "target_attention_score": args.target,
        "reached": bool(reached),
        "steps_to_target": reached.get("step"),
        "minutes_to_target": round(reached["minutes"], 2) if reached else None,
        "train_steps_per_s": round(trainer.step / train_seconds, 3) if train_seconds else None,
        "overall_steps_per_s": round(trainer.step / wall, 3),
        "steps": trainer.step,
        "setup_seconds": round(setup_seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_1min": {"start": load_start, "mean": round(sum(c["load_1min"] for c in curve) / len(curve), 2),
                      "max": max(c["load_1min"] for c in curve)},
        "curve": curve,
    }


def _save_alignment(alignment: Any, step: int, score: float) -> None:
    from tuner.reporting.plots import plot_alignment

    fig = plot_alignment(alignment, title=f"tiny preset, step {step}, attention score {score:.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "alignment_at_0.5.png", dpi=100, bbox_inches="tight")


def _command() -> str:
    return ".venv/bin/python -m benchmarks.probes.cpu_training " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def markdown(r: dict[str, Any]) -> str:
    """The cpu-training section of BENCHMARKS.md (between the markers)."""
    c, load = r["config"], r["load_1min"]
    target = (f"**{r['steps_to_target']:.0f} steps, {r['minutes_to_target']:.1f} min**" if r["reached"]
              else f"not reached in {r['steps']} steps")
    hp = ", ".join(f"{k} {c[k]}" for k in HYPERPARAMETERS)
    lines = [
        "## Training on 2 CPU cores (tiny preset, built-in corpus)",
        "",
        f"`{r['command']}` (figures also in `benchmarks/results/cpu_training.json`)",
        "",
        "| figure | value |",
        "|---|---|",
        f"| steps until validation.attention_score >= {r['target_attention_score']} | {target} |",
        f"| training steps/s (validation excluded) | {r['train_steps_per_s']} |",
        f"| overall steps/s (validation every {c['validation_interval']} steps included) | "
        f"{r['overall_steps_per_s']} |",
        f"| peak RSS | {r['peak_rss_mib']:.0f} MiB |",
        f"| feature loading before the first step | {r['setup_seconds']} s |",
        f"| 1-min load average (start / mean / max) | {load['start']:.1f} / {load['mean']:.1f} / {load['max']:.1f} |",
        "",
        f"Set-up: {c['n_utterances']} utterances ({c['n_validation']} for validation), batch {c['batch_size']}, "
        f"{r['machine']['threads']} torch threads, torch {r['machine']['torch']}; `train_tts` defaults: {hp}. "
        + (f"The machine was shared with other jobs (mean load {load['mean']:.1f} on {r['machine']['cpus']} "
           "cores): the times are longer than on an idle machine." if load["mean"] > r["machine"]["threads"]
           else f"The machine was nearly idle (mean load {load['mean']:.1f} on {r['machine']['cpus']} cores)."),
        "",
    ]
    if r["reached"]:
        lines += ["Alignment of the first validation utterance when the target was reached:", "",
                  "![alignment at attention score 0.5](benchmarks/results/alignment_at_0.5.png)", ""]
    return "\n".join(lines)


def write_section(text: str, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace what lies between the cpu-training markers of ``path`` with ``text``."""
    doc = path.read_text()
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}, indent=1))
    if args.no_write:
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cpu_training.json").write_text(json.dumps(result, indent=1) + "\n")
    write_section(markdown(result))


if __name__ == "__main__":
    main()
