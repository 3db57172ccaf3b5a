"""Report of the sweep benchmark: the best-so-far plot and the sweep section of BENCHMARKS.md.

``write_section`` replaces only the text between ``<!-- sweep:begin -->`` and
``<!-- sweep:end -->``; everything else in BENCHMARKS.md (other engineers' sections) is kept
byte for byte. Hand-written analysis (why a goal is missed, calibration notes) lives in
benchmarks/report_notes.md and is included verbatim.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
NOTES = Path(__file__).parent / "report_notes.md"
RESULTS = Path(__file__).parent / "results"
BEGIN, END = "<!-- sweep:begin -->", "<!-- sweep:end -->"
ORDER = ("fifo", "fifo_nan_stop", "asha", "pbt", "smart")


def json_safe(x: Any) -> Any:
    """JSON-safe: non-finite floats -> None, tuples -> lists."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


class ReportError(ValueError):
    """BENCHMARKS.md lacks the sweep markers."""


def plot(doc: Mapping[str, Any], path: str | Path) -> None:
    """best-so-far validation.loss (median over seeds) against compute, one line per scheduler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for name in ORDER:
        s = doc.get(name)
        if not isinstance(s, dict) or "best_so_far" not in s:
            continue
        pts = [(c, v) for c, v in s["best_so_far"] if v is not None]
        if pts:
            ax.plot([c for c, _ in pts], [v for _, v in pts], label=name, lw=2 if name == "smart" else 1.3)
    ax.axhline(doc["scenario"]["target"], color="grey", ls=":", lw=1, label="target")
    ax.set_xlabel("compute (trial-reports summed over trials)")
    ax.set_ylabel("best validation.loss so far (median over seeds)")
    ax.set_yscale("log")
    ax.set_title(f"scenario {doc['scenario']['name']}: {len(doc['seeds'])} seeds x {doc['scenario']['trials']} trials")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _f(x: Any, fmt: str = "{:.3g}") -> str:
    return "n/a" if x is None else fmt.format(x)


def _ci(ci: Any) -> str:
    return "" if not ci else f" [{ci[0]:.2f}, {ci[1]:.2f}]"


def _row(name: str, s: Mapping[str, Any], n_seeds: int) -> str:
    if "error" in s:
        return f"| {name} | not run: {s['error']} |" + " |" * 8
    rate = s.get("faults_recovered_rate")
    return (
        f"| {name} | {_f(s['compute_to_target'], '{:.0f}')} ({s['target_reached_seeds']}/{n_seeds}) "
        f"| {_f(s.get('compute_to_target_vs_fifo'), '{:.2f}x')} "
        f"| {_f(s['best_loss_at_budget'], '{:.4f}')} "
        f"| {s['faults_recovered']}/{s['recoverable_faults_injected']} = {_f(rate, '{:.0%}')}{_ci(s.get('faults_recovered_wilson95'))} "
        f"| {s['unrecoverable_faults_stopped']}/{s['unrecoverable_faults_injected']} "
        f"| {s['false_positive_interventions']} on {s['healthy_trials_intervened']}/{s['healthy_trials']} trials{_ci(s.get('healthy_trials_intervened_wilson95'))} "
        f"| {_f(s['detection_latency_reports'], '{:.1f}')} / {_f(s['detection_latency_explosion_reports'], '{:.1f}')} "
        f"| {_f(s['overhead_us_p50'], '{:.1f}')} / {_f(s['overhead_us_p99'], '{:.0f}')} |"
    )


def _seed_range(seeds: Any) -> str:
    """[0, 1, 2, 7, 8] -> "0-2, 7-8"."""
    if not seeds:
        return "none"
    parts, start, prev = [], seeds[0], seeds[0]
    for x in list(seeds[1:]) + [None]:
        if x is not None and x == prev + 1:
            prev = x
            continue
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
        if x is not None:
            start = prev = x
    return ", ".join(parts)


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _user_row(name: str, s: Mapping[str, Any]) -> str:
    if "error" in s:
        return f"| {name} | not run: {s['error']} |" + " |" * 8
    fu = s["faulty_usable"]
    return (f"| {name} | {_f(s['compute_lost_share'], '{:.3f}')} | {s['usable_models']} ({_f(s['usable_per_100_reports'], '{:.2f}')}) "
            f"| {fu['usable']}/{fu['faulty']} = {_pct(fu['rate'])}{_ci(fu.get('wilson95'))} ({fu['usable_without_fault']} without the fault) "
            f"| {s['healthy_interventions']} on {s['healthy_interventions_trials']}/{s['usable_unscheduled_trials']} "
            f"| {s['healthy_pruned']} | {_f(s['compute_to_first_usable'], '{:.0f}')} | {_f(s['regret'], '{:.4f}')} "
            f"| {_f(s.get('compute_to_target'), '{:.0f}')} | {s['trials_started']} |")


USER_HEAD = ["| scheduler | compute lost share | usable models (per 100 reports) | faulty trials usable [Wilson 95%] "
             "| healthy interventions on trials [of usable-unscheduled] | healthy pruned (ASHA/PBT) | compute to first usable "
             "| regret | compute to target | trials started |", "|---|---|---|---|---|---|---|---|---|---|"]


def goal_checks(src: Mapping[str, Any], faulty_goal: float = 0.9, regret_half: bool = True) -> list[tuple[str, str, bool | None]]:
    """Issue-8 goals against one scenario's summaries: (goal, measured, met; None = not judgeable)."""
    sm, fifo, asha = src.get("smart", {}), src.get("fifo", {}), src.get("asha", {})
    if not sm or "error" in sm or not fifo or "error" in fifo:
        return [("all goals", "Smart Tuner or FIFO did not run", None)]
    base = [n for n in ORDER if n != "smart" and isinstance(src.get(n), dict) and "error" not in src[n]]
    lost, lost_f, lost_a = sm["compute_lost_share"], fifo["compute_lost_share"], asha.get("compute_lost_share")
    fu = sm["faulty_usable"]
    c, cf, ca = sm["compute_to_first_usable"], fifo["compute_to_first_usable"], asha.get("compute_to_first_usable")
    inf = float("inf")
    reg = {n: src[n]["regret"] for n in base + ["smart"]}
    rows: list[tuple[str, str, bool | None]] = [
        ("compute_lost_share <= 0.3x FIFO's", f"{_f(lost, '{:.3f}')} vs FIFO {_f(lost_f, '{:.3f}')} "
         f"({_f(lost / lost_f if lost is not None and lost_f else None, '{:.2f}x')})",
         None if lost is None or lost_f is None else lost <= 0.3 * lost_f),
        ("compute_lost_share <= ASHA's", f"{_f(lost, '{:.3f}')} vs ASHA {_f(lost_a, '{:.3f}')}",
         None if lost is None or lost_a is None else lost <= lost_a),
        (f">= {faulty_goal:.0%} of faulty trials end usable (FIFO: {fifo['faulty_usable']['usable']}/{fifo['faulty_usable']['faulty']})",
         f"{fu['usable']}/{fu['faulty']} = {_pct(fu['rate'])}{_ci(fu.get('wilson95'))}",
         None if fu["rate"] is None else fu["rate"] >= faulty_goal),
        ("0 healthy_interventions", str(sm["healthy_interventions"]), sm["healthy_interventions"] == 0),
        ("compute_to_first_usable <= FIFO's and ASHA's", f"{_f(c, '{:.0f}')} vs FIFO {_f(cf, '{:.0f}')}, ASHA {_f(ca, '{:.0f}')}",
         None if c is None and cf is None and ca is None
         else (c if c is not None else inf) <= min(cf if cf is not None else inf, ca if ca is not None else inf)),
        ("regret <= every baseline's", f"{_f(reg['smart'], '{:.4f}')} vs " + ", ".join(f"{n} {_f(reg[n], '{:.4f}')}" for n in base),
         None if reg["smart"] is None else all(reg[n] is None or reg["smart"] <= reg[n] for n in base)),
    ]
    if regret_half:
        rows.append(("regret <= half FIFO's", f"{_f(reg['smart'], '{:.4f}')} vs FIFO/2 {_f(None if reg['fifo'] is None else reg['fifo'] / 2, '{:.4f}')}",
                     None if reg["smart"] is None or reg["fifo"] is None else reg["smart"] <= reg["fifo"] / 2))
    return rows


