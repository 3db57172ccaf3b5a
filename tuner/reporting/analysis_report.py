"""Rendering of an ``Analysis`` (tuner/reporting/analysis.py): summary table, report.md and curve PNGs."""

from __future__ import annotations

import math
from pathlib import Path

from tuner.reporting.analysis import SUMMARY_METRICS, Analysis, TrialAnalysis
from tuner.contract import RECOVERY_ACTIONS, fmt_value

__all__ = ["summary_rows", "summary_table", "to_markdown", "write_report", "write_html", "ranked",
           "CURVE_METRICS"]

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
               if iv.get("action") in RECOVERY_ACTIONS]
    changes = [c for c in changes if isinstance(c, (int, float))]
    if changes:
        text += " -> " + fmt_value(float(changes[-1]))
    return text


def ranked(analysis: Analysis, metric: str = "validation.loss",
           mode: str = "min") -> list[TrialAnalysis]:
    """Trials by their final ``metric``, best first; trials without a finite value last."""
    def key(t: TrialAnalysis) -> tuple[int, float]:
        v = t.final.get(metric)
        if v is None or not math.isfinite(v):
            return (1, 0.0)
        return (0, v if mode == "min" else -v)

    return sorted(analysis.trials, key=key)


def summary_rows(analysis: Analysis, metric: str | None = None,
                 mode: str = "min") -> list[list[str]]:
    """Header + one row per trial: trial, lr, final metrics, steps, interventions, outcome.

    With ``metric``: ranked by it (best first) and the best trial marked ``*``."""
    header = ["trial", "learning_rate", *(_SHORT[m] for m in SUMMARY_METRICS), "validations",
              "interventions", "outcome"]
    rows = [header]
    trials = analysis.trials if metric is None else ranked(analysis, metric, mode)
    for i, t in enumerate(trials):
        best = metric is not None and i == 0 and metric in t.final and math.isfinite(t.final[metric])
        mark = "" if metric is None else "* " if best else "  "
        actions = [str(iv.get("action")) for iv in t.interventions]
        rows.append([
            mark + t.trial_id, _lr(t), *(fmt_value(t.final[m]) if m in t.final else "-" for m in SUMMARY_METRICS),
            fmt_value(t.final.get("validation.step", "-")),
            f"{len(actions)} ({', '.join(actions)})" if actions else "0", t.outcome,
        ])
    return rows


def summary_table(analysis: Analysis, metric: str | None = None, mode: str = "min") -> str:
    """The summary as aligned plain text (for the terminal); ranked when ``metric`` is given."""
    rows = summary_rows(analysis, metric, mode)
    if metric is not None:
        rows[0][0] = "  " + rows[0][0]
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
    early = [(t.trial_id, e) for t in analysis.trials for e in t.early]
    if early:
        parts += ["", "## Early, not acted on", "",
                  "Warnings, and problems seen while the guards (min_training_time, "
                  "min_validation_steps) hold recovery back; they produce no recommendation.", ""]
        parts += [f"- **{tid}**: {e}" for tid, e in early]
    parts += ["", "## Recommendations", ""]
    parts += [f"- {r}" for r in analysis.recommendations]
    if analysis.images:
        parts += ["", "## Curves", ""]
        parts += [f"![{p.stem}]({p.name})" for p in analysis.images]
    return "\n".join(parts) + "\n"


def write_curves(analysis: Analysis) -> list[Path]:
    """``curves_<metric>.png`` per metric, interventions marked, into the experiment folder."""
    from tuner.reporting.plots import fig_to_rgb, plot_metric_curves  # noqa: F401  (matplotlib Agg)

    paths = []
    for metric, (threshold, log_y) in CURVE_METRICS.items():
        curves = {t.trial_id: t.curves[metric] for t in analysis.trials if metric in t.curves}
        if not curves:
            continue
        markers = {t.trial_id: t.markers for t in analysis.trials}
        fig = plot_metric_curves(curves, metric, markers=markers, threshold=threshold, log_y=log_y,
                                 xlabel="training step (every report; a rollback steps back)")
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


def write_html(analysis: Analysis) -> Path:
    """``report.html`` beside report.md: the same report, self-contained (curves inline as PNG data
    URIs). Call after :func:`write_report` (it draws the curves)."""
    import base64
    import html

    if not analysis.images:
        analysis.images = write_curves(analysis)
    body = []
    for line in to_markdown(analysis).splitlines():
        if line.startswith("!["):
            continue
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("|---"):
            continue
        elif line.startswith("| "):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        elif line.strip():
            text = html.escape(line.strip().lstrip("- ")).replace("**", "")
            indent = len(line) - len(line.lstrip())
            body.append(f'<p style="margin-left:{indent + (1 if line.lstrip().startswith("-") else 0)}em">{text}</p>')
    out, table = [], False
    for chunk in body:  # wrap consecutive rows in one table
        if chunk.startswith("<tr>") and not table:
            out.append("<table>")
            table = True
        if not chunk.startswith("<tr>") and table:
            out.append("</table>")
            table = False
        out.append(chunk)
    if table:
        out.append("</table>")
    for path in analysis.images:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        out.append(f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">')
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse}td{border:1px solid #ccc;padding:2px 6px}"
             "tr:first-child{font-weight:bold}p{margin:.2em 0}")
    title = html.escape(analysis.experiment_dir.name)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Smart Tuner: {title}"
            f"</title><style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")
    path = analysis.experiment_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
