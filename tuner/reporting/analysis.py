"""Failure analysis of a finished (or dead) sweep folder: issues, recommendations, a summary table.

Reads what Ray Tune and Smart Tuner leave in the experiment folder ``<storage>/<name>``:
- each trial folder's ``result.json`` (one JSON result per line, oldest first), ``params.json``
  (the trial's initial config) and ``error.txt`` (when it crashed);
- ``interventions.jsonl`` (one Intervention per line, written by the Supervisor), or else the
  interventions kept in the scheduler's state journal ``smart_tuner_state.jsonl``;
and produces per-trial issues ("grad.norm 312.4 > 200.0 (critical) at validation 7; mutate:
learning_rate 0.003 -> 0.0012, rolled back to validation 5; recovered: validation.loss 0.81 at
validation 12"), sweep recommendations (the design document's remedies for each problem kind seen,
plus a narrower learning-rate range when explosions cluster above a learning rate), and a summary
table (trial, final metrics, interventions, outcome). ``write_report`` renders ``report.md`` and
curve PNGs (``curves_<metric>.png``) into the experiment folder (see tuner/reporting/analysis_report.py).

Problems that never triggered an intervention (e.g. under FIFO) are found by running
``tuner.core.rules.diagnose`` over each trial's history, result by result. A rollback makes
``validation.step`` go back; the history is split there so each segment is diagnosed on its own.
Findings the policy would not have acted on (warnings, and problems inside the guards
``min_training_time``/``min_validation_steps`` other than non-finite values and critical
grad.norm), and those recorded as ``held_back`` with an intervention, are listed separately as
"early, not acted on" and produce no recommendation. Curves use the training step as x axis.

NaN policy: NaN/Inf metrics are kept as they are; a trial whose last ``validation.loss`` is not
finite has outcome "diverged"; non-finite values never count as improvements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.reporting.analysis_io import ExperimentNotFoundError, TrialRecord, load_interventions, load_trials
from tuner.contract import RECOVERY_ACTIONS, SMART_CONFIG_FILE, fmt_value, numeric

__all__ = [
    "ExperimentNotFoundError",
    "TrialRecord",
    "TrialAnalysis",
    "Analysis",
    "load_trials",
    "load_interventions",
    "analyze",
    "RECOMMENDATIONS",
    "SUMMARY_METRICS",
]

SUMMARY_METRICS = ("validation.loss", "validation.attention_score", "validation.gate_accuracy",
                   "grad.norm")

# The design document's remedies, by problem kind.
RECOMMENDATIONS: dict[str, str] = {
    "gradient_explosion": "lower learning_rate (x0.5) and clip gradients (grad_clip_thresh 1-5); "
                          "check the data for NaN/Inf",
    "overfitting": "raise dropout (+0.1, max 0.5) and weight_decay, lower learning_rate (x0.5-0.8), "
                   "keep early stopping on, or add data",
    "stagnation": "restart the learning-rate schedule, halve batch_size (min 8), reshuffle the data",
    "attention_collapse": "raise guided_attention_weight, reset the attention layers, check that "
                          "texts match their audio",
    "gate_collapse": "raise gate_loss_weight / gate_pos_weight and adjust gate_threshold",
    "validation_loss": "restart from scratch with a lower learning_rate; check the validation data",
    "training_degradation": "roll back to the last healthy checkpoint and lower learning_rate",
}


@dataclass
class TrialAnalysis:
    """Findings for one trial."""

    trial_id: str
    config: dict[str, Any]  # the initial config (before any intervention)
    final: dict[str, float]
    reports: int
    interventions: list[dict[str, Any]]
    issues: list[str]
    problem_kinds: set[str] = field(default_factory=set)
    outcome: str = "finished"
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)  # x = step
    markers: list[tuple[float, str]] = field(default_factory=list)  # (training step, action)
    early: list[str] = field(default_factory=list)  # findings not acted on: no recommendation


@dataclass
class Analysis:
    """The whole sweep."""

    experiment_dir: Path
    trials: list[TrialAnalysis]
    recommendations: list[str]
    images: list[Path] = field(default_factory=list)


# ---- per trial -----------------------------------------------------------------------------------
def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _fmt(value: Any) -> str:
    v = _num(value)
    return fmt_value(value if v is None else v)


def _step_of(result: Mapping[str, Any], index: int) -> float:
    v = _num(result.get("validation.step"))
    if v is None:
        v = _num(result.get("training_iteration"))
    return v if v is not None else float(index + 1)


def split_segments(results: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Split a trial's results where ``validation.step`` goes back (a rollback or restart)."""
    segments: list[list[Mapping[str, Any]]] = []
    last = math.inf
    for i, r in enumerate(results):
        step = _step_of(r, i)
        if not segments or step <= last:
            segments.append([])
        segments[-1].append(r)
        last = step
    return segments


