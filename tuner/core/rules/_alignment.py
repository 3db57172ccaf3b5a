"""Rules on the alignment and the stop gate: attention collapse and gate collapse.
Pure functions of a History (see tuner/core/rules/__init__.py)."""
from __future__ import annotations

import math
from typing import Sequence

from tuner.core.config import AttentionRule, GateRule
from tuner.core.history import History
from tuner.core.rules._problem import (ATTENTION, DIAGONALITY, EARLY_STOP, GATE, Problem, fmt, held_for,
                                  make_problem)


def _degrading(values: Sequence[float], n: int, drop: float) -> tuple[float, float] | None:
    """(best, latest) when the latest of the last `n` finite values is more than `drop` below their max."""
    recent = values[-n:]   # fewer than n finite ones among them: not judged
    if len(recent) < n or not all(map(math.isfinite, recent)) or max(recent) - recent[-1] <= drop:
        return None
    return max(recent), recent[-1]


def attention_collapse(window: History, cfg: AttentionRule, serious_after: int = 0) -> Problem | None:
    """attention_score < critical -> critical; < warning at each of the last `critical_after`
    reports -> critical; < warning -> warning (serious when held);
    score (or validation.diagonality, when reported) down by more than degrading_drop from its
    best of the last degrading_window reports -> warning.

    NaN policy: a NaN score is not judged (the NaN comes from the losses, which
    gradient_explosion reports).
    """
    if not cfg.enabled or len(window) == 0:
        return None
    last = max(serious_after, cfg.degrading_window, cfg.critical_after)
    window.require(ATTENTION, last)   # the last scores are read below only where they are compared
    step = window.step
    score = window.latest(ATTENTION)
    if not math.isfinite(score):
        return None
    if score < cfg.critical:
        return make_problem("attention_collapse", "critical", ATTENTION, score, "<", cfg.critical, step)
    if score < cfg.warning:
        scores = window.series(ATTENTION, last=last)
        if held_for(scores, cfg.critical_after, lambda v: v < cfg.warning):
            return make_problem("attention_collapse", "critical", ATTENTION, score, "<", cfg.warning, step,
                                f"below it for {cfg.critical_after} reports: the attention has not formed")
        held = held_for(scores, serious_after, lambda v: v < cfg.warning)
        return make_problem("attention_collapse", "serious" if held else "warning", ATTENTION, score, "<",
                            cfg.warning, step, f"below it for {serious_after} reports" if held else "")
    # _degrading reads the last degrading_window (<= last) values; a diagonality the latest result
    # lacks has fewer than degrading_window of them there, so it is not read
    candidates = [(ATTENTION, window.series(ATTENTION, last=cfg.degrading_window))]
    if window.has(DIAGONALITY):
        candidates.append((DIAGONALITY, window.optional_series(DIAGONALITY, cfg.degrading_window)))
    for metric, values in candidates:
        found = _degrading(values, cfg.degrading_window, cfg.degrading_drop)
        if found:
            best, latest = found
            return make_problem("attention_collapse", "warning", metric, latest, "<",
                                best - cfg.degrading_drop, step,
                                f"degrading from {fmt(best)} over {cfg.degrading_window} reports")
    return None


def gate_collapse(window: History, cfg: GateRule, serious_after: int = 0) -> Problem | None:
    """gate_accuracy < critical -> critical; validation.early_stop_fraction > early_stop_fraction
    (when reported) -> serious; accuracy < warning -> warning (serious when held).

    Not judged while validation.attention_score (when reported) is below cfg.requires_attention:
    the stop gate can only learn where an utterance ends once attention reaches the end of the
    text, so an unaligned young model has a low gate accuracy by nature and attention_collapse is
    the rule that speaks for it.

    NaN policy: a NaN accuracy or fraction is not judged (gradient_explosion reports the NaN); a NaN
    attention score does not hold the rule back.
    """
    if not cfg.enabled or len(window) == 0:
        return None
    if cfg.requires_attention > 0 and window.has(ATTENTION):
        attention = window.latest(ATTENTION)
        if math.isfinite(attention) and attention < cfg.requires_attention:
            return None
    window.require(GATE, max(serious_after, 1))   # the series itself only for a held warning
    acc, step = window.latest(GATE), window.step
    if not math.isfinite(acc):
        return None
    if acc < cfg.critical:
        return make_problem("gate_collapse", "critical", GATE, acc, "<", cfg.critical, step)
    early = window.latest(EARLY_STOP) if window.has(EARLY_STOP) else math.nan
    if math.isfinite(early) and early > cfg.early_stop_fraction:
        return make_problem("gate_collapse", "serious", EARLY_STOP, early, ">", cfg.early_stop_fraction,
                            step, "gate closes before 30% of the sequence")
    if acc < cfg.warning:
        accuracy = window.series(GATE, last=max(serious_after, 1))
        held = held_for(accuracy, serious_after, lambda v: v < cfg.warning)
        return make_problem("gate_collapse", "serious" if held else "warning", GATE, acc, "<", cfg.warning,
                            step, f"below it for {serious_after} reports" if held else "")
    return None