def goals_table(src: Mapping[str, Any], **kw: Any) -> list[str]:
    out = ["| goal | measured | met |", "|---|---|---|"]
    return out + [f"| {g} | {m} | {'n/a' if ok is None else ('yes' if ok else '**no**')} |" for g, m, ok in goal_checks(src, **kw)]


def _family(doc: Mapping[str, Any]) -> list[str]:
    fam = doc.get("family", {})
    if len(fam) < 2:
        return []
    out = ["", "The rest of the scenario family (tier 1a; every scenario fixed before the comparison; evaluation seeds):", ""]
    for name, entry in fam.items():
        if name == doc["scenario"]["name"]:
            continue
        seeds = entry.get("seeds", [])
        out += [f"`{entry['path']}` ({entry['fault_rate']:.0%} faulty trials, seeds {seeds[0]}-{seeds[-1]} ({len(seeds)})):", ""]
        out += USER_HEAD + [_user_row(n, entry[n]) for n in ORDER if n in entry]
        met = goal_checks(entry)
        out += ["", "Goals met here: " + "; ".join(f"{g}: {'n/a' if ok is None else ('yes' if ok else 'no')}" for g, _, ok in met), ""]
    return out


def _overhead(doc: Mapping[str, Any]) -> list[str]:
    over = doc.get("overhead", {})
    sizes = ("1", "100", "1000")
    out = ["| scheduler | " + " | ".join(f"{n} trials p50 / p99 (us)" for n in sizes) + " |", "|---" * 4 + "|"]
    for name, cells in over.items():
        if "error" in cells:
            out.append(f"| {name} | {cells['error']} | | |")
            continue
        out.append(f"| {name} | " + " | ".join(
            f"{_f(cells[n]['p50'], '{:.1f}')} / {_f(cells[n]['p99'], '{:.0f}')}" for n in sizes if n in cells) + " |")
    return out


