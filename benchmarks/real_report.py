"""BENCHMARKS.md section of the real sweep (``<!-- real-sweep:begin -->`` ... ``<!-- real-sweep:end -->``).

    python -m benchmarks.real_report [benchmarks/results/real_sweep.json]

Only the text between the markers is replaced (they are added at the end of BENCHMARKS.md when
missing); hand-written notes come from benchmarks/real_report_notes.md when it exists.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Mapping

from benchmarks.report import BENCHMARKS_MD, _ci, _f, _pct, goals_table

BEGIN, END = "<!-- real-sweep:begin -->", "<!-- real-sweep:end -->"
RESULTS = Path(__file__).parent / "results" / "real_sweep.json"
NOTES = Path(__file__).parent / "real_report_notes.md"
ORDER = ("fifo", "asha", "smart")
INJECTED = ("transient", "spike")   # the injected-fault variants, the one the goals judge first
RETIRED = ("Retired: its spike lasts while the trial's learning_rate is above 0.75x the original, which only "
           "Smart Tuner lowers, so only Smart Tuner can end it (a cure that is the product's own adjustment); "
           "variant `transient` replaces it.")


def _label(doc: Mapping[str, Any], variant: str) -> str:
    """What a variant injects, in one parenthesis."""
    if variant == "transient":
        i = doc.get("transient_inject") or {}
        start, n = i.get("lr_spike_at_step"), i.get("lr_spike_steps")
        window = f", steps {start:.0f}-{start + n - 1:.0f} at x{i.get('lr_spike_factor', 0):g}" if start and n else ""
        return (f"(every trial gets the one-shot learning-rate spike of tuner/training/faults.py{window}; its end "
                "depends on no hyperparameter)")
    if variant == "spike":
        return "(retired; every trial gets the learning-rate spike of benchmarks/real_faults.py)"
    return "(no injected fault)"


def _row(name: str, s: Mapping[str, Any]) -> str:
    fu = s["faulty_usable"]
    return (f"| {name} | {s['compute_steps']} | {_f(s['compute_lost_share'], '{:.3f}')} | {s['usable_models']} "
            f"({_f(s['usable_per_100_reports'], '{:.1f}')}) | {fu['usable']}/{fu['faulty']} = {_pct(fu.get('rate'))}{_ci(fu.get('wilson95'))} "
            f"| {s['healthy_interventions']} | {s['healthy_pruned']} | {_f(s['compute_to_first_usable'], '{:.0f}')} "
            f"| {_f(s['regret'], '{:.3f}')} | {s['wall_s']:.0f} | {s['load_1min_start']:.0f} -> {s['load_1min_end']:.0f} "
            f"| {'yes' if s['time_budget_hit'] else 'no'} |")


def _trials(doc: Mapping[str, Any], variant: str) -> list[str]:
    v = doc["variants"][variant]
    names = [n for n in ORDER if n in v]
    out = ["| config | learning_rate | guided attention | " + " | ".join(f"{n}: reports, final val.loss, usable, actions" for n in names) + " |",
           "|---|---|---|" + "---|" * len(names)]
    for i, cfg in enumerate(doc["configs"]):
        cells = []
        for n in names:
            t = v[n]["trials"].get(str(i), {})
            cells.append(f"{t.get('reports', 0)}, {_f(t.get('final_loss'), '{:.2f}')}, {'yes' if t.get('usable') else 'no'}, "
                         f"{' '.join(t.get('actions', [])) or '-'}")
        out.append(f"| {i} | {cfg['learning_rate']:.4g} | {cfg.get('guided_attention_weight', float('nan')):.2f} | " + " | ".join(cells) + " |")
    return out


def _harm(doc: Mapping[str, Any], variant: str) -> list[str]:
    """What an injected fault does to an unscheduled trial: FIFO natural vs FIFO ``variant``, per config."""
    v = doc.get("variants", {})
    if "fifo" not in v.get("natural", {}) or "fifo" not in v.get(variant, {}):
        return []
    out = [f"### Does the injected fault harm an unscheduled trial? (FIFO, natural vs {variant}"
           + (", retired" if variant == "spike" else "") + ", same configs)", ""]
    out += [f"| config | learning_rate | natural: final val.loss, usable | {variant}: final val.loss, usable |", "|---|---|---|---|"]
    for i, cfg in enumerate(doc["configs"]):
        a, b = v["natural"]["fifo"]["trials"].get(str(i), {}), v[variant]["fifo"]["trials"].get(str(i), {})
        out.append(f"| {i} | {cfg['learning_rate']:.4g} | {_f(a.get('final_loss'), '{:.2f}')}, {'yes' if a.get('usable') else 'no'} "
                   f"| {_f(b.get('final_loss'), '{:.2f}')}, {'yes' if b.get('usable') else 'no'} |")
    return out + [""]


def section(doc: Mapping[str, Any]) -> str:
    cmds = doc.get("commands") or [doc.get("command")]
    cmd = "; ".join(f"`{c}`" for c in cmds) + (" (run as separate processes, then `--merge`d)" if len(cmds) > 1 else "")
    lines = ["## Real sweep: tiny Tacotron2 trials through real Ray Tune (issue 8 item 5)", "",
             f"Commands: {cmd}; started {doc.get('recorded')}, longest {doc.get('elapsed_s')} s; raw: "
             "`benchmarks/results/real_sweep.json`. "
             f"{len(doc['configs'])} configs from the seeded stream of `benchmarks/scenarios/real.yaml`, {doc['steps']} training steps "
             f"per trial, a validation every {doc['validation_interval']}, target validation.loss <= {doc['target']}, "
             f"{doc['max_concurrent']} one-thread trials at a time, Ray Tune time budget per scheduler run "
             f"{_f(doc.get('time_budget_s'), '{:.0f} s')}. Compute = training steps (re-trained steps after a rollback "
             "count again). A config *fails* when FIFO's run of it (same variant) ends unusable.", ""]
    variants = doc.get("variants", {})
    judged_fault = next((x for x in INJECTED if x in variants), None)   # transient when present, else spike
    for variant, v in variants.items():
        lines += [f"### Variant `{variant}` {_label(doc, variant)}", ""] + ([RETIRED, ""] if variant == "spike" else []) + [
                  "| scheduler | compute (steps) | compute lost share | usable models (per 100 reports) | failing configs usable "
                  "| healthy interventions | healthy pruned | compute to first usable (steps) | regret | wall s | 1-min load start -> end "
                  "| time budget hit |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [_row(n, v[n]) for n in ORDER if n in v]
        lines += ["", f"Best final validation.loss of any trial here: {_f(v.get('best_final_loss'), '{:.3f}')} (regret = handed "
                  "trial's final validation.loss minus it).", ""] + _trials(doc, variant)
        judged = "fifo" in v and (v["fifo"]["usable_unscheduled_trials"] + v["fifo"]["faulty_usable"]["faulty"]) > 0
        if variant in INJECTED and variant != judged_fault:
            lines += ["", f"Goals: judged in variant `{judged_fault}`, not here."]
        elif "smart" in v and judged:
            lines += ["", f"Goals (issue 8, real sweep) in variant `{variant}`:", ""] + goals_table(v, faulty_goal=0.8, regret_half=False)
        elif "smart" in v:
            lines += ["", f"Goals (issue 8, real sweep) in variant `{variant}`: not judgeable, no FIFO trial ran to its "
                      "last step, so none is known to be usable or failing when unscheduled."]
        iv = v.get("smart", {}).get("interventions", [])
        if iv:
            lines += ["", "Smart Tuner's interventions:", ""] + [f"    {x}" for x in iv]
        lines.append("")
    for variant in INJECTED:
        lines += _harm(doc, variant)
    if NOTES.exists():
        lines += [NOTES.read_text().strip(), ""]
    return "\n".join(lines)


def write_section(doc: Mapping[str, Any], path: str | Path | None = None) -> None:
    p = Path(path) if path is not None else BENCHMARKS_MD
    text = p.read_text()
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    p.write_text(head + BEGIN + "\n" + section(doc) + END + tail)


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    write_section(json.loads(src.read_text()))
    print(f"wrote the real-sweep section of {BENCHMARKS_MD} from {src}")
