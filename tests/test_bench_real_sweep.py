"""benchmarks/real_sweep.py: the config stream, the transient variant's inject mapping, a smoke run of
the real sweep (two short real tiny-Tacotron2 trials through real Ray Tune under FIFO, ASHA and
SmartScheduler, with the product's one-shot learning-rate spike injected), and the metrics and
report on hand-built runs. The spike itself: tests/test_training_faults.py, tests/test_trainable.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.real_sweep import config_stream, load_real, main, transient_inject

REAL = Path(__file__).resolve().parent.parent / "benchmarks" / "scenarios" / "real.yaml"


def test_transient_inject_from_the_scenario() -> None:
    """steps 151-200: one validation interval, ending at the report of step 200."""
    assert transient_inject(load_real(REAL)) == {"lr_spike_at_step": 151, "lr_spike_steps": 50, "lr_spike_factor": 20.0}
    for bad in ({}, {"transient": {"at_step": "x"}}, {"transient": {"at_step": 151, "steps": 0}}):
        with pytest.raises(SystemExit, match=r"scenario: transient = .*: the transient variant needs"):
            transient_inject(bad)


def test_config_stream_is_seeded_and_reaches_the_unstable_region() -> None:
    sc = load_real(REAL)
    a, b = config_stream(sc, 12), config_stream(sc, 12)
    assert a == b and config_stream(sc, 4) == a[:4]
    assert max(c["learning_rate"] for c in a) > 1e-2   # well above the train_tts default 2e-3


@pytest.mark.timeout(1500)
def test_smoke_two_short_real_trials(corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # real_sweep.run switches off Ray's result loggers and new console for its own process;
    # set them here so they are undone after the test (they broke test_trainable_ray after it)
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "0")
    sc = yaml.safe_load(REAL.read_text())
    sc["fixed"].update(cache_dir=str(tmp_path / "cache"), warmup_steps=1)
    sc["transient"] = {"at_step": 3, "steps": 2, "factor": 20.0}   # steps 3-4: the second report
    sc["max_concurrent"] = 2
    scenario = tmp_path / "real.yaml"
    scenario.write_text(yaml.safe_dump(sc))
    out = tmp_path / "real_sweep.json"
    assert main(["--scenario", str(scenario), "--data-dir", str(corpus_dir), "--configs", "2", "--steps", "4",
                 "--interval", "2", "--variants", "transient", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    runs = doc["variants"]["transient"]
    for name in ("fifo", "asha", "smart"):
        s = runs[name]
        for key in ("compute_lost_share", "usable_models", "usable_per_100_reports", "faulty_usable",
                    "healthy_interventions", "healthy_pruned", "compute_to_first_usable", "regret", "wall_s"):
            assert key in s, (name, key)
        assert s["compute_steps"] >= 2 * 2 and not s["errors"], (name, s["errors"])
    fifo = doc["raw"]["transient"]["fifo"]["reports"]
    assert len(fifo) == 4 and {r["index"] for r in fifo} == {0, 1}
    for i, cfg in enumerate(doc["configs"]):   # the spike acted: the second report trained at 20x the rate
        first, last = [r for r in fifo if r["index"] == i]
        assert first["learning_rate"] == pytest.approx(cfg["learning_rate"], rel=0.05)
        assert last["learning_rate"] == pytest.approx(20.0 * cfg["learning_rate"], rel=0.05)


def _rep(i: int, step: int, loss: float | None, gate: float = 0.6) -> dict:
    attn = 0.7 if step >= 150 else 0.2   # aligned from step 150 on
    return {"index": i, "t": step / 10, "lr": 1e-3, "training.step": step, "validation.loss": loss, "grad.norm": 3.0,
            "validation.attention_score": attn, "validation.gate_accuracy": gate, "learning_rate": 1e-3}


def _raw(reports: list, actions: dict | None = None) -> dict:
    return {"wall_s": 1.0, "load_1min_start": 1.0, "load_1min_end": 1.0, "time_budget_hit": False, "reports": reports,
            "actions": actions or {}, "errors": {}, "interventions": []}


def test_merge_and_metrics_on_hand_built_runs(tmp_path: Path) -> None:
    """FIFO is the ground truth: config 0 ends usable, config 1 fails (NaN). Smart mutates both and
    saves config 1; ASHA prunes config 1 at its first rung. Variants transient (judged), natural
    (FIFO only: the harm table's reference) and the retired spike (shown, labelled, not judged)."""
    base = {"configs": [{"learning_rate": 1e-3}, {"learning_rate": 2e-2}], "steps": 200, "validation_interval": 50,
            "target": 9.0, "max_concurrent": 2, "command": "x", "recorded": "now", "variants": {},
            "transient_inject": {"lr_spike_at_step": 151, "lr_spike_steps": 50, "lr_spike_factor": 20.0}}
    fifo = _raw([_rep(0, s, 8.0) for s in (50, 100, 150, 200)] + [_rep(1, s, 9.5 if s < 200 else None) for s in (50, 100, 150, 200)])
    smart = _raw([_rep(0, s, 8.1) for s in (50, 100, 150, 200)] + [_rep(1, s, 8.5) for s in (50, 100, 100, 150, 200)],
                 actions={"0": ["mutate"], "1": ["mutate"]})
    asha = _raw([_rep(0, s, 8.0) for s in (50, 100, 150, 200)] + [_rep(1, s, 9.5) for s in (50, 100)])
    paths = []
    for name, run in (("fifo", fifo), ("smart", smart), ("asha", asha)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps({**base, "raw": {"transient": {name: run}}}))
        paths.append(p)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**base, "raw": {"natural": {"fifo": fifo}, "spike": {"fifo": fifo, "smart": smart}}}))
    paths.append(old)
    out = tmp_path / "merged.json"
    assert main(["--scenario", str(REAL), "--merge", *map(str, paths), "--out", str(out)]) == 0
    v = json.loads(out.read_text())["variants"]["transient"]
    assert v["fifo"]["faulty_usable"]["faulty"] == 1 and v["fifo"]["faulty_usable"]["usable"] == 0
    assert v["smart"]["faulty_usable"]["usable"] == 1 and v["smart"]["healthy_interventions"] == 1
    assert v["asha"]["healthy_pruned"] == 0 and v["asha"]["trials"]["1"]["actions"] == ["prune"]
    assert v["fifo"]["compute_lost_share"] == pytest.approx(0.5) and v["smart"]["compute_lost_share"] == 0.0
    assert v["smart"]["compute_steps"] == 9 * 50 and v["fifo"]["compute_to_first_usable"] == 3 * 50
    from benchmarks import real_report

    doc = json.loads(out.read_text())
    md = tmp_path / "B.md"
    md.write_text("# B\n\nkeep me\n")
    real_report.write_section(doc, md)
    real_report.write_section(doc, md)   # markers added once, then only the text between them replaced
    text = md.read_text()
    assert text.startswith("# B\n\nkeep me\n") and text.count(real_report.BEGIN) == 1
    assert "| smart | 450 | 0.000 |" in text and "| 0 healthy_interventions | 1 | **no** |" in text
    assert "### Variant `transient` (every trial gets the one-shot learning-rate spike of tuner/training/faults.py, " \
        "steps 151-200 at x20;" in text
    assert "in variant `transient`:" in text and "in variant `spike`:" not in text   # goals: transient only
    assert "### Variant `spike` (retired;" in text and real_report.RETIRED in text
    assert "(FIFO, natural vs transient, same configs)" in text and "(FIFO, natural vs spike, retired, same configs)" in text
