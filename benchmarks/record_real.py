"""Record real tiny-Tacotron2 trajectories and fit the surrogate's constants to them.

    python -m benchmarks.record_real record --tag lr1e-3 --learning-rate 1e-3 --max-steps 320
    python -m benchmarks.record_real fit        # -> benchmarks/calibration/constants.json

``record`` runs ``tuner.trainable.run_training`` (the same loop as ``train_tts``) through a
``LocalSession`` (no Ray) on the built-in corpus and writes every report to
``benchmarks/calibration/real_<tag>.json`` as it arrives, so an interrupted run still leaves a
usable prefix. ``fit`` reads all recorded files and fits, per run, by least squares on a
log-spaced grid of decay rates (closed-form floor and amplitude at each rate):

    validation.loss(k) ~ floor + (loss0 - floor) * exp(-rate_step * steps(k))

then the surrogate's per-report rate = rate_step x 50 (a surrogate report is 50 training steps)
at lr_ref, with ``lr_exponent`` from two runs at different learning rates (log ratio of rates);
grad.norm start/tail, attention and gate minima/maxima and the attention onset (progress where
the score first passes the midpoint of its range) come from the same runs. NaN reports are
skipped by the fit. Constants the runs cannot inform keep their defaults (listed in ``source``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from benchmarks.surrogate import CALIBRATION_FILE, Calibration

CAL_DIR = Path(__file__).parent / "calibration"
SURROGATE_STEPS_PER_REPORT = 50


def record(tag: str, learning_rate: float, max_steps: int, interval: int, threads: int, data_dir: str, seed: int) -> Path:
    """Train one real trial and write its reports to calibration/real_<tag>.json (incrementally)."""
    import tempfile

    import torch

    from tuner.trainable import LocalSession, run_training

    torch.set_num_threads(threads)
    CAL_DIR.mkdir(parents=True, exist_ok=True)
    out = CAL_DIR / f"real_{tag}.json"
    config = {"data_dir": str(Path(data_dir).resolve()), "preset": "tiny", "learning_rate": learning_rate,
              "max_steps": max_steps, "validation_interval": interval, "seed": seed, "num_threads": threads,
              "tensorboard": False, "device": "cpu"}
    doc: dict[str, Any] = {"tag": tag, "config": config, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "reports": []}
    t0 = time.time()

    def on_report(metrics: dict[str, float], _ckpt: Path) -> None:
        m = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in metrics.items()}
        m["wall_s"] = round(time.time() - t0, 1)
        doc["reports"].append(m)
        out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"[{tag}] step {metrics.get('training.step')}: val {metrics.get('validation.loss'):.4g} "
              f"attn {metrics.get('validation.attention_score'):.3f} gate {metrics.get('validation.gate_accuracy'):.3f}",
              flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        session = LocalSession(tmp, num_cpus=threads, on_report=on_report)
        run_training(config, session)
    doc["finished"] = True
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return out


def _series(run: dict[str, Any], key: str) -> list[tuple[float, float]]:
    """(training step, value) of finite values of ``key``."""
    out = []
    for r in run["reports"]:
        v, s = r.get(key), r.get("training.step")
        if isinstance(v, (int, float)) and isinstance(s, (int, float)) and math.isfinite(v):
            out.append((float(s), float(v)))
    return out


def fit_decay(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """(rate_per_step, floor, loss0, relative residual std) of floor + (loss0 - floor) exp(-rate s)."""
    best: tuple[float, float, float, float] | None = None
    for i in range(200):
        rate = 10 ** (-5 + 4 * i / 199)          # 1e-5 .. 1e-1 per step
        xs = [math.exp(-rate * s) for s, _ in points]
        ys = [v for _, v in points]
        n = len(xs)
        mx, my = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx <= 0:
            continue
        amp = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
        floor = my - amp * mx
        if floor <= 0 or amp <= 0:
            continue
        sse = sum((floor + amp * x - y) ** 2 for x, y in zip(xs, ys))
        if best is None or sse < best[0]:
            best = (sse, rate, floor, floor + amp)
    if best is None:
        raise ValueError("validation.loss does not decay in the recorded runs; record longer runs")
    sse, rate, floor, loss0 = best
    mean = sum(v for _, v in points) / len(points)
    return rate, floor, loss0, math.sqrt(sse / len(points)) / mean


def fit(paths: list[Path]) -> Calibration:
    """Fit Calibration constants to recorded runs (see the module docstring)."""
    runs = [json.loads(p.read_text()) for p in paths]
    runs = [r for r in runs if len(_series(r, "validation.loss")) >= 4]
    if not runs:
        raise ValueError(f"no recorded run in {CAL_DIR} has 4 finite reports; run `record` first")
    d = asdict(Calibration())
    fits = []
    for r in runs:
        rate, floor, loss0, resid = fit_decay(_series(r, "validation.loss"))
        fits.append((float(r["config"]["learning_rate"]), rate, floor, loss0, resid))
    fits.sort()
    lr0, rate0, floor0, loss00, _ = min(fits, key=lambda f: f[2])
    if len(fits) >= 2 and fits[-1][0] > fits[0][0]:
        d["lr_exponent"] = max(0.1, min(2.0, math.log(fits[-1][1] / fits[0][1]) / math.log(fits[-1][0] / fits[0][0])))
    d["rate"] = rate0 * SURROGATE_STEPS_PER_REPORT * (d["lr_ref"] / lr0) ** d["lr_exponent"]
    d["floor"], d["loss0"] = floor0, max(f[3] for f in fits)
    d["lr_opt"] = lr0
    d["noise"] = max(0.002, min(0.1, sum(f[4] for f in fits) / len(fits)))
    grads = [v for r in runs for _, v in _series(r, "grad.norm")]
    firsts = [_series(r, "grad.norm")[0][1] for r in runs if _series(r, "grad.norm")]
    if grads and firsts:
        d["grad0"] = sum(firsts) / len(firsts)
        d["grad_tail"] = max(0.05, min(1.0, min(grads) / d["grad0"]))
    attn = [v for r in runs for _, v in _series(r, "validation.attention_score")]
    if attn:
        d["attn_min"], top = min(attn), max(attn)
        d["attn_max"] = max(top, d["attn_min"] + 0.05) if top >= 0.5 else d["attn_max"]
        mid = (d["attn_min"] + top) / 2
        onsets = [s * rate0 for r in runs for s, v in _series(r, "validation.attention_score")[:1]] and [
            next((s * f[1] for s, v in _series(r, "validation.attention_score") if v >= mid), math.nan)
            for r, f in zip(runs, fits)
        ]
        finite = [o for o in onsets if math.isfinite(o)]
        if finite and top >= 0.5:
            d["attn_onset"] = sum(finite) / len(finite)
    gate = [v for r in runs for _, v in _series(r, "validation.gate_accuracy")]
    if gate:
        d["gate_min"] = min(gate)
        d["gate_max"] = max(max(gate), d["gate_min"] + 0.05)
    steps = max(s for r in runs for s, _ in _series(r, "validation.loss"))
    d["source"] = (f"fitted by benchmarks/record_real.py to {len(runs)} real tiny-Tacotron2 runs "
                   f"({', '.join(r['tag'] for r in runs)}; up to {int(steps)} training steps)")
    known = {f.name for f in fields(Calibration)}
    return Calibration(**{k: v for k, v in d.items() if k in known})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.record_real", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="train one real trial and record its reports")
    rec.add_argument("--tag", required=True)
    rec.add_argument("--learning-rate", type=float, default=1e-3)
    rec.add_argument("--max-steps", type=int, default=320)
    rec.add_argument("--interval", type=int, default=20, help="validation_interval (training steps)")
    rec.add_argument("--threads", type=int, default=1)
    rec.add_argument("--data-dir", default="data/corpus")
    rec.add_argument("--seed", type=int, default=0)
    sub.add_parser("fit", help="fit calibration/constants.json to calibration/real_*.json")
    args = ap.parse_args(argv)
    if args.cmd == "record":
        record(args.tag, args.learning_rate, args.max_steps, args.interval, args.threads, args.data_dir, args.seed)
        return
    cal = fit(sorted(CAL_DIR.glob("real_*.json")))
    CALIBRATION_FILE.write_text(json.dumps(asdict(cal), indent=1) + "\n")
    print(json.dumps(asdict(cal), indent=1))


if __name__ == "__main__":
    main()