def _training_step(result: Mapping[str, Any], index: int) -> float:
    v = _num(result.get("training.step"))
    return v if v is not None else _step_of(result, index)


def _held_back(problem: Any, result: Mapping[str, Any], cfg: Any) -> bool:
    """True when the policy would not act on ``problem`` at ``result``: a warning, or inside the
    guards (``min_training_time`` by Ray's ``time_total_s``, ``min_validation_steps``) and not
    unambiguous (non-finite values and critical grad.norm are never held back)."""
    from tuner.core.policy import _unambiguous

    if problem.severity == "warning":
        return True
    rec = cfg.training_recovery
    elapsed = _num(result.get("time_total_s"))
    young = (elapsed is not None and elapsed < rec.min_training_time) or \
        _step_of(result, 0) < rec.min_validation_steps
    return young and not _unambiguous(problem)


def diagnose_trial(results: Sequence[Mapping[str, Any]], cfg: Any) -> list[tuple[Any, bool]]:
    """Each finding of ``tuner.core.rules.diagnose``, result by result, with whether the guards held it
    back.

    First occurrence of each (kind, severity, held back), in order of appearance: an attention
    collapse held back early and the same collapse after the guards are two findings. Results
    that miss a metric the rules need are skipped (the trial died before its first validation).
    """
    from tuner.core.history import MissingMetricError
    from tuner.core.rules import diagnose

    seen: dict[tuple[str, str, bool], Any] = {}
    for segment in split_segments(results):
        rows = [{k: v for k, v in r.items() if _num(v) is not None} for r in segment]
        for i in range(len(rows)):
            try:
                problems = diagnose(rows[: i + 1], cfg)
            except MissingMetricError:
                continue
            for p in problems:
                held = _held_back(p, segment[i], cfg)
                seen.setdefault((p.kind, p.severity, held), (p, held))
    return list(seen.values())


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    parts = []
    for key in sorted(set(old) | set(new)):
        if key.startswith("_") or old.get(key) == new.get(key):
            continue
        parts.append(f"{key} {_fmt(old.get(key, 'default'))} -> {_fmt(new.get(key, 'default'))}")
    return ", ".join(parts) or "no hyperparameter change"


def _after(results: Sequence[Mapping[str, Any]], when: float | None) -> list[Mapping[str, Any]]:
    """Results reported after wall time ``when`` (Ray's ``timestamp``, whole seconds)."""
    if when is None:
        return []
    return [r for r in results if (_num(r.get("timestamp")) or 0.0) > when]


def _finite(v: Any) -> bool:
    x = _num(v)
    return x is not None and math.isfinite(x)


