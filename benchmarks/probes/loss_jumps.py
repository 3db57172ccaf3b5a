"""How far does a real trial's validation loss jump in one report? The measurement behind
``gradient_explosion.critical_loss_jump`` (tuner/core/config.yaml).

For every real unscheduled trajectory on disk (the bank's recordings, benchmarks/bank/*.json, and
the FIFO runs of the real sweep, benchmarks/results/real_sweep.json), the largest ratio of a
report's validation.loss to the median of the finite validation losses of the ``--reports``
reports before it (the rule's reference), with the report it happened at and whether the trial ends usable (benchmarks/usable.py; the
bank's own judgement for its recordings). Prints a markdown table and, per group, the largest
ratio: what a threshold has to stay above for the healthy ones.

    python -m benchmarks.probes.loss_jumps [--reports 3] [--real benchmarks/results/real_sweep.json]
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from benchmarks.probes.record_bank import BANK_DIR, load
from benchmarks.real_sweep import trial_reports
from benchmarks.usable import why_unusable
from tuner.core.rules._streams import EarlierLevel

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "benchmarks" / "results" / "real_sweep.json"


def largest_jump(losses: Iterable[float], reports: int) -> tuple[float, int | None]:
    """(largest ratio of a validation loss to the median of the finite ones of the ``reports``
    before it, the 1-based report where it happened); (nan, None) when no report has a finite
    predecessor. The reference is the rule's own (``EarlierLevel``, tuner/core/rules/_streams.py)."""
    level = EarlierLevel("validation.loss", reports)
    worst, at = math.nan, None
    for i, v in enumerate(losses, start=1):
        level.push({"validation.loss": v})
        if level.before > 0 and math.isfinite(v):
            ratio = v / level.before
            if not ratio <= worst:        # NaN worst: the first ratio
                worst, at = ratio, i
    return worst, at


def trajectories(real: Path) -> list[dict[str, Any]]:
    """One row per unscheduled real trajectory: source, name, learning rate, losses, usable."""
    out = []
    for path in sorted(BANK_DIR.glob("*.json")):
        doc = load(path)
        out.append({"source": "bank", "name": doc["name"], "lr": doc["config"].get("learning_rate"),
                    "losses": [r["validation.loss"] for r in doc["reports"]], "usable": doc["label"] == "healthy"})
    if real.exists():
        doc = json.loads(real.read_text())
        for variant, runs in doc.get("raw", {}).items():
            if "fifo" not in runs:
                continue
            for i, reps in trial_reports(runs["fifo"], len(doc["configs"])).items():
                losses = [math.nan if r.get("validation.loss") is None else float(r["validation.loss"]) for r in reps]
                out.append({"source": f"real_sweep {variant}/fifo", "name": f"config {i}", "lr": reps[0].get("lr"),
                            "losses": losses, "usable": why_unusable(reps[-1], float(doc["target"])) is None})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.probes.loss_jumps", description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=3, help="previous reports the median is taken over (default 3)")
    ap.add_argument("--real", type=Path, default=REAL, help="a real_sweep.json (default: the committed one)")
    args = ap.parse_args(argv)
    rows = trajectories(args.real)
    print(f"| source | trajectory | learning_rate | reports | ends usable | largest jump (x median of the previous "
          f"{args.reports}) | at report |")
    print("|---|---|---|---|---|---|---|")
    groups: dict[tuple[str, bool], list[float]] = defaultdict(list)
    for t in rows:
        ratio, at = largest_jump(t["losses"], args.reports)
        groups[(t["source"], t["usable"])].append(ratio)
        lr = f"{t['lr']:.2e}" if isinstance(t["lr"], (int, float)) else "-"
        print(f"| {t['source']} | {t['name']} | {lr} | {len(t['losses'])} | {'yes' if t['usable'] else 'no'} | "
              f"{ratio:.2f} | {at} |")
    print()
    for (source, usable), ratios in sorted(groups.items()):
        finite = [r for r in ratios if math.isfinite(r)]
        print(f"{source}, {'usable' if usable else 'unusable'}: {len(ratios)} trajectories, largest jump "
              f"{max(finite):.2f}, smallest {min(finite):.2f}" if finite else f"{source}: no finite ratio")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
