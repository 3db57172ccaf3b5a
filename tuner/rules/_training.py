"""Rules on the losses and gradients: gradient explosion, overfitting, stagnation, validation
loss and training degradation. Pure functions of a History (see tuner/rules/__init__.py)."""
from __future__ import annotations

import math
from typing import Sequence

from tuner.config import (DegradationRule, GradientRule, OverfittingRule, StagnationRule,
                          ValidationLossRule)
from tuner.history import History
from tuner.rules._problem import (GAP, GRAD_NORM, INTERVAL_STEPS, OVERFLOWS, RESTORED, SKIPPED, TRAIN_LOSS,
                                  VAL_LOSS, Problem, fmt, held_for, make_problem)


def _skipped_share(window: History) -> tuple[float, float, float] | None:
    """(share, skipped, steps) of the latest interval: steps skipped for a non-finite loss or
    gradient, fp16 GradScaler overflows not counted; None when the trainable does not report it."""
    if not (window.has(SKIPPED) and window.has(INTERVAL_STEPS)):
        return None
    skipped, steps = window.latest(SKIPPED), window.latest(INTERVAL_STEPS)
    overflows = window.optional_series(OVERFLOWS, last=1)
    counted = skipped - (overflows[-1] if overflows and math.isfinite(overflows[-1]) else 0.0)
    if not (math.isfinite(counted) and math.isfinite(steps)) or steps <= 0:
        return None
    return counted / steps, counted, steps


def gradient_explosion(window: History, cfg: GradientRule, serious_after: int = 0) -> Problem | None:
    """grad.norm > critical -> critical; > warning -> warning (serious when held).

    With skipped steps reported (train_tts: training.skipped_steps of training.interval_steps,
    grad.norm over the taken steps only): a share of skipped steps above critical_skipped_share
    (GradScaler overflows not counted), restored_from_nan up since the previous report
    (non-finite parameters) or a non-finite validation.loss -> critical; a NaN grad.norm or
    training.loss then means no step was taken -> critical. One skipped step is the in-trial
    safeguard doing its job and is not an explosion.

    NaN policy: without skipped steps reported, NaN or Inf in grad.norm or training.loss is a
    critical explosion (never hidden).
    """
    if not cfg.enabled or len(window) == 0:
        return None
    norms = window.series(GRAD_NORM, last=max(serious_after, 1))
    loss, step = window.latest(TRAIN_LOSS), window.step
    norm = norms[-1]
    skipped = _skipped_share(window)
    if skipped is not None:
        share, count, steps = skipped
        if share > cfg.critical_skipped_share:
            return make_problem("gradient_explosion", "critical", SKIPPED, share, ">", cfg.critical_skipped_share,
                                step, f"share of the interval's steps skipped for a non-finite loss or gradient "
                                f"({fmt(count)} of {fmt(steps)})")
        restored = window.optional_series(RESTORED, last=2)
        if len(restored) == 2 and restored[1] > restored[0]:
            return make_problem("gradient_explosion", "critical", RESTORED, restored[1], ">", restored[0], step,
                                "parameters became non-finite (restored in-process)")
        val = window.optional_series(VAL_LOSS, last=1)
        if val and not math.isfinite(val[-1]):
            return make_problem("gradient_explosion", "critical", VAL_LOSS, val[-1], "", cfg.critical, step)
    if not math.isfinite(norm):
        return make_problem("gradient_explosion", "critical", GRAD_NORM, norm, "", cfg.critical, step)
    if not math.isfinite(loss):
        return make_problem("gradient_explosion", "critical", TRAIN_LOSS, loss, "", cfg.critical, step)
    if norm > cfg.critical:
        return make_problem("gradient_explosion", "critical", GRAD_NORM, norm, ">", cfg.critical, step)
    if norm > cfg.warning:
        held = held_for(norms, serious_after, lambda v: v > cfg.warning)
        return make_problem("gradient_explosion", "serious" if held else "warning", GRAD_NORM, norm, ">",
                            cfg.warning, step, f"above it for {serious_after} reports" if held else "")
    return None


def _gaps(window: History, last: int) -> list[float]:
    """The last `last` overfitting.gap values as reported; validation.loss - training.loss
    where a result does not report it."""
    gaps = window.optional_series(GAP, last=last)
    if len(gaps) == min(last, len(window)):
        return gaps
    val, train = window.series(VAL_LOSS, last=last), window.series(TRAIN_LOSS, last=last)
    return [v - t for v, t in zip(val, train)]


def _risen_from_best(window: History, cfg: OverfittingRule) -> Problem | None:
    """validation.loss > (1 + critical_rise) x its best finite value in the window at each of the
    last `critical_rise_reports` reports, that best at least `rising_window` reports old, and
    training.loss now below its value at the best. Requiring the rise on consecutive reports keeps
    one noisy validation from calling a critical problem."""
    val, train = window.series(VAL_LOSS), window.series(TRAIN_LOSS)
    best = min(filter(math.isfinite, val), default=None)
    if best is None:
        return None
    at = len(val) - 1 - val[::-1].index(best)      # its latest occurrence
    limit = best * (1 + cfg.critical_rise)
    recent = val[-cfg.critical_rise_reports:]
    if best <= 0 or len(val) - 1 - at < cfg.rising_window or not all(v > limit for v in recent):
        return None
    if not train[-1] < train[at]:
        return None
    return make_problem("overfitting", "critical", VAL_LOSS, val[-1], ">", limit, window.step,
                        f"{cfg.critical_rise:.0%} above its best {fmt(best)} of {len(val) - 1 - at} reports "
                        f"ago while training.loss fell {fmt(train[at])} -> {fmt(train[-1])}")


