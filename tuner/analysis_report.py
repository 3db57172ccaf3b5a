"""Rendering of an ``Analysis`` (tuner/analysis.py): summary table, report.md and curve PNGs."""

from __future__ import annotations

from pathlib import Path

from tuner.analysis import SUMMARY_METRICS, Analysis, TrialAnalysis
from tuner.contract import fmt_value

__all__ = ["summary_rows", "summary_table", "to_markdown", "write_report", "CURVE_METRICS"]

# metric -> (threshold line from the default rules, symlog y axis)
CURVE_METRICS: dict[str, tuple[float | None, bool]] = {
    "validation.loss": (None, False),
    "grad.norm": (200.0, True),
    "validation.attention_score": (0.3, False),
    "validation.gate_accuracy": (0.4, False),
}
_SHORT = {"validation.loss": "val.loss", "validation.attention_score": "attn",
          "validation.gate_accuracy": "gate.acc", "grad.norm": "grad.norm"}


def _lr(t: TrialAnalysis) -> str:
    start = t.config.get("learning_rate")
    text = fmt_value(float(start)) if isinstance(start, (int, float)) else "-"
    changes = [iv.get("new_config", {}).get("learning_rate") for iv in t.interventions
               if iv.get("action") in ("mutate", "restart")]
    changes = [c for c in changes if isinstance(c, (int, float))]
    if changes:
        text += " -> " + fmt_value(float(changes[-1]))
    return text


def summary_rows(analysis: Analysis) -> list[list[str]]:
    """Header + one row per trial: trial, lr, final metrics, steps, interventions, outcome."""
    header = ["trial", "learning_rate", *(_SHORT[m] for m in SUMMARY_METRICS), "validations",
              "interventions", "outcome"]
    rows = [header]
    for t in analysis.trials:
        actions = [str(iv.get("action")) for iv in t.interventions]
        rows.append([
            t.trial_id, _lr(t), *(fmt_value(t.final[m]) if m in t.final else "-" for m in SUMMARY_METRICS),
            fmt_value(t.final.get("validation.step", "-")),
            f"{len(actions)} ({', '.join(actions)})" if actions else "0", t.outcome,
        ])
    return rows


def summary_table(analysis: Analysis) -> str:
    """The summary as aligned plain text (for the terminal)."""
    rows = summary_rows(analysis)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _markdown_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows[1:]]
    return "\n".join(out)


def to_markdown(analysis: Analysis) -> str:
    """The whole report as Markdown: summary, issues per trial, recommendations, curves."""
    n_iv = sum(len(t.interventions) for t in analysis.trials)
    outcomes: dict[str, int] = {}
    for t in analysis.trials:
        outcomes[t.outcome] = outcomes.get(t.outcome, 0) + 1
    parts = [
        f"# Smart Tuner failure analysis: {analysis.experiment_dir.name}",
        "",
        f"{len(analysis.trials)} trials, {n_iv} interventions; outcomes: "
        + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())),
        "",
        "## Summary",
        "",
        _markdown_table(summary_rows(analysis)),
        "",
        "## Issues",
        "",
    ]
    any_issue = False
    for t in analysis.trials:
        if t.issues:
            any_issue = True
            parts.append(f"- **{t.trial_id}** ({t.outcome})")
            parts += [f"  - {issue}" for issue in t.issues]
    if not any_issue:
        parts.append("No issues found.")
    parts += ["", "## Recommendations", ""]
    parts += [f"- {r}" for r in analysis.recommendations]
    if analysis.images:
        parts += ["", "## Curves", ""]
        parts += [f"![{p.stem}]({p.name})" for p in analysis.images]
    return "\n".join(parts) + "\n"


def write_curves(analysis: Analysis) -> list[Path]:
    """``curves_<metric>.png`` per metric, interventions marked, into the experiment folder."""
    from tuner.plots import fig_to_rgb, plot_metric_curves  # noqa: F401  (matplotlib Agg)

    paths = []
    for metric, (threshold, log_y) in CURVE_METRICS.items():
        curves = {t.trial_id: t.curves[metric] for t in analysis.trials if metric in t.curves}
        if not curves:
            continue
        markers = {t.trial_id: t.markers for t in analysis.trials}
        fig = plot_metric_curves(curves, metric, markers=markers, threshold=threshold, log_y=log_y,
                                 xlabel="report # (every validation, rolled-back ones included)")
        path = analysis.experiment_dir / f"curves_{metric.replace('.', '_')}.png"
        fig.savefig(path, dpi=100)
        import matplotlib.pyplot as plt

        plt.close(fig)
        paths.append(path)
    return paths


def write_report(analysis: Analysis) -> Path:
    """Write curve PNGs and ``report.md`` into the experiment folder; returns report.md's path."""
    analysis.images = write_curves(analysis)
    path = analysis.experiment_dir / "report.md"
    path.write_text(to_markdown(analysis))
    return path