def _faults(s: Mapping[str, Any]) -> list[str]:
    out = ["| fault | injected | recovered | acted on | stopped | median latency (reports) |", "|---|---|---|---|---|---|"]
    for kind, k in s.get("by_fault", {}).items():
        out.append(f"| {kind} | {k['injected']} | {k['recovered']} | {k['acted_on']} | {k['stopped']} "
                   f"| {_f(k['detection_latency_reports'], '{:.1f}')} |")
    return out


def _tier1b_rows(src: Mapping[str, Any]) -> list[str]:
    rows = []
    for name in ORDER:
        s = src.get(name)
        if not isinstance(s, dict):
            continue
        if "error" in s:
            rows.append(f"| {name} | not run: {s['error']} | | | | | | | | | |")
            continue
        fu = s.get("faulty_usable") or {}
        rows.append(f"| {name} | {_f(s.get('compute_lost_share'), '{:.3f}')} | {fu.get('usable', 'n/a')}/{fu.get('faulty', 'n/a')} "
                    f"| {s.get('healthy_interventions', 'n/a')} | {s.get('healthy_pruned', 'n/a')} | {_f(s.get('regret'), '{:.4f}')} "
                    f"| {_f(s.get('compute_to_target'), '{:.0f}')} | {_f(s.get('best_loss_at_budget'), '{:.3f}')} "
                    f"| {s.get('faults_recovered')}/{s.get('recoverable_faults_injected')} "
                    f"| {s.get('unrecoverable_faults_stopped')}/{s.get('unrecoverable_faults_injected')} "
                    f"| {_f(s.get('detection_latency_explosion_reports'), '{:.1f}')} |")
    return rows


