"""The fault-injected sweep benchmark: ``python -m benchmarks.sweep --scenario FILE [FILE ...]``.

With several scenario files the first is the headline (its scheduler entries sit at the top
level of sweep.json, as before) and every file's summaries go to ``family`` (tier 1a only).

Runs every scheduler of the scenario on identical seeded populations and fault schedules:
tier 1a through the scheduler hooks for all ``seeds`` (benchmarks/harness.py), tier 1b through
real Ray Tune for ``ray_tune_seeds`` (benchmarks/ray_tier.py, skipped with ``--no-ray``), the
decision-overhead benchmark (benchmarks/overhead.py) in the same run, and optionally tier 2, a
small real tiny-Tacotron2 sweep (``--real``, minutes; its last figures are kept in
``results/tier2_real.json`` and reported by later runs). Writes ``benchmarks/results/sweep.json``,
``benchmarks/results/best_so_far.png``, ``benchmarks/results/smart_interventions.log`` and the
sweep section of BENCHMARKS.md (only between its markers).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import overhead
from benchmarks.harness import RunRecord, run_population
from benchmarks.metrics import best_so_far, median_inf, ratio_to, summarize, user_metrics
from benchmarks.report import json_safe
from benchmarks.scenario import Scenario, load_scenario
from benchmarks.surrogate import Calibration

RESULTS = Path(__file__).parent / "results"


def _quiet() -> None:
    # ASHA's rung cutoff is np.nanpercentile over NaN-only rungs when every trial there diverged
    warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)
    logging.getLogger("ray.tune.schedulers").setLevel(logging.WARNING)
    logging.getLogger("tuner").setLevel(logging.WARNING)
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:
        pass


def tier1a(scenario: Scenario, calibration: Calibration, seeds: tuple[int, ...]) -> dict[str, list[RunRecord] | str]:
    """{scheduler: runs (one per seed)} or {scheduler: error text} when it cannot run."""
    out: dict[str, list[RunRecord] | str] = {}
    for name in scenario.schedulers:
        try:
            out[name] = [run_population(scenario, seed, name, calibration) for seed in seeds]
        except ImportError as e:  # e.g. tuner.core.supervisor missing in an old checkout
            out[name] = f"{type(e).__name__}: {e}"
    return out


def family_entry(scenario: Scenario, seeds: tuple[int, ...], runs: dict[str, list[RunRecord] | str]) -> dict[str, Any]:
    """Scenario description and the issue-8 keys per scheduler (sweep.json ``family``)."""
    out: dict[str, Any] = {"path": scenario.path, "seeds": list(seeds), "fault_rate": scenario.fault_rate,
                           "faults": [asdict(f) for f in scenario.faults]}
    for name, r in runs.items():
        out[name] = {"error": r} if isinstance(r, str) else {
            **user_metrics(r), "compute_to_target": median_inf([x.compute_to_target for x in r])}
    return json_safe(out)


def build_results(scenario: Scenario, calibration: Calibration, seeds: tuple[int, ...],
                  runs: dict[str, list[RunRecord] | str], over: dict[str, Any]) -> dict[str, Any]:
    """The sweep.json document (scheduler keys at the top level, as issue 4 asks)."""
    doc: dict[str, Any] = {
        "scenario": {k: v for k, v in asdict(scenario).items()},
        "seeds": list(seeds),
        "calibration": asdict(calibration),
        "units": "compute = trial-reports summed over trials (1 report = steps_per_report training steps)",
    }
    fifo = runs.get("fifo")
    for name, r in runs.items():
        if isinstance(r, str):
            doc[name] = {"error": r}
            continue
        s = summarize(r)
        s["compute_to_target_vs_fifo"] = ratio_to(r, fifo) if isinstance(fifo, list) else None
        for other in ("asha", "pbt"):
            base = runs.get(other)
            s[f"compute_to_target_vs_{other}"] = ratio_to(r, base) if isinstance(base, list) else None
        o = over.get(name, {})
        big = o.get("1000") if isinstance(o, dict) else None
        if isinstance(big, dict):
            s["overhead_us_p50"], s["overhead_us_p99"] = big["p50"], big["p99"]
            s["overhead_source"] = "benchmarks/overhead.py, 1,000 concurrent trials"
        else:
            s["overhead_us_p50"], s["overhead_us_p99"] = s["decision_us_p50_in_sweep"], s["decision_us_p99_in_sweep"]
            s["overhead_source"] = "decision time inside the tier-1a sweep"
        s["best_so_far"] = best_so_far(r, scenario.budget)
        doc[name] = s
    doc["overhead"] = over
    return json_safe(doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", required=True, nargs="+",
                    help="scenario YAML(s), e.g. benchmarks/scenarios/default.yaml; the first is the headline")
    ap.add_argument("--seeds", type=int, nargs="+", help="override the scenario's seeds (tier 1a)")
    ap.add_argument("--out", default=str(RESULTS), help="results folder (default benchmarks/results)")
    ap.add_argument("--no-ray", action="store_true", help="skip tier 1b (real Ray Tune)")
    ap.add_argument("--real", action="store_true", help="also run tier 2: real tiny-Tacotron2 trials (minutes)")
    ap.add_argument("--no-report", action="store_true", help="do not rewrite BENCHMARKS.md")
    args = ap.parse_args(argv)
    _quiet()
    t0 = time.time()
    scenario = load_scenario(args.scenario[0])
    calibration = Calibration.load()
    seeds = tuple(args.seeds) if args.seeds else scenario.seeds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"tier 1a: {len(scenario.schedulers)} schedulers x {len(seeds)} seeds x {scenario.trials} trials", flush=True)
    runs = tier1a(scenario, calibration, seeds)
    print(f"tier 1a done in {time.time() - t0:.1f} s; overhead benchmark", flush=True)
    over = overhead.run(schedulers=tuple(n for n in ("smart", "asha", "pbt") if n in scenario.schedulers))
    doc = build_results(scenario, calibration, seeds, runs, over)
    doc["command"] = "python -m benchmarks.sweep " + " ".join(argv if argv is not None else sys.argv[1:])
    doc["family"] = {scenario.name: family_entry(scenario, seeds, runs)}
    for path in args.scenario[1:]:
        other = load_scenario(path)
        other_seeds = tuple(args.seeds) if args.seeds else other.seeds
        print(f"tier 1a family: {other.name}, {len(other_seeds)} seeds", flush=True)
        doc["family"][other.name] = family_entry(other, other_seeds, tier1a(other, calibration, other_seeds))
    if scenario.ray_tune_seeds and not args.no_ray:
        from benchmarks import ray_tier

        print(f"tier 1b: real Ray Tune, seeds {list(scenario.ray_tune_seeds)}", flush=True)
        doc["tier1b_ray_tune"] = json_safe(ray_tier.run(scenario, calibration, scenario.ray_tune_seeds, out / "ray_tune_logs"))
    tier2 = out / "tier2_real.json"
    if args.real:
        from benchmarks import real_tier

        print("tier 2: real tiny-Tacotron2 sweep (minutes)", flush=True)
        tier2.write_text(json.dumps(json_safe(real_tier.run()), indent=1) + "\n")
    if tier2.exists():  # the last recorded tier-2 figures (``--real`` or python -m benchmarks.real_tier)
        doc["tier2_real"] = json.loads(tier2.read_text())
    doc["elapsed_s"] = round(time.time() - t0, 1)
    (out / "sweep.json").write_text(json.dumps(doc, indent=1) + "\n")
    smart_runs = runs.get("smart")
    smart_runs = smart_runs if isinstance(smart_runs, list) else []
    logs = [line for r in smart_runs for line in [f"# seed {r.seed}"] + r.log]
    (out / "smart_interventions.log").write_text("\n".join(logs) + "\n")
    if not args.no_report:
        from benchmarks import report

        report.plot(doc, out / "best_so_far.png")
        report.write_section(doc)
    print(f"wrote {out / 'sweep.json'} in {doc['elapsed_s']} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
