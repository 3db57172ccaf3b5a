"""Record real tiny-Tacotron2 trajectories and fit the surrogate's constants to them.

    python -m benchmarks.probes.record_real record --tag v3_lr1e-3 --learning-rate 1e-3 --max-steps 700 --interval 50
    python -m benchmarks.probes.record_real fit        # -> benchmarks/calibration/constants.json, fit.json
    python -m benchmarks.probes.record_real fit --bank # the same, noise and plateaus from the bank (BANK_KEYS)

(then move the new real_<tag>.json into calibration/current_defaults/; ``fit`` reads that folder
for everything but the loss decay, which it fits on calibration/old_defaults/, see LOSS_DIR.)
Record with ``--threads 1`` on a shared 2-core machine: two torch threads competing with other
jobs made no progress in 5 minutes (thread oversubscription); one thread does 50 steps in ~25 s.

``record`` runs ``tuner.trainable.run_training`` (the same loop as ``train_tts``) through a
``LocalSession`` (no Ray) on the built-in corpus and writes every report to
``benchmarks/calibration/real_<tag>.json`` as it arrives, so an interrupted run still leaves a
usable prefix. ``fit`` reads all recorded files and fits, per run, by least squares on a
grid of floors shared by all runs (per-run rate and amplitude by log-linear regression):

    validation.loss(k) ~ floor + (loss0 - floor) * exp(-rate_step * steps(k))

on the reports from step ``FIT_FROM_STEP`` (200) on, with steps counted from ``SKIP_STEPS`` (60):
the warm-up transient before step 60 (loss ~50 -> ~10 in 50 steps) and the loss spike while the
attention forms (steps 100-150) are not modelled, so the surrogate starts where the slow phase
starts (loss0 is the fitted curve extrapolated to step 60). Then the surrogate's per-report rate = rate_step x 50 (a surrogate report is 50 training steps)
at lr_ref, with ``lr_exponent`` from two runs at different learning rates (log ratio of rates);
grad.norm start/tail, attention and gate minima/maxima and the attention and gate onsets (sigmoid fits
on the surrogate's progress clock: steps after ``SKIP_STEPS`` x the surrogate's rate for the run's
learning rate) come from the same runs. The loss noise is the report-to-report scatter on the
plateau (each report against its neighbours' geometric mean), the gate's plateau level and scatter
are taken from the same steps on. NaN reports are
skipped by the fit. Constants the runs cannot inform keep their defaults (listed in ``source``).
Two corrections map the runs' hyperparameters (the train_tts defaults under the run's config) onto
the surrogate's reference: the floor is divided by the surrogate's floor factor at those
hyperparameters (so ``c.floor`` is the floor at the optimum), and the attention/gate onsets are
multiplied by ``0.5 + 0.5 guided_attention_weight`` (the surrogate divides by it). The gate noise
is the residual std of the gate accuracy around its fitted sigmoid.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from benchmarks.surrogate import CALIBRATION_FILE, Calibration, SurrogateTrial

CAL_DIR = Path(__file__).parents[1] / "calibration"
SURROGATE_STEPS_PER_REPORT = 50
# The fitted runs: recorded under the current train_tts defaults (lr 2e-3, guided attention 1.5,
# dropout 0.5, warm-up 20) and the gate metric with partial credit for a gate still learning
# (model/metrics.py). Superseded recordings: old_defaults/ (the defaults before, lr 1e-3, guided
# attention 1.0, dropout 0.1, warm-up 50) and old_gate_metric/ (current defaults, gate accuracy
# of 0.0 for a gate that had not fired yet).
FIT_DIR = CAL_DIR / "current_defaults"
# 700 steps under the current defaults do not identify the loss floor (the joint fit runs to 0:
# the loss still falls 5-10% per 50 steps at step 700); the loss decay comes from the 1,000-step
# runs under the earlier defaults, the last that did (floor 2.456).
LOSS_DIR = CAL_DIR / "old_defaults"
SKIP_STEPS = 60   # the warm-up transient (loss ~50 -> ~10 in the first 50 steps) is not modelled
# The loss decay is fitted on reports from this step on (steps still counted from SKIP_STEPS):
# under the current defaults the validation loss spikes while the attention forms (10.7 at step
# 50, 13-28 at step 100, back to ~9 by step 200), a transient the surrogate does not model.
FIT_FROM_STEP = 200


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


def _effective_config(run: dict[str, Any]) -> dict[str, Any]:
    """The recorded run's config over the train_tts defaults it trained with: today's DEFAULTS,
    or the ``defaults.json`` beside the recording (defaults of the time, for old recordings)."""
    from tuner.training.settings import DEFAULTS

    then = Path(run.get("_dir", "")) / "defaults.json"
    old = json.loads(then.read_text()) if run.get("_dir") and then.exists() else {}
    return {**DEFAULTS, **old, **run.get("config", {})}


def _series(run: dict[str, Any], key: str) -> list[tuple[float, float]]:
    """(training step, value) of finite values of ``key``."""
    out = []
    for r in run["reports"]:
        v, s = r.get(key), r.get("training.step")
        if isinstance(v, (int, float)) and isinstance(s, (int, float)) and math.isfinite(v):
            out.append((float(s), float(v)))
    return out


def _loglinear(points: list[tuple[float, float]], floor: float) -> tuple[float, float, float]:
    """(rate, amplitude, sse) of floor + amplitude exp(-rate s) by regressing log(v - floor) on s."""
    xs = [s for s, _ in points]
    ys = [math.log(v - floor) for _, v in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else 0.0
    amp = math.exp(my - slope * mx)
    sse = sum((floor + amp * math.exp(slope * x) - v) ** 2 for x, (_, v) in zip(xs, points))
    return -slope, amp, sse


def fit_decay(runs: list[list[tuple[float, float]]]) -> tuple[float, list[tuple[float, float, float]]]:
    """Joint fit of v = floor + A_i exp(-rate_i s): one floor shared by all runs (grid search),
    per-run rate and amplitude by log-linear regression. Returns (floor, [(rate, loss0, relative
    residual std)]). One shared floor: the runs differ in learning rate, which sets the speed."""
    low = min(v for pts in runs for _, v in pts)
    best: tuple[float, float, list[tuple[float, float, float]]] | None = None
    grid = [low * 0.999 * k / 99 for k in range(100)]
    for _ in range(3):  # coarse grid, then two finer grids around the best floor
        for floor in grid:
            fits = [_loglinear(pts, floor) for pts in runs]
            total = sum(f[2] for f in fits)
            if all(f[0] > 0 for f in fits) and (best is None or total < best[0]):
                per = []
                for pts, (rate, amp, sse) in zip(runs, fits):
                    mean = sum(v for _, v in pts) / len(pts)
                    per.append((rate, floor + amp, math.sqrt(sse / len(pts)) / mean))
                best = (total, floor, per)
        if best is None:
            break
        step = grid[1] - grid[0]
        lo, hi = max(0.0, best[1] - step), min(low * 0.9999, best[1] + step)
        grid = [lo + (hi - lo) * k / 99 for k in range(100)]
    if best is None:
        raise ValueError("validation.loss does not decay in the recorded runs; record longer runs")
    return best[1], best[2]


def _logit_fit(points: list[tuple[float, float]], lo: float, hi: float) -> tuple[float, float] | None:
    """(onset, width) of lo + (hi - lo) sigmoid((p - onset) / width) by regression on the logit."""
    xs, ys = [], []
    for p, v in points:
        f = (v - lo) / (hi - lo)
        if 0.01 < f < 0.99:   # points at the floor or ceiling carry no slope information
            xs.append(p)
            ys.append(math.log(f / (1 - f)))
    if len(xs) < 3:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else 0.0
    if slope <= 0:
        return None
    return mx - my / slope, 1.0 / slope


LOSS_KEYS = ("loss0", "floor", "rate", "lr_exponent", "noise", "gap")
PLATEAU_STEP = 300  # from here on the recorded gate accuracy is on its plateau (attention >= 0.5)
BANK_PLATEAU_STEP = 1000  # the bank's 2,000-step runs: their second half
# The bank's healthy runs fall fast until the attention has settled (about step 500), then slowly:
# one exponential through both phases fits neither (relative residual 8-10% from step 200, 1.6%
# from step 600 on the first two runs); its per-run fit is kept in fit.json (``bank``).
BANK_FIT_FROM_STEP = 600
# What the bank identifies and the earlier runs did not: the report-to-report noise of the losses,
# the train/validation gap without stale BatchNorm statistics (the earlier runs predate the
# refresh), and the attention and gate plateaus (level, gate scatter). Not the loss floor: the
# healthy runs still fall 1-3% per report at step 2,000, so the loss decay (floor, rate, loss0,
# lr_exponent) and the onsets on its clock stay those of the earlier fit, and with them the
# scenarios' target (1.05 x that floor).
BANK_KEYS = ("noise", "gap", "attn_max", "gate_max", "gate_noise")


def fit_with_bank(runs: list[dict[str, Any]], paths: list[Path], loss_paths: list[Path] | None
                  ) -> tuple[Calibration, dict[str, Any]]:
    """The earlier fit (``paths``, ``loss_paths``) with ``BANK_KEYS`` replaced by their values on the
    bank's healthy ``runs``: loss noise and gap, gate plateau and scatter (``fit`` from
    ``BANK_PLATEAU_STEP``), attention plateau = its mean from ``BANK_PLATEAU_STEP``."""
    base, info = fit(paths, loss_paths)
    bank, bank_info = fit(runs, fit_from=BANK_FIT_FROM_STEP, plateau_from=BANK_PLATEAU_STEP)
    attn = [v for r in runs for s, v in _series(r, "validation.attention_score") if s >= BANK_PLATEAU_STEP]
    new = {k: getattr(bank, k) for k in BANK_KEYS}
    if attn:
        new["attn_max"] = sum(attn) / len(attn)
    tags = ", ".join(r["tag"] for r in runs)
    cal = replace(base, **new, source=f"{base.source}; {', '.join(BANK_KEYS)} from the bank's healthy recordings "
                                       f"({tags}; steps {BANK_PLATEAU_STEP}-2000, benchmarks/bank/)")
    info["notes"].append("from the bank (" + tags + "): " + ", ".join(
        f"{k} {getattr(base, k):.3g} -> {new[k]:.3g}" for k in BANK_KEYS) + "; the loss floor is not identified by "
        "the bank (still falling at step 2,000), the loss decay stays the earlier fit's")
    info["bank"] = bank_info
    return cal, info


def bank_runs(min_steps: int = 1000) -> list[dict[str, Any]]:
    """The healthy recordings of the bank (benchmarks/bank/: planned healthy in record_bank.RUNS and
    judged healthy in record_bank.SHOWS, so no probe of an unusual config such as a near-zero gate
    weight) with at least ``min_steps`` training steps, as runs for ``fit``. Recorded after the BatchNorm
    refresh, so their validation losses are the honest ones (the calibration/ runs predate it)."""
    from benchmarks.probes.record_bank import BANK_DIR, RUNS, SHOWS, load

    runs = []
    for path in sorted(BANK_DIR.glob("*.json")):
        doc = load(path)
        if RUNS.get(doc["name"], ("",))[0] == SHOWS.get(doc["name"], ("",))[0] == "healthy" and doc["reports"] \
                and doc["reports"][-1]["training.step"] >= min_steps:
            runs.append({"tag": doc["name"], "config": doc["config"], "reports": doc["reports"]})
    return runs


def fit(paths: list[Path] | list[dict[str, Any]], loss_paths: list[Path] | None = None,
        fit_from: int = FIT_FROM_STEP, plateau_from: int = PLATEAU_STEP) -> tuple[Calibration, dict[str, Any]]:
    """Fit Calibration constants to recorded runs (files, or run dicts with ``tag``, ``config``,
    ``reports``); also return the per-run fits and notes.

    ``loss_paths``: take the loss-decay constants (``LOSS_KEYS``) from a fit of these runs instead
    (when ``paths`` are too short to identify the loss floor); everything else comes from ``paths``,
    with the attention/gate onsets on the progress clock of the constants taken. ``fit_from``: first
    training step of the loss-decay fit (the ``loss_paths`` runs, without the alignment spike, from
    ``SKIP_STEPS``). ``plateau_from``: first training step of the plateau (the loss noise, the gate's
    plateau level and scatter)."""
    base, base_info = fit(loss_paths, fit_from=SKIP_STEPS) if loss_paths else (None, {})
    runs = [p if isinstance(p, dict) else {**json.loads(p.read_text()), "_dir": str(p.parent)} for p in paths]
    runs = [r for r in runs if len(_series(r, "validation.loss")) >= 4]
    if not runs:
        raise ValueError(f"no recorded run in {CAL_DIR} has 4 finite reports; run `record` first")
    d = asdict(Calibration())
    notes: list[str] = []
    slow = [[(s - SKIP_STEPS, v) for s, v in _series(r, "validation.loss") if s >= fit_from] for r in runs]
    floor, fits = fit_decay(slow)
    cfgs = [_effective_config(r) for r in runs]
    per_run = [{"tag": r["tag"], "learning_rate": float(r["config"]["learning_rate"]), "rate_per_step": rate,
                "floor": floor, "loss0": loss0, "relative_residual": resid}
               for r, (rate, loss0, resid) in zip(runs, fits)]
    ref = min(per_run, key=lambda f: abs(math.log(f["learning_rate"] / d["lr_ref"])))
    lrs = sorted(per_run, key=lambda f: f["learning_rate"])
    if len(lrs) >= 2 and lrs[-1]["learning_rate"] > lrs[0]["learning_rate"]:
        exponent = math.log(lrs[-1]["rate_per_step"] / lrs[0]["rate_per_step"]) / math.log(
            lrs[-1]["learning_rate"] / lrs[0]["learning_rate"])
        d["lr_exponent"] = min(2.0, max(0.0, exponent))
        notes.append(f"learning-rate exponent of the decay rate: fitted {exponent:.2f} between "
                     f"{lrs[0]['learning_rate']:g} and {lrs[-1]['learning_rate']:g}, used clamped to [0, 2]: "
                     f"{d['lr_exponent']:.2f} (noisy short runs: uncertain)")
    d["rate"] = ref["rate_per_step"] * SURROGATE_STEPS_PER_REPORT * (d["lr_ref"] / ref["learning_rate"]) ** d["lr_exponent"]
    # the fitted floor is the floor at the runs' dropout / learning rate / weight decay; the
    # surrogate's c.floor is the floor at the optimum: divide by its mean hyperparameter factor
    probe = SurrogateTrial(0, None, Calibration(floor=1.0))
    factor = sum(probe.floor(cf) for cf in cfgs) / len(cfgs)
    d["floor"] = min(f["floor"] for f in per_run) / factor
    if abs(factor - 1.0) > 1e-9:
        notes.append(f"fitted loss floor {floor:.3f} at the runs' hyperparameters (dropout {cfgs[0]['dropout']:g}); "
                     f"the surrogate's floor at the optimum (dropout {d['dropout_opt']:g}, lr {d['lr_opt']:g}) is "
                     f"{d['floor']:.3f} = {floor:.3f} / {factor:.3f} (its assumed hyperparameter penalties)")
    # the surrogate delays the attention/gate rise by 1 / (0.5 + 0.5 guided_attention_weight)
    ga_factor = sum(0.5 + 0.5 * float(cf["guided_attention_weight"]) for cf in cfgs) / len(cfgs)
    d["loss0"] = sum(f["loss0"] for f in per_run) / len(per_run)
    # noise: the report-to-report scatter of the validation loss on the plateau (from plateau_from),
    # not the residual around the fitted exponential (that is mostly the curve's misfit: a real
    # run falls in steps). Each report against the geometric mean of its neighbours,
    # d_k = log v_k - (log v_k-1 + log v_k+1) / 2, has variance 1.5 noise^2 for independent
    # relative noise (the surrogate's model) and almost no trend left on a slowly falling curve.
    d2 = []
    for r in runs:
        pts = [(s, v) for s, v in _series(r, "validation.loss") if s >= plateau_from and v > 0]
        d2 += [math.log(b) - (math.log(a) + math.log(c)) / 2
               for (_, a), (_, b), (_, c) in zip(pts, pts[1:], pts[2:])]
    if len(d2) >= 3:
        d["noise"] = max(0.002, min(0.1, math.sqrt(sum(x * x for x in d2) / len(d2) / 1.5)))
    gaps = [v for r in runs for s, v in _series(r, "overfitting.gap") if s >= max(fit_from, 100)]
    vals = [v for r in runs for s, v in _series(r, "validation.loss") if s >= max(fit_from, 100)]
    if gaps and vals:
        # may be negative: with the BatchNorm refresh a healthy run's validation loss (eval mode)
        # lies below its training loss (dropout on)
        d["gap"] = (sum(gaps) / len(gaps)) / (sum(vals) / len(vals))
    firsts = [_series(r, "grad.norm")[0][1] for r in runs if _series(r, "grad.norm")]
    tails = [v for r in runs for s, v in _series(r, "grad.norm") if s >= 100]
    if firsts and tails:
        d["grad0"] = sum(firsts) / len(firsts)
        d["grad_tail"] = max(0.05, min(1.0, (sum(tails) / len(tails)) / d["grad0"]))
    if base is not None:
        # the notes on this fit's loss decay are superseded by the base fit's
        notes = [n for n in notes if not n.startswith(("learning-rate exponent", "fitted loss floor"))]
        notes.append(f"loss decay not identified by these runs (the joint fit's floor runs to {floor:.2f}: the loss still "
                     f"falls at step {int(max(s for r in runs for s, _ in _series(r, 'validation.loss')))}); "
                     f"{', '.join(LOSS_KEYS)} taken from the fit of {base.source.split('(')[-1].rstrip(')')}")
        notes += [f"(loss runs) {n}" for n in base_info.get("notes", []) if n.startswith("learning-rate exponent")]
        for k in LOSS_KEYS:
            d[k] = getattr(base, k)

    def prate(f: dict[str, Any]) -> float:
        # progress per training step the surrogate gives this run's learning rate: the attention
        # and gate onsets are then in the surrogate's own progress units (per-run decay rates of
        # 700-step runs scatter too much to be the clock)
        return d["rate"] / SURROGATE_STEPS_PER_REPORT * (f["learning_rate"] / d["lr_ref"]) ** d["lr_exponent"]

    attn = [v for r in runs for _, v in _series(r, "validation.attention_score")]
    if attn:
        d["attn_min"] = min(attn)
        pts = [(max(0.0, s - SKIP_STEPS) * prate(f), v) for r, f in zip(runs, per_run) for s, v in _series(r, "validation.attention_score")]
        ow = _logit_fit(pts, d["attn_min"] - 1e-3, d["attn_max"])
        if ow is not None:
            # progress units of the fit: e-folds of the run's own decay, the surrogate's unit too
            d["attn_onset"], d["attn_width"] = ow[0] * ga_factor, ow[1]
        if max(attn) < 0.5:
            notes.append(f"attention never formed in the recorded runs (best score {max(attn):.3f}); the rise was fitted "
                         f"on its low tail with attn_max = {d['attn_max']} assumed")
    gate = [v for r in runs for _, v in _series(r, "validation.gate_accuracy")]
    if gate:
        d["gate_min"] = min(gate)
        per_run_plateau = [[v for s, v in _series(r, "validation.gate_accuracy") if s >= plateau_from] for r in runs]
        plateau = [v for vs in per_run_plateau for v in vs]
        plateau_mean = sum(plateau) / len(plateau) if plateau else 0.0
        if plateau_mean >= 0.5:   # a gate that works: its plateau level and per-report scatter within a run
            d["gate_max"] = plateau_mean
            dev = [v - sum(vs) / len(vs) for vs in per_run_plateau for v in vs]
            d["gate_noise"] = max(0.01, math.sqrt(sum(x * x for x in dev) / max(1, len(dev) - len(runs))))
        pts = [(max(0.0, s - SKIP_STEPS) * prate(f), v) for r, f in zip(runs, per_run)
               for s, v in _series(r, "validation.gate_accuracy")]
        ow = _logit_fit(pts, d["gate_min"] - 1e-3, d["gate_max"])
        if ow is not None:
            d["gate_onset"], d["gate_width"] = ow[0] * ga_factor, ow[1]
            notes.append(f"gate accuracy rises from {d['gate_min']:.2f} to its plateau {d['gate_max']:.2f} (mean from step "
                         f"{plateau_from}; scatter within a run {d['gate_noise']:.3f} = the surrogate's gate noise) at {ow[0]:.2f} e-folds "
                         f"(width {ow[1]:.2f}), the attention at {d['attn_onset'] / ga_factor:.2f} (width {d['attn_width']:.2f}), "
                         f"under guided attention {cfgs[0]['guided_attention_weight']:g}")
        else:
            d["gate_onset"], d["gate_width"] = d["attn_onset"], d["attn_width"]
            notes.append(f"gate accuracy stayed at {max(gate):.3f} or below; assumed to rise with the attention "
                         f"(gate_onset = attn_onset) to the default gate_max {d['gate_max']}")
    esf = [v for r in runs for _, v in _series(r, "validation.early_stop_fraction")]
    if esf:
        d["esf0"] = max(esf)
    steps = max(s for r in runs for s, _ in _series(r, "validation.loss"))
    d["source"] = (f"fitted by benchmarks/probes/record_real.py to {len(runs)} real tiny-Tacotron2 runs "
                   f"({', '.join(r['tag'] for r in runs)}; up to {int(steps)} training steps)")
    known = {f.name for f in fields(Calibration)}
    cal = Calibration(**{k: v for k, v in d.items() if k in known})
    return cal, {"runs": per_run, "notes": notes}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.probes.record_real", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="train one real trial and record its reports")
    rec.add_argument("--tag", required=True)
    rec.add_argument("--learning-rate", type=float, default=1e-3)
    rec.add_argument("--max-steps", type=int, default=320)
    rec.add_argument("--interval", type=int, default=20, help="validation_interval (training steps)")
    rec.add_argument("--threads", type=int, default=1)
    rec.add_argument("--data-dir", default="data/corpus")
    rec.add_argument("--seed", type=int, default=0)
    fit_p = sub.add_parser("fit", help="fit calibration/constants.json to the real_*.json of --dir")
    fit_p.add_argument("--dir", default=str(FIT_DIR), help="folder of recorded runs to fit (default: %(default)s)")
    fit_p.add_argument("--loss-dir", default=str(LOSS_DIR), help="folder of the runs that fit the loss decay "
                       "(default: %(default)s; '' = --dir)")
    fit_p.add_argument("--bank", action="store_true", help="then take BANK_KEYS (loss noise and gap, attention and "
                       "gate plateaus) from the healthy recordings of benchmarks/bank/")
    args = ap.parse_args(argv)
    if args.cmd == "record":
        record(args.tag, args.learning_rate, args.max_steps, args.interval, args.threads, args.data_dir, args.seed)
        return
    runs = bank_runs() if args.bank else []
    if args.bank and not runs:
        raise SystemExit("benchmarks/bank/ holds no healthy recording of 1,000 steps or more; record some first "
                         "(python -m benchmarks.probes.record_bank list)")
    loss_paths = sorted(Path(args.loss_dir).glob("real_*.json")) if args.loss_dir else None
    paths = sorted(Path(args.dir).glob("real_*.json"))
    cal, info = fit_with_bank(runs, paths, loss_paths) if args.bank else fit(paths, loss_paths)
    CALIBRATION_FILE.write_text(json.dumps(asdict(cal), indent=1) + "\n")
    (CAL_DIR / "fit.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps({"constants": asdict(cal), **info}, indent=1))


if __name__ == "__main__":
    main()
