"""Detection rules: pure functions of a trial's History that return a Problem or None.

One function per problem kind of the ARCHITECTURE.md table. Each is a ladder of early returns
(rule disabled / too little data, non-finite value, one comparison per severity) and states its
NaN policy. `diagnose(history, cfg)` runs them all and returns the problems, most severe first.

Severity: "warning" (logged, never acts), "serious" (counts towards
`diagnostics.serious_problems_for_restart`), "critical" (calls for recovery alone). A
warning-level condition that held for the last `serious_after` reports is serious (0: never).
Every rule takes `serious_after` (`diagnostics.serious_after`; `diagnose` passes it; 0 = warnings
never escalate). No Ray, no torch: plain floats in, frozen dataclasses out.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

from tuner.config import (AttentionRule, DegradationRule, GateRule, GradientRule, OverfittingRule,
                          SmartConfig, StagnationRule, ValidationLossRule)
from tuner.history import History

SEVERITY_RANK = {"warning": 0, "serious": 1, "critical": 2}

GRAD_NORM = "grad.norm"
TRAIN_LOSS = "training.loss"
VAL_LOSS = "validation.loss"
GAP = "overfitting.gap"
ATTENTION = "validation.attention_score"
DIAGONALITY = "validation.diagonality"
GATE = "validation.gate_accuracy"
EARLY_STOP = "validation.early_stop_fraction"


@dataclass(frozen=True)
class Problem:
    """One detected problem. `message` names the metric, its value, the threshold and the step."""
    kind: str          # gradient_explosion | overfitting | stagnation | attention_collapse | ...
    severity: str      # warning | serious | critical
    metric: str        # contract metric name
    value: float
    threshold: float
    step: int          # validation.step of the result it was detected on
    message: str

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.severity]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.1f}" if float(x).is_integer() and abs(x) < 1e6 else f"{x:.4g}"


def _problem(kind: str, severity: str, metric: str, value: float, op: str, threshold: float,
             step: int, note: str = "") -> Problem:
    extra = f"; {note}" if note else ""
    compared = f"{op} {_fmt(threshold)}" if op else "is not finite"
    msg = f"{metric} {_fmt(value)} {compared} ({severity}) at validation {step}{extra}"
    return Problem(kind, severity, metric, float(value), float(threshold), step, msg)


def _held(values: Sequence[float], n: int, predicate: Callable[[float], bool]) -> bool:
    """True when the last `n` values all satisfy `predicate`."""
    return n > 0 and len(values) >= n and all(predicate(v) for v in values[-n:])


def gradient_explosion(window: History, cfg: GradientRule, serious_after: int = 0) -> Problem | None:
    """grad.norm > critical -> critical; > warning -> warning (serious when held).

    NaN policy: NaN or Inf in grad.norm or training.loss is a critical explosion (never hidden).
    """
    if not cfg.enabled or len(window) == 0:
        return None
    norms = window.series(GRAD_NORM, last=max(serious_after, 1))
    loss, step = window.latest(TRAIN_LOSS), window.step
    norm = norms[-1]
    if not math.isfinite(norm):
        return _problem("gradient_explosion", "critical", GRAD_NORM, norm, "", cfg.critical, step)
    if not math.isfinite(loss):
        return _problem("gradient_explosion", "critical", TRAIN_LOSS, loss, "", cfg.critical, step)
    if norm > cfg.critical:
        return _problem("gradient_explosion", "critical", GRAD_NORM, norm, ">", cfg.critical, step)
    if norm > cfg.warning:
        held = _held(norms, serious_after, lambda v: v > cfg.warning)
        return _problem("gradient_explosion", "serious" if held else "warning", GRAD_NORM, norm, ">",
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
    """validation.loss > (1 + critical_rise) x its best finite value in the window, that best at
    least `rising_window` reports old, and training.loss now below its value at the best."""
    val, train = window.series(VAL_LOSS), window.series(TRAIN_LOSS)
    best = min(filter(math.isfinite, val), default=None)
    if best is None:
        return None
    at = len(val) - 1 - val[::-1].index(best)      # its latest occurrence
    limit = best * (1 + cfg.critical_rise)
    if best <= 0 or len(val) - 1 - at < cfg.rising_window or not val[-1] > limit:
        return None
    if not train[-1] < train[at]:
        return None
    return _problem("overfitting", "critical", VAL_LOSS, val[-1], ">", limit, window.step,
                    f"{cfg.critical_rise:.0%} above its best {_fmt(best)} of {len(val) - 1 - at} reports "
                    f"ago while training.loss fell {_fmt(train[at])} -> {_fmt(train[-1])}")


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
        return _problem("overfitting", "critical", GAP, gap, ">", cfg.critical_gap, step)
    risen = _risen_from_best(window, cfg)
    if risen is not None:
        return risen
    k = cfg.rising_window
    val, train = window.series(VAL_LOSS, last=k + 1), window.series(TRAIN_LOSS, last=k + 1)
    if len(val) == k + 1 and all(b > a for a, b in zip(val, val[1:])) and train[-1] < train[0]:
        return _problem("overfitting", "serious", VAL_LOSS, val[-1], ">", val[0], step,
                        f"validation.loss rose {k} reports in a row while training.loss fell "
                        f"{_fmt(train[0])} -> {_fmt(train[-1])}")
    if gap > cfg.warning_gap:
        held = _held(gaps, serious_after, lambda v: v > cfg.warning_gap)
        return _problem("overfitting", "serious" if held else "warning", GAP, gap, ">",
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
            return _problem("stagnation", severity, VAL_LOSS, gain, "<", cfg.min_delta, step,
                            f"improvement over the last {n} reports")
        train = window.series(TRAIN_LOSS, last=m)
        if len(train) == m and len(set(train)) == 1 and len(set(val[-m:])) == 1:
            return Problem("stagnation", severity, VAL_LOSS, float(m), float(m), step,
                           f"validation.loss {_fmt(val[-1])} and training.loss {_fmt(train[-1])} frozen "
                           f"for {m} reports >= {m} ({severity}) at validation {step}")
    return None


def _degrading(values: Sequence[float], n: int, drop: float) -> tuple[float, float] | None:
    """(best, latest) when the latest of the last `n` finite values is more than `drop` below their max."""
    recent = [v for v in values[-n:] if math.isfinite(v)]
    if len(recent) < n or max(recent) - recent[-1] <= drop:
        return None
    return max(recent), recent[-1]


def attention_collapse(window: History, cfg: AttentionRule, serious_after: int = 0) -> Problem | None:
    """attention_score < critical -> critical; < warning -> warning (serious when held);
    score (or validation.diagonality, when reported) down by more than degrading_drop from its
    best of the last degrading_window reports -> warning.

    NaN policy: a NaN score is not judged (the NaN comes from the losses, which
    gradient_explosion reports).
    """
    if not cfg.enabled or len(window) == 0:
        return None
    scores = window.series(ATTENTION, last=max(serious_after, cfg.degrading_window))
    step = window.step
    score = scores[-1]
    if not math.isfinite(score):
        return None
    if score < cfg.critical:
        return _problem("attention_collapse", "critical", ATTENTION, score, "<", cfg.critical, step)
    if score < cfg.warning:
        held = _held(scores, serious_after, lambda v: v < cfg.warning)
        return _problem("attention_collapse", "serious" if held else "warning", ATTENTION, score, "<",
                        cfg.warning, step, f"below it for {serious_after} reports" if held else "")
    for metric, values in ((ATTENTION, scores), (DIAGONALITY, window.optional_series(DIAGONALITY, cfg.degrading_window))):
        found = _degrading(values, cfg.degrading_window, cfg.degrading_drop)
        if found:
            best, latest = found
            return _problem("attention_collapse", "warning", metric, latest, "<",
                            best - cfg.degrading_drop, step,
                            f"degrading from {_fmt(best)} over {cfg.degrading_window} reports")
    return None


def gate_collapse(window: History, cfg: GateRule, serious_after: int = 0) -> Problem | None:
    """gate_accuracy < critical -> critical; validation.early_stop_fraction > early_stop_fraction
    (when reported) -> serious; accuracy < warning -> warning (serious when held).

    NaN policy: a NaN accuracy or fraction is not judged (gradient_explosion reports the NaN).
    """
    if not cfg.enabled or len(window) == 0:
        return None
    accuracy, step = window.series(GATE, last=max(serious_after, 1)), window.step
    acc = accuracy[-1]
    if not math.isfinite(acc):
        return None
    if acc < cfg.critical:
        return _problem("gate_collapse", "critical", GATE, acc, "<", cfg.critical, step)
    early = window.optional_series(EARLY_STOP, last=1) if window.has(EARLY_STOP) else []
    if early and math.isfinite(early[-1]) and early[-1] > cfg.early_stop_fraction:
        return _problem("gate_collapse", "serious", EARLY_STOP, early[-1], ">", cfg.early_stop_fraction,
                        step, "gate closes before 30% of the sequence")
    if acc < cfg.warning:
        held = _held(accuracy, serious_after, lambda v: v < cfg.warning)
        return _problem("gate_collapse", "serious" if held else "warning", GATE, acc, "<", cfg.warning,
                        step, f"below it for {serious_after} reports" if held else "")
    return None


def validation_loss(window: History, cfg: ValidationLossRule, serious_after: int = 0) -> Problem | None:
    """validation.loss > critical -> critical.

    NaN policy: NaN or Inf validation loss is critical.
    """
    if not cfg.enabled or len(window) == 0:
        return None
    loss, step = window.latest(VAL_LOSS), window.step
    if not math.isfinite(loss):
        return _problem("validation_loss", "critical", VAL_LOSS, loss, "", cfg.critical, step)
    if loss > cfg.critical:
        return _problem("validation_loss", "critical", VAL_LOSS, loss, ">", cfg.critical, step)
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
        return _problem("training_degradation", "critical", TRAIN_LOSS, progress, "<", cfg.critical,
                        step, f"progress (initial {_fmt(initial)} - current {_fmt(current)}) / initial")
    return None


# (rule, its config section, the contract metrics it needs: a metric mapped to null skips the rule)
RULES: tuple[tuple[Callable[..., Problem | None], str, tuple[str, ...]], ...] = (
    (gradient_explosion, "gradient_explosion", (GRAD_NORM, TRAIN_LOSS)),
    (validation_loss, "validation_loss", (VAL_LOSS,)),
    (training_degradation, "training_degradation", (TRAIN_LOSS,)),
    (attention_collapse, "attention", (ATTENTION,)),
    (gate_collapse, "gate", (GATE,)),
    (overfitting, "overfitting", (VAL_LOSS, TRAIN_LOSS)),
    (stagnation, "stagnation", (VAL_LOSS, TRAIN_LOSS)),
)


def diagnose(history: History | Sequence[Mapping[str, Any]], cfg: SmartConfig) -> list[Problem]:
    """All problems the rules find in `history` (a History or result dicts, oldest first),
    most severe first (ties keep the RULES order). A missing metric raises MissingMetricError."""
    window = history if isinstance(history, History) else History.from_results(history, cfg)
    problems = []
    for rule, section, needs in RULES:
        if all(window.enabled(m) for m in needs):
            found = rule(window, getattr(cfg.diagnostics, section), cfg.diagnostics.serious_after)
            if found is not None:
                problems.append(found)
    return sorted(problems, key=lambda p: -p.rank)


__all__ = ["Problem", "SEVERITY_RANK", "RULES", "diagnose", "gradient_explosion", "overfitting",
           "stagnation", "attention_collapse", "gate_collapse", "validation_loss", "training_degradation"]