def overfitting(window: History, cfg: OverfittingRule, serious_after: int = 0) -> Problem | None:
    """gap > critical_gap -> critical; validation.loss above (1 + critical_rise) x its best of at
    least `rising_window` reports ago while training.loss fell since -> critical;
    validation.loss rising at each of the last `rising_window` reports while training.loss fell
    over them -> serious; gap > warning_gap -> warning (serious when held).

    NaN policy: a non-finite gap or loss is not judged here (gradient_explosion and
    validation_loss report it); the best ignores NaN; rising/falling comparisons with NaN are false.
    """
    if not cfg.enabled or len(window) == 0:
        return None
    gaps, step = _gaps(window, max(serious_after, 1)), window.step
    gap = gaps[-1]
    if not math.isfinite(gap):
        return None
    if gap > cfg.critical_gap:
        return make_problem("overfitting", "critical", GAP, gap, ">", cfg.critical_gap, step)
    risen = _risen_from_best(window, cfg)
    if risen is not None:
        return risen
    k = cfg.rising_window
    val, train = window.series(VAL_LOSS, last=k + 1), window.series(TRAIN_LOSS, last=k + 1)
    if len(val) == k + 1 and all(b > a for a, b in zip(val, val[1:])) and train[-1] < train[0]:
        return make_problem("overfitting", "serious", VAL_LOSS, val[-1], ">", val[0], step,
                            f"validation.loss rose {k} reports in a row while training.loss fell "
                            f"{fmt(train[0])} -> {fmt(train[-1])}")
    if gap > cfg.warning_gap:
        held = held_for(gaps, serious_after, lambda v: v > cfg.warning_gap)
        return make_problem("overfitting", "serious" if held else "warning", GAP, gap, ">",
                            cfg.warning_gap, step, f"above it for {serious_after} reports" if held else "")
    return None


def _improvement(values: Sequence[float], n: int) -> float | None:
    """Best (lowest) finite value before the last `n` reports minus the best of the last `n`.

    None when either part has no finite value (too little data).
    """
    if len(values) <= n:
        return None
    before = min(filter(math.isfinite, values[:-n]), default=None)
    recent = min(filter(math.isfinite, values[-n:]), default=None)
    if before is None or recent is None:
        return None
    return before - recent


def stagnation(window: History, cfg: StagnationRule, serious_after: int = 0) -> Problem | None:
    """No improvement of validation.loss by min_delta over `critical_window` reports -> critical;
    over `window` reports -> serious; training.loss and validation.loss identical (frozen
    metrics) for `frozen_critical_reports` reports -> critical, for `frozen_reports` -> serious.

    NaN policy: non-finite losses are skipped when looking for the best value; NaN never equals
    NaN, so NaN losses are never "frozen".
    """
    if not cfg.enabled or len(window) == 0:
        return None
    val, step = window.series(VAL_LOSS), window.step
    for severity, n, m in (("critical", cfg.critical_window, cfg.frozen_critical_reports),
                           ("serious", cfg.window, cfg.frozen_reports)):
        gain = _improvement(val, n)
        if gain is not None and gain < cfg.min_delta:
            return make_problem("stagnation", severity, VAL_LOSS, gain, "<", cfg.min_delta, step,
                                f"improvement over the last {n} reports")
        train = window.series(TRAIN_LOSS, last=m)
        if len(train) == m and len(set(train)) == 1 and len(set(val[-m:])) == 1:
            return Problem("stagnation", severity, VAL_LOSS, float(m), float(m), step,
                           f"validation.loss {fmt(val[-1])} and training.loss {fmt(train[-1])} frozen "
                           f"for {m} reports >= {m} ({severity}) at validation {step}")
    return None


def validation_loss(window: History, cfg: ValidationLossRule, serious_after: int = 0) -> Problem | None:
    """validation.loss > critical -> critical.

    NaN policy: NaN or Inf validation loss is critical.
    """
    if not cfg.enabled or len(window) == 0:
        return None
    loss, step = window.latest(VAL_LOSS), window.step
    if not math.isfinite(loss):
        return make_problem("validation_loss", "critical", VAL_LOSS, loss, "", cfg.critical, step)
    if loss > cfg.critical:
        return make_problem("validation_loss", "critical", VAL_LOSS, loss, ">", cfg.critical, step)
    return None


def training_degradation(window: History, cfg: DegradationRule, serious_after: int = 0) -> Problem | None:
    """progress = (initial - current) / initial training.loss; progress < critical -> critical.

    `initial` is the first finite training loss of the trial (kept after the window rolls).
    NaN policy: a non-finite current loss is not judged (gradient_explosion reports it); an
    initial loss <= 0 makes the ratio meaningless, so nothing is reported.
    """
    if not cfg.enabled or len(window) == 0:
        return None
    initial, current, step = window.initial_training_loss, window.latest(TRAIN_LOSS), window.step
    if initial is None or initial <= 0 or not math.isfinite(current):
        return None
    progress = (initial - current) / initial
    if progress < cfg.critical:
        return make_problem("training_degradation", "critical", TRAIN_LOSS, progress, "<", cfg.critical,
                            step, f"progress (initial {fmt(initial)} - current {fmt(current)}) / initial")
    return None
