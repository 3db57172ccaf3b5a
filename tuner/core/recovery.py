"""Recovery: a Decision's problems -> new hyperparameters, by documented rules refined by Optuna.

Design
------
The design document fixes *what* to change for each problem (halve the learning rate on a
gradient explosion, dropout + 0.1 on overfitting, batch_size // 2 on stagnation, ...). We read
each documented change as a *region* rather than a point (config.yaml
`training_recovery.actions`):

* ``scale: [lo, hi]``  new = old x f, f in [lo, hi] (log-uniform with ``log: true``),
  e.g. gradient explosion: learning_rate x [0.25, 0.5];
* ``shift: [lo, hi]``  new = old + d (dropout + 0.1);
* ``value: [lo, hi]``  new in [lo, hi] whatever the old value (gate_threshold in [0.3, 0.7]);
* ``set: V``           a flag (reset_attention, lr_restart);

then clamped to ``[min, max]`` and rounded down for integers (batch_size // 2, at least 8).

Where lo < hi an Optuna study picks the point: one study per sweep, TPE sampler, ask/tell API
with explicit distributions named ``<problem kind>.<hyperparameter>.<mode>`` (e.g.
``gradient_explosion.learning_rate.scale`` in [0.25, 0.5], log). Each recovery is one study
trial; `report_outcome(trial_id, value)` tells the study how the recovered trial then did (lower
is better, e.g. its validation.loss a few reports after recovery; divided by the loss of the
checkpoint rolled back to when `propose` got it as `baseline`), so later proposals concentrate
where earlier recoveries worked. TPE samples each named parameter from its own history, so problem
kinds learn separately and combined recoveries share what they have in common. Fixed changes
(lo == hi, flags) bypass Optuna. A trial that needs another recovery before its outcome was
reported tells the study its previous recovery failed (value +inf).

When several problems are present, their adjustments combine most severe first, and each
hyperparameter is changed once (by the first problem that adjusts it). Warnings only count
when nothing more severe is present.

Storage: None = in memory (tests, benchmarks); otherwise an Optuna RDB URL, by default
``sqlite:///<experiment>/recovery.db`` on one machine and PostgreSQL on clusters. The study is
opened with ``load_if_exists`` so a resumed sweep continues the same study. No Ray, no torch.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import TrialState

from tuner.core.config import Adjustment, SmartConfig
from tuner.contract import GENERATION_KEY, RECOVERY_DB, ActionKind
from tuner.core.rules import Problem

FLAGS = ("reset_attention", "lr_restart")


def storage_url(cfg: SmartConfig, experiment_dir: str | Path | None) -> str | None:
    """The recovery study's storage: `optuna.storage` if set, else SQLite in the experiment folder."""
    if cfg.optuna.storage:
        return cfg.optuna.storage
    if experiment_dir is None:
        return None
    return f"sqlite:///{Path(experiment_dir).resolve() / RECOVERY_DB}"


def param_name(kind: str, adjustment: Adjustment) -> str:
    """The Optuna parameter that picks `adjustment` for problem `kind`."""
    return f"{kind}.{adjustment.param}.{adjustment.mode}"


def answered(problems: Sequence[Problem]) -> list[Problem]:
    """The problems a recovery answers, of those that count (Decision.acting): warnings only when
    nothing more severe is present."""
    return [p for p in problems if p.severity != "warning"] or list(problems)


def plan(cfg: SmartConfig, problems: Sequence[Problem]) -> list[tuple[str, Adjustment]]:
    """(kind, adjustment) pairs for the `problems` a recovery answers: most severe first, one per
    hyperparameter."""
    out: list[tuple[str, Adjustment]] = []
    seen: set[str] = set()
    for problem in sorted(answered(problems), key=lambda p: -p.rank):
        for adjustment in cfg.training_recovery.actions.get(problem.kind, ()):
            if adjustment.param not in seen:
                seen.add(adjustment.param)
                out.append((problem.kind, adjustment))
    return out


def apply_adjustment(adjustment: Adjustment, old: Any, drawn: float | None = None) -> Any:
    """The new value of one hyperparameter. `drawn` is the factor/delta/value picked in the region
    (None = its lower end, which is the whole region when it is a point). Returns None when the
    old value is missing or not numeric and the adjustment has no default (left unchanged)."""
    if adjustment.mode == "set":
        return adjustment.value
    x = adjustment.low if drawn is None else float(drawn)
    if adjustment.mode == "value":
        new = x
    else:
        base = old if isinstance(old, (int, float)) and not isinstance(old, bool) else adjustment.default
        if base is None:
            return None
        if adjustment.mode == "scale" and base == 0 and adjustment.default is not None:
            base = adjustment.default
        new = base * x if adjustment.mode == "scale" else base + x
    if adjustment.min is not None:
        new = max(adjustment.min, new)
    if adjustment.max is not None:
        new = min(adjustment.max, new)
    return int(math.floor(new)) if adjustment.integer else round(float(new), 12)