def _tier1b(doc: Mapping[str, Any]) -> list[str]:
    """Tier 1b table: from this run, or from the last recorded scenarios/ray_tune.yaml run."""
    src: Mapping[str, Any] = doc
    if not doc.get("tier1b_ray_tune"):
        path = RESULTS / "ray_tune" / "sweep.json"
        if not path.exists():
            return ["", "Tier 1b (real Ray Tune): not run yet (`python -m benchmarks.sweep --scenario "
                    "benchmarks/scenarios/ray_tune.yaml --out benchmarks/results/ray_tune --no-report`)."]
        src = json.loads(path.read_text())
    t1b = src["tier1b_ray_tune"]
    sc = src["scenario"]
    head = ["| scheduler | compute lost share | faulty usable | healthy interventions | healthy pruned | regret "
            "| compute to target | best loss at budget | recoverable recovered | unrecoverable stopped | explosion latency |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    return ["", f"Tier 1b: the same kind of population through REAL Ray Tune (scenario `{sc['path']}`: {sc['trials']} trials x "
            f"{sc['max_reports']} reports, budget {sc['budget']}, target {sc['target']}; seeds {t1b.get('seeds')}; "
            f"{t1b.get('elapsed_s')} s; actions inferred from each trial's report log, see benchmarks/ray_tier.py; "
            f"raw: benchmarks/results/ray_tune/sweep.json):", ""] + head + _tier1b_rows(t1b) + [
            "", f"The same scenario through the hook harness (tier 1a, seeds {src['seeds']}), for comparison:", ""] + head + _tier1b_rows(src)


def _calibration(doc: Mapping[str, Any]) -> list[str]:
    """Calibration paragraph: the constants used and the fit's notes (calibration/fit.json)."""
    c = doc.get("calibration", {})
    out = ["", f"Calibration of the surrogate ({c.get('source', 'unknown')}; `python -m benchmarks.probes.record_real fit`; "
           "recorded reports in `benchmarks/calibration/current_defaults/`; superseded recordings in `old_defaults/` "
           "(earlier train_tts defaults) and `old_gate_metric/` (gate accuracy 0.0 before the first stop)): "
           f"validation.loss {c.get('loss0', 0):.2f} -> floor {c.get('floor', 0):.3f}, decay {c.get('rate', 0):.3f} e-folds per "
           f"50-step report at lr {c.get('lr_ref')} (lr exponent {c.get('lr_exponent', 0):.2f}), relative noise "
           f"{c.get('noise', 0):.3f}, grad.norm {c.get('grad0', 0):.1f} -> x{c.get('grad_tail', 0):.2f}, attention score "
           f"{c.get('attn_min', 0):.3f} rising at {c.get('attn_onset', 0):.2f} e-folds (width {c.get('attn_width', 0):.2f}) "
           f"to {c.get('attn_max', 0):.2f}, gate accuracy {c.get('gate_min', 0):.2f} rising at {c.get('gate_onset', 0):.2f} e-folds "
           f"to {c.get('gate_max', 0):.2f}."]
    fit = Path(__file__).parent / "calibration" / "fit.json"
    if fit.exists():
        out += [""] + [f"- {n}" for n in json.loads(fit.read_text()).get("notes", [])]
    return out


def section(doc: Mapping[str, Any]) -> str:
    """Markdown of the sweep section (without the markers)."""
    sc = doc["scenario"]
    n = len(doc["seeds"])
    faults = ", ".join(f"{f['kind']} {f['rate']:.0%} (onset reports {f['onset'][0]}-{f['onset'][1]}"
                       f"{', highest learning rates' if f['select'] == 'highest_learning_rate' else ''})" for f in sc["faults"])
    lines = [
        "## Fault-injected sweep: Smart Tuner against FIFO, ASHA and PBT",
        "",
        f"Command: `{doc.get('command', 'python -m benchmarks.sweep --scenario ' + sc['path'])}` (`make bench`); "
        f"this run took {doc.get('elapsed_s', '?')} s on the 2-core machine. Raw figures: "
        "`benchmarks/results/sweep.json`; Smart Tuner's interventions: `benchmarks/results/smart_interventions.log`.",
        "",
        f"Scenario `{sc['path']}` (fixed before the comparison): every scheduler draws trials from the same seeded stream of "
        f"configs until the budget is spent; evaluation seeds {doc['seeds'][0]}-{doc['seeds'][-1]} ({n}; development seeds "
        f"{_seed_range(sc.get('development_seeds'))} are never reported), "
        f"at most {sc['max_concurrent']} running at once, {sc['max_reports']} validation reports per trial, budget {sc['budget']} "
        f"trial-reports, target validation.loss <= {sc['target']}. Faults ({sum(f['rate'] for f in sc['faults']):.0%} of trials): {faults}. "
        "Each faulty trial draws its own cure thresholds (benchmarks/faults.py `CURE_RANGES`); ASHA: "
        f"{dict(sc['asha'])}, max_t {sc['max_reports']}; PBT: {dict(sc['pbt'])}, population = the {sc['max_concurrent']} slots "
        "(reasons in the scenario file).",
        "Compute unit: one trial-report = one validation interval of one trial "
        f"({sc['steps_per_report']} training steps); re-trained reports after a rollback count again.",
        "",
        "Tier 1a (surrogate trials through the real scheduler objects' hooks, all seeds): what a sweep user loses "
        "(definitions: benchmarks/metrics.py; \"usable\": benchmarks/usable.py):",
        "",
    ] + USER_HEAD + [_user_row(name, doc[name]) for name in ORDER if name in doc and isinstance(doc[name], dict)] + [
        "",
        "Goals (issue 8) against tier 1a, headline scenario:",
        "",
    ] + goals_table(doc) + [
        "",
        "Earlier figures of the same runs (issue 4 keys):",
        "",
        "| scheduler | compute to target, median (seeds reached) | vs FIFO | best loss at budget | recoverable faults recovered [Wilson 95%] "
        "| unrecoverable stopped | interventions on healthy trials [trials, Wilson 95%] | detection latency all / explosion (reports) "
        "| overhead p50 / p99 (us, 1,000 trials) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(name, doc[name], n) for name in ORDER if name in doc]
    lines += ["", "![best so far](benchmarks/results/best_so_far.png)"]
    lines += _family(doc)
    if "smart" in doc and "by_fault" in doc["smart"]:
        lines += ["", "Smart Tuner per fault kind (tier 1a, all seeds):", ""] + _faults(doc["smart"])
    lines += _calibration(doc)
    lines += ["", "Decision overhead per result (`python -m benchmarks.overhead`, same run):", ""] + _overhead(doc)
    lines += _tier1b(doc)
    t2 = doc.get("tier2_real")
    if t2:
        lines += ["", "Tier 2 (real tiny-Tacotron2 trials on CPU, `python -m benchmarks.sweep ... --real`; the last "
                  "recorded run, `benchmarks/results/tier2_real.json`, not rerun by `make bench`; superseded by "
                  "`make bench-real`, section \"Real sweep\"):", "", t2.get("markdown", str(t2))]
    if NOTES.exists():
        lines += ["", NOTES.read_text().strip()]
    return "\n".join(lines) + "\n"


def write_section(doc: Mapping[str, Any], path: str | Path | None = None) -> None:
    """Replace only the text between the sweep markers of ``path`` (default BENCHMARKS.md)."""
    p = Path(path) if path is not None else BENCHMARKS_MD
    text = p.read_text()
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        raise ReportError(f"{p}: markers {BEGIN} ... {END} not found; restore them around the sweep section")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    p.write_text(head + BEGIN + "\n" + section(doc) + END + tail)
