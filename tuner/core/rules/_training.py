"""Rules on the losses and gradients: gradient explosion, overfitting, stagnation, validation
loss and training degradation. Pure functions of a History (see tuner/core/rules/__init__.py)."""
from __future__ import annotations

import math
from typing import Any, Callable

from tuner.core.config import (DegradationRule, GradientRule, OverfittingRule, StagnationRule,
                          ValidationLossRule)
from tuner.core.history import History
from tuner.core.rules._streams import EarlierLevel, LossTracker
from tuner.core.rules._problem import (GAP, GRAD_NORM, INTERVAL_STEPS, OVERFLOWS, RESTORED, SKIPPED, TRAIN_LOSS,
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
    safeguard doing its job and is not an explosion. A validation.loss above (1 +
    critical_loss_jump) x the median of the previous loss_jump_reports -> critical (_loss_jump).

    NaN policy: without skipped steps reported, NaN or Inf in grad.norm or training.loss is a
    critical explosion (never hidden).
    """
    if not cfg.enabled or len(window) == 0:
        return None
    window.require(GRAD_NORM, max(serious_after, 1))   # the series itself only for a held warning
    loss, step = window.latest(TRAIN_LOSS), window.step
    norm = window.latest(GRAD_NORM)
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
    jump = _loss_jump(window, cfg)
    if jump is not None:
        return jump
    if norm > cfg.warning:
        norms = window.series(GRAD_NORM, last=max(serious_after, 1))
        held = held_for(norms, serious_after, lambda v: v > cfg.warning)
        return make_problem("gradient_explosion", "serious" if held else "warning", GRAD_NORM, norm, ">",
                            cfg.warning, step, f"above it for {serious_after} reports" if held else "")
    return None


def _loss_jump(window: History, cfg: GradientRule) -> Problem | None:
    """validation.loss above (1 + critical_loss_jump) x the median of the trial's previous
    loss_jump_reports validation losses -> critical: a divergence within a report or two that
    clipping kept out of grad.norm (a learning-rate spike under clipping sent the validation loss
    x1.3-x11 in one report, benchmarks/probes/loss_jumps.py). A slow rise over many reports is
    overfitting's to judge; the first report has nothing to jump from. The median, so that one
    low outlier among the previous reports does not turn an ordinary one into a jump."""
    if cfg.critical_loss_jump <= 0 or not window.has(VAL_LOSS):
        return None
    name = window.reported_name(VAL_LOSS) or VAL_LOSS
    earlier = window.tracker(("earlier_level", name, cfg.loss_jump_reports),
                             lambda h: EarlierLevel(name, cfg.loss_jump_reports))
    loss, level = window.latest(VAL_LOSS), earlier.before
    if not (math.isfinite(loss) and level > 0):
        return None
    limit = level * (1 + cfg.critical_loss_jump)
    if loss <= limit:
        return None
    return make_problem("gradient_explosion", "critical", VAL_LOSS, loss, ">", limit, window.step,
                        f"{loss / level:.1f} x the median validation.loss {fmt(level)} of the previous "
                        f"{cfg.loss_jump_reports} reports: a divergence the clipped gradients do not show")


def _gaps(window: History, last: int) -> list[float]:
    """The last `last` overfitting.gap values as reported; validation.loss - training.loss
    where a result does not report it."""
    gaps = window.optional_series(GAP, last=last)
    if len(gaps) == min(last, len(window)):
        return gaps
    val, train = window.series(VAL_LOSS, last=last), window.series(TRAIN_LOSS, last=last)
    return [v - t for v, t in zip(val, train)]


def _rising(window: History, k: int, losses: LossTracker) -> bool:
    """Whether the validation loss rose at each of the last k reports, from the tracker's run
    length (it was fed the window's results): the last k + 1 losses are then read only to
    compare the training losses. Raises the MissingMetricError that reading them would."""
    window.require(VAL_LOSS, k + 1)
    window.require(TRAIN_LOSS, k + 1)
    return len(window) > k and losses.rising >= k


def _losses(window: History, smooth: int, noise_window: int, windows: tuple[int, ...] = (),
            keep: int = 8) -> LossTracker:
    """The window's incremental loss statistics (tuner/core/rules/_streams.py) for these settings;
    ``keep``: at least this many recent smoothed values are kept (``recent_smoothed``)."""
    return window.tracker(_losses_key(smooth, noise_window, windows, keep),  # type: ignore[return-value]
                          lambda h: _new_losses(h, smooth, noise_window, windows, keep))


def _losses_key(smooth: int, noise_window: int, windows: tuple[int, ...], keep: int) -> tuple[Any, ...]:
    # without the loss names: a History's name map is fixed, so they are the same each time
    return ("losses", smooth, noise_window, windows, keep)


def _new_losses(h: History, smooth: int, noise_window: int, windows: tuple[int, ...], keep: int) -> LossTracker:
    return LossTracker(h.reported_name(VAL_LOSS) or VAL_LOSS, h.reported_name(TRAIN_LOSS) or TRAIN_LOSS,
                       h.maxlen, smooth, noise_window, windows, keep)


class SharedLosses:
    """One LossTracker read by both overfitting and stagnation (``share_losses``): the rules'
    configs it was made for and its settings (the ``_losses`` arguments)."""

    def __init__(self, over: OverfittingRule, stag: StagnationRule) -> None:
        self.overfitting, self.stagnation = over, stag
        self.settings = (stag.smooth_reports, stag.noise_window, (stag.window, stag.critical_window),
                         max(over.critical_rise_reports, 8))
        # the _losses key and factory, made once rather than on each of the two reads per result
        self.key = _losses_key(*self.settings)
        self.make: Callable[[History], LossTracker] = lambda h: _new_losses(h, *self.settings)

    def tracker(self, window: History) -> LossTracker:
        """The shared tracker of `window` (what ``_losses(window, *self.settings)`` returns)."""
        return window.tracker(self.key, self.make)  # type: ignore[return-value]


def share_losses(active: dict[Callable[..., Any], Any]) -> SharedLosses | None:
    """The tracker overfitting and stagnation can share when both are active and enabled and
    smooth and measure noise alike (the defaults): its stagnation windows and at least
    critical_rise_reports + 1 smoothed values, so each rule reads from it what it reads from its
    own tracker (one push per result instead of two, ~3 us). None otherwise."""
    over, stag = active.get(overfitting), active.get(stagnation)
    if over is None or stag is None or not (over.enabled and stag.enabled) or \
            (over.smooth_reports, over.noise_window) != (stag.smooth_reports, stag.noise_window):
        return None
    return SharedLosses(over, stag)


def _overfitting_losses(window: History, cfg: OverfittingRule) -> LossTracker:
    """Overfitting's loss tracker: the shared one (SharedLosses) when it holds what overfitting's
    own tracker would hold, else its own. Its own is made at overfitting's first read since the
    window started, from the window's results; the shared one (made at stagnation's first read)
    holds the same unless the window has dropped results since it was made (count > len(window)):
    then overfitting keeps its own, as before the sharing."""
    shared = window.shared_losses
    if shared is not None and shared.overfitting is cfg:
        losses = shared.tracker(window)
        if losses.read_by_overfitting or losses.count == len(window):
            losses.read_by_overfitting = True
            return losses
    return _losses(window, cfg.smooth_reports, cfg.noise_window, keep=cfg.critical_rise_reports)


def rise_tolerance(cfg: OverfittingRule, sigma_rel: float) -> float:
    """critical_rise, or noise_scale x the trial's relative report-to-report noise when larger."""
    noisy = cfg.noise_scale * sigma_rel if math.isfinite(sigma_rel) else 0.0
    return max(cfg.critical_rise, noisy)


def _risen_from_best(window: History, cfg: OverfittingRule, losses: LossTracker) -> Problem | None:
    """The smoothed validation.loss (median of the last `smooth_reports`) above (1 + tolerance) x
    its smoothed best in the window at each of the last `critical_rise_reports` reports, that best
    at least `rising_window` reports old, and the smoothed training.loss now below (1 +
    train_rise_tolerance) x its value at the best. tolerance = rise_tolerance(): critical_rise, or
    noise_scale x the trial's own relative noise where that is larger, so a noisy plateau does not
    read as a rise. O(critical_rise_reports) per result (the best is tracked incrementally)."""
    found = losses.best()
    if found is None:
        return None
    best, at, train_at = found
    age = losses.count - 1 - at
    if best <= 0 or age < cfg.rising_window:
        return None
    tolerance = rise_tolerance(cfg, losses.sigma_rel)
    limit = best * (1 + tolerance)
    recent = losses.recent_smoothed(cfg.critical_rise_reports)
    if len(recent) < cfg.critical_rise_reports or not all(v > limit for v in recent):
        return None
    train_now = losses.smooth_train
    if not train_now < train_at * (1 + cfg.train_rise_tolerance):
        return None
    smoothed = f"median of {cfg.smooth_reports} " if cfg.smooth_reports > 1 else ""
    noise = (f", tolerance {tolerance:.0%} from its noise {losses.sigma_rel:.1%}"
             if tolerance > cfg.critical_rise else "")
    return make_problem("overfitting", "critical", VAL_LOSS, recent[-1], ">", limit, window.step,
                        f"{smoothed}{tolerance:.0%} above its best {fmt(best)} of {age} reports ago{noise} while "
                        f"training.loss went {fmt(train_at)} -> {fmt(train_now)}")


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
    last = max(serious_after, 1)
    # the latest gap; the last `last` of them (_gaps) only for a held warning or when one is missing
    gaps = None if window.complete(GAP, last) else _gaps(window, last)
    gap, step = window.latest(GAP) if gaps is None else gaps[-1], window.step
    if not math.isfinite(gap):
        return None
    if gap > cfg.critical_gap:
        return make_problem("overfitting", "critical", GAP, gap, ">", cfg.critical_gap, step)
    losses = _overfitting_losses(window, cfg)
    risen = _risen_from_best(window, cfg, losses)
    if risen is not None:
        return risen
    k = cfg.rising_window
    if _rising(window, k, losses):
        val, train = window.series(VAL_LOSS, last=k + 1), window.series(TRAIN_LOSS, last=k + 1)
    else:
        val = train = []
    if len(val) == k + 1 and all(b > a for a, b in zip(val, val[1:])) and train[-1] < train[0]:
        return make_problem("overfitting", "serious", VAL_LOSS, val[-1], ">", val[0], step,
                            f"validation.loss rose {k} reports in a row while training.loss fell "
                            f"{fmt(train[0])} -> {fmt(train[-1])}")
    if gap > cfg.warning_gap:
        gaps = _gaps(window, last) if gaps is None else gaps
        held = held_for(gaps, serious_after, lambda v: v > cfg.warning_gap)
        return make_problem("overfitting", "serious" if held else "warning", GAP, gap, ">",
                            cfg.warning_gap, step, f"above it for {serious_after} reports" if held else "")
    return None


def stagnation(window: History, cfg: StagnationRule, serious_after: int = 0) -> Problem | None:
    """The best smoothed validation.loss (median of the last `smooth_reports`) of the last
    `critical_window` reports beats the best before them by less than the tolerance -> critical;
    over `window` reports -> serious; training.loss and validation.loss identical (frozen metrics)
    for `frozen_critical_reports` reports -> critical, for `frozen_reports` -> serious.
    tolerance = min_delta, or noise_scale x the trial's own report-to-report noise of the
    validation loss where that is larger (a gain within the noise is not progress). O(1) per
    result: sliding minima and the noise are tracked incrementally (tuner/core/rules/_streams.py).

    NaN policy: non-finite losses are skipped when looking for the best value; NaN never equals
    NaN, so NaN losses are never "frozen".
    """
    if not cfg.enabled or len(window) == 0:
        return None
    shared = window.shared_losses
    if shared is not None and shared.stagnation is cfg:
        losses = shared.tracker(window)
    else:
        losses = _losses(window, cfg.smooth_reports, cfg.noise_window, (cfg.window, cfg.critical_window))
    step = window.step
    noisy = cfg.noise_scale * losses.sigma if math.isfinite(losses.sigma) else 0.0
    tolerance = max(cfg.min_delta, noisy)
    for severity, n, m in (("critical", cfg.critical_window, cfg.frozen_critical_reports),
                           ("serious", cfg.window, cfg.frozen_reports)):
        gain = losses.improvement(n)
        if gain is not None and gain < tolerance:
            note = f"improvement over the last {n} reports"
            if tolerance > cfg.min_delta:
                note += f" (tolerance from its noise {fmt(losses.sigma)} x {fmt(cfg.noise_scale)})"
            return make_problem("stagnation", severity, VAL_LOSS, gain, "<", tolerance, step, note)
        if losses.frozen >= m:
            val, train = window.latest(VAL_LOSS), window.latest(TRAIN_LOSS)
            return Problem("stagnation", severity, VAL_LOSS, float(m), float(m), step,
                           f"validation.loss {fmt(val)} and training.loss {fmt(train)} frozen "
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
