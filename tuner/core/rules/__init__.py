"""Detection rules: pure functions of a trial's History that return a Problem or None.

One function per problem kind of the ARCHITECTURE.md table. Each is a ladder of early returns
(rule disabled / too little data, non-finite value, one comparison per severity) and states its
NaN policy. `diagnose(history, cfg)` runs them all and returns the problems, most severe first.

Severity: "warning" (logged, never acts), "serious" (counts towards
`diagnostics.serious_problems_for_restart`), "critical" (calls for recovery alone). A
warning-level condition that held for the last `serious_after` reports is serious (0: never).
Every rule takes `serious_after` (`diagnostics.serious_after`; `diagnose` passes it; 0 = warnings
never escalate). No Ray, no torch: plain floats in, frozen dataclasses out.

Layout: `_problem` (Problem and message helpers), `_training` (losses and gradients),
`_alignment` (attention and gate); this module runs them (`RULES`, `diagnose`).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from tuner.core.config import SmartConfig
from tuner.core.history import History
from tuner.core.rules._alignment import attention_collapse, gate_collapse
from tuner.core.rules._problem import (ATTENTION, GATE, GRAD_NORM, SEVERITY_RANK, TRAIN_LOSS, VAL_LOSS,
                                  Problem)
from tuner.core.rules._training import (gradient_explosion, overfitting, share_losses, stagnation,
                                   training_degradation, validation_loss)

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


def active_rules(window: History, cfg: SmartConfig) -> tuple[tuple[Callable[..., Problem | None], Any], ...]:
    """(rule, its config section) for every rule of RULES whose metrics `window` reports (a metric
    mapped to null skips the rule), in RULES order. It depends only on the config, so a trial's
    monitor finds it once and hands it to every `diagnose` call. Also sets `window.shared_losses`
    (one loss tracker for overfitting and stagnation where they can share it, see share_losses)."""
    found = tuple((rule, getattr(cfg.diagnostics, section)) for rule, section, needs in RULES
                  if all(window.enabled(m) for m in needs))
    window.shared_losses = share_losses(dict((rule, section) for rule, section in found))
    return found


def diagnose(history: History | Sequence[Mapping[str, Any]], cfg: SmartConfig,
             rules: Sequence[tuple[Callable[..., Problem | None], Any]] | None = None) -> list[Problem]:
    """All problems the rules find in `history` (a History or result dicts, oldest first),
    most severe first (ties keep the RULES order). A missing metric raises MissingMetricError.
    `rules`: `active_rules(history, cfg)` when the caller has it already."""
    window = history if isinstance(history, History) else History.from_results(history, cfg)
    serious_after = cfg.diagnostics.serious_after
    problems = []
    for rule, section in active_rules(window, cfg) if rules is None else rules:
        found = rule(window, section, serious_after)
        if found is not None:
            problems.append(found)
    return sorted(problems, key=lambda p: -p.rank) if len(problems) > 1 else problems


__all__ = ["Problem", "SEVERITY_RANK", "RULES", "active_rules", "diagnose", "gradient_explosion", "overfitting",
           "stagnation", "attention_collapse", "gate_collapse", "validation_loss", "training_degradation"]