def _distribution(adjustment: Adjustment) -> BaseDistribution:
    return FloatDistribution(adjustment.low, adjustment.high, log=adjustment.log)


class RecoveryPlanner:
    """Proposes recovered configs; an Optuna study (TPE, ask/tell) learns from told outcomes."""

    def __init__(self, cfg: SmartConfig, storage: str | None = None,
                 study_name: str | None = None, seed: int | None = None) -> None:
        self.cfg = cfg
        self.storage = storage
        self.study_name = study_name or cfg.optuna.study_name
        self.seed = cfg.optuna.seed if seed is None else seed
        self.pending: dict[str, int] = {}      # trial id -> Optuna trial number (asked, not told)
        self.baselines: dict[str, float] = {}  # trial id -> loss before its recovery (optional)
        self.study = self._open_study()

    def _open_study(self) -> optuna.Study:
        if self.storage and self.storage.startswith("sqlite:///"):
            Path(self.storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        sampler = optuna.samplers.TPESampler(seed=self.seed)
        return optuna.create_study(storage=self.storage, study_name=self.study_name, sampler=sampler,
                                   direction="minimize", load_if_exists=True)

    def propose(self, trial_id: str, config: Mapping[str, Any], problems: Sequence[Problem],
                action: ActionKind, baseline: float | None = None) -> dict[str, Any]:
        """The whole new config (a copy of `config`) with the adjustments for `problems`.

        Flags from an earlier recovery (reset_attention, lr_restart) are cleared first, so only
        this recovery's flags are on. A "restart" also raises `_restart_generation` by one.
        `baseline` (optional, > 0): the validation.loss of the checkpoint rolled back to; the
        outcome is then told relative to it (outcome / baseline), which compares recoveries of
        trials whose losses differ in scale.
        """
        trial_id = str(trial_id)
        if trial_id in self.pending:    # the previous recovery did not hold
            self._tell(self.pending.pop(trial_id), math.inf)
        self.baselines.pop(trial_id, None)
        if baseline is not None and math.isfinite(baseline) and baseline > 0:
            self.baselines[trial_id] = float(baseline)
        new = dict(config)
        for flag in FLAGS:
            if flag in new:
                new[flag] = False
        adjustments = plan(self.cfg, problems)
        space = {param_name(k, a): _distribution(a) for k, a in adjustments if a.sampled}
        drawn: dict[str, Any] = {}
        if space:
            trial = self.study.ask(space)
            self.pending[trial_id] = trial.number
            drawn = trial.params
        for kind, adjustment in adjustments:
            value = apply_adjustment(adjustment, config.get(adjustment.param),
                                     drawn.get(param_name(kind, adjustment)))
            if value is not None:
                new[adjustment.param] = value
        if action == "restart":
            new[GENERATION_KEY] = int(config.get(GENERATION_KEY, 0)) + 1
        return new

    def report_outcome(self, trial_id: str, value: float) -> None:
        """Tell the study how trial `trial_id` did after its last recovery (lower is better).

        NaN marks the recovery failed (Optuna's FAIL state); +inf is the worst value. With a
        baseline given to `propose`, the study is told value / baseline. A trial without a
        pending recovery is ignored.
        """
        number = self.pending.pop(str(trial_id), None)
        baseline = self.baselines.pop(str(trial_id), None)
        if number is not None:
            self._tell(number, float(value) / baseline if baseline else float(value))

    def _tell(self, number: int, value: float) -> None:
        try:
            if math.isnan(value):
                self.study.tell(number, state=TrialState.FAIL)
            else:
                self.study.tell(number, value)
        except ValueError:   # unknown or already finished trial (e.g. an in-memory study after restore)
            pass

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return {"storage": self.storage, "study_name": self.study_name, "seed": self.seed,
                "pending": dict(self.pending), "baselines": dict(self.baselines)}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        self.pending = {str(k): int(v) for k, v in d.get("pending", {}).items()}
        self.baselines = {str(k): float(v) for k, v in d.get("baselines", {}).items()}


__all__ = ["FLAGS", "RecoveryPlanner", "answered", "apply_adjustment", "param_name", "plan", "storage_url"]