def _intervention_issue(iv: Mapping[str, Any], later: Sequence[Mapping[str, Any]],
                        is_last: bool) -> str:
    problems = iv.get("problems") or []
    what = "; ".join(str(p.get("message", p.get("kind", "?"))) for p in problems) or \
        "; ".join(str(r) for r in iv.get("reasons") or []) or "no problem recorded"
    action = str(iv.get("action", "?"))
    text = f"{what}; {action}"
    if action in RECOVERY_ACTIONS:
        text += f": {_changes(iv.get('old_config') or {}, iv.get('new_config') or {})}"
        back = iv.get("rolled_back_to")
        text += f", rolled back to validation {back}" if back is not None else ", from scratch"
        if is_last:
            finite = [r for r in later if _finite(r.get("validation.loss"))]
            if later and finite and _finite(later[-1].get("validation.loss")):
                last = later[-1]
                text += (f"; recovered: validation.loss {_fmt(last['validation.loss'])} at "
                         f"validation {_fmt(_step_of(last, 0))}")
            elif later:
                text += "; did not recover"
    elif action == "stop":
        reasons = "; ".join(str(r) for r in iv.get("reasons") or [])
        text += f" ({reasons})" if reasons else ""
    return text


def analyze_trial(record: TrialRecord, interventions: Sequence[Mapping[str, Any]],
                  cfg: Any | None) -> TrialAnalysis:
    """Issues, outcome and curves of one trial."""
    ivs = [iv for iv in interventions if str(iv.get("trial_id")) == record.trial_id]
    last = record.results[-1] if record.results else {}
    final = {k: v for k, v in numeric(last).items()
             if k in SUMMARY_METRICS or k in ("validation.step", "training.loss")}
    issues: list[str] = []
    kinds: set[str] = set()
    early: list[str] = []
    for i, iv in enumerate(ivs):
        later = _after(record.results, _num(iv.get("time")))
        issues.append(_intervention_issue(iv, later, is_last=i == len(ivs) - 1))
        kinds.update(str(p.get("kind")) for p in iv.get("problems") or [] if p.get("kind"))
        early += [f"{p.get('message', p.get('kind'))} (seen with the {iv.get('action')}, not acted on)"
                  for p in iv.get("held_back") or []]
    acted_kinds = set(kinds)
    if cfg is not None and record.results:
        for p, held in diagnose_trial(record.results, cfg):
            if p.kind in acted_kinds and not held:
                continue
            if held:
                early.append(f"{p.message} (early, not acted on)")
            else:
                kinds.add(p.kind)
                issues.append(f"{p.message} (no intervention)")
    if record.error:
        first = record.error.splitlines()[-1] if record.error.splitlines() else record.error
        issues.append(f"{'retried after' if _survived(record, ivs) else 'crashed'}: {first[:200]}")
    outcome = _outcome(record, ivs, final)
    # Curves against the training step, every report in arrival order (the one that triggered a
    # rollback included): a rollback or restart shows as the line stepping back.
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for metric in SUMMARY_METRICS:
        pts = [(_training_step(r, i), float(r[metric])) for i, r in enumerate(record.results)
               if _num(r.get(metric)) is not None]
        if pts:
            curves[metric] = ([p[0] for p in pts], [p[1] for p in pts])
    markers = [(_trigger_step(record.results, iv), str(iv.get("action"))) for iv in ivs]
    # Ray rewrites params.json when the scheduler replaces a config: the trial's initial
    # hyperparameters are the first intervention's old ones.
    config = {**record.config, **(ivs[0].get("old_config") or {})} if ivs else dict(record.config)
    return TrialAnalysis(record.trial_id, config, final, len(record.results), list(ivs),
                         issues, kinds, outcome, curves, markers, list(dict.fromkeys(early)))


def _trigger_step(results: Sequence[Mapping[str, Any]], iv: Mapping[str, Any]) -> float:
    """The training step of the report that triggered ``iv``: the last report before it with its
    validation step (reports are written before the intervention)."""
    before = results[: max(0, len(results) - len(_after(results, _num(iv.get("time")))))]
    for i in range(len(before) - 1, -1, -1):
        if _num(before[i].get("validation.step")) == _num(iv.get("step")):
            return _training_step(before[i], i)
    return _training_step(before[-1], len(before) - 1) if before else float(iv.get("step") or 0)


def _outcome(record: TrialRecord, ivs: Sequence[Mapping[str, Any]],
             final: Mapping[str, float]) -> str:
    if record.error and not record.results:
        return "crashed"
    if ivs and ivs[-1].get("action") == "stop":
        return "stopped"
    if "validation.loss" in final and not math.isfinite(final["validation.loss"]):
        return "diverged"
    if record.error and not _survived(record, ivs):
        return "crashed"
    if any(iv.get("action") in RECOVERY_ACTIONS for iv in ivs):
        return "recovered"
    return "finished"


def _survived(record: TrialRecord, ivs: Sequence[Mapping[str, Any]]) -> bool:
    """error.txt exists, but every failure in it ("Failure # N") was retried (a "retry" or
    "resume" intervention) and results came after the last retry: the trial went on."""
    retries = [iv for iv in ivs if iv.get("action") in ("retry", "resume")]
    failures = max(1, (record.error or "").count("Failure #"))
    return len(retries) >= failures and bool(_after(record.results, _num(retries[-1].get("time"))))


# ---- sweep ---------------------------------------------------------------------------------------
def _recommendations(trials: Sequence[TrialAnalysis]) -> list[str]:
    recs: list[str] = []
    for kind, remedy in RECOMMENDATIONS.items():
        hit = [t.trial_id for t in trials if kind in t.problem_kinds]
        if hit:
            recs.append(f"{kind.replace('_', ' ')} in {len(hit)} trial(s) "
                        f"({', '.join(hit[:5])}{', ...' if len(hit) > 5 else ''}): {remedy}")
    exploded = [_num(t.config.get("learning_rate")) for t in trials
                if "gradient_explosion" in t.problem_kinds or t.outcome == "diverged"]
    healthy = [_num(t.config.get("learning_rate")) for t in trials
               if "gradient_explosion" not in t.problem_kinds and t.outcome != "diverged"]
    exploded = [x for x in exploded if x is not None]
    healthy = [x for x in healthy if x is not None]
    if exploded and not healthy:
        recs.append(f"learning_rate: every trial exploded, the lowest starting at "
                    f"{min(exploded):.3g}; move the search range below {min(exploded):.3g}")
    if exploded and healthy and min(exploded) > max(healthy):
        recs.append(f"learning_rate: every trial starting at >= {min(exploded):.3g} exploded and "
                    f"none at <= {max(healthy):.3g}; narrow the search range to "
                    f"<= {max(healthy):.3g}")
    stopped = [t.trial_id for t in trials if t.outcome == "stopped"]
    if stopped:
        recs.append(f"{len(stopped)} trial(s) stopped ({', '.join(stopped[:5])}): see their "
                    "issues; raise training_recovery.max_recoveries_per_trial only if recoveries "
                    "were helping")
    crashed = [t.trial_id for t in trials if t.outcome == "crashed"]
    if crashed:
        recs.append(f"{len(crashed)} trial(s) crashed ({', '.join(crashed[:5])}): read error.txt "
                    "in their folders; out of memory -> lower batch_size")
    if not recs:
        recs.append("no failures found: widen the search ranges or train longer")
    return recs


def analyze(experiment_dir: str | Path, cfg: Any | None = None, diagnose: bool = True) -> Analysis:
    """Analyse a sweep folder. ``cfg``: the SmartConfig (default: packaged defaults)."""
    exp = Path(experiment_dir)
    records = load_trials(exp)
    interventions = load_interventions(exp)
    if diagnose and cfg is None:
        from tuner.core.config import load_config

        saved = exp / SMART_CONFIG_FILE
        cfg = load_config(saved if saved.is_file() else None)
    trials = [analyze_trial(r, interventions, cfg if diagnose else None) for r in records]
    return Analysis(exp, trials, _recommendations(trials))
