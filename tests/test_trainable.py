"""train_tts's loop without Ray (LocalSession): resume, config changes on restore, restarts, faults.

Every run is the tiny preset made smaller still, on the 24-utterance conftest corpus, 1 thread.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tuner.core.config import config_from_dict
from tuner.contract import CHECKPOINT_RESTORED, CHECKPOINT_RESTORED_STEP, CHECKPOINT_UNREADABLE
from tuner.core.supervisor import Supervisor
from tuner.trainable import DEFAULTS, LocalSession, TrainConfigError, TrainSettings, run_training
from tuner.training.checkpoint import CHECKPOINT_FILE, load_checkpoint
from tuner.training.loop import Trainer

SMALL_MODEL = {
    "symbols_embedding_dim": 32, "encoder_embedding_dim": 32, "attention_rnn_dim": 64,
    "decoder_rnn_dim": 64, "prenet_dim": 32, "attention_dim": 16, "postnet_embedding_dim": 32,
}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def base(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small, fast trial config (batch 3 so a resume lands mid-epoch: 16 train utterances)."""
    return {
        "data_dir": str(corpus_dir), "cache_dir": str(tmp_path_factory.mktemp("cache")),
        "model": SMALL_MODEL, "batch_size": 3, "max_steps": 4, "validation_interval": 2,
        "num_threads": 1, "tensorboard": False, "warmup_steps": 2, "lr_schedule": "constant", "seed": 7,
    }


def train(tmp: Path, config: dict[str, Any], resume_from: Path | None = None) -> tuple[Trainer, LocalSession]:
    session = LocalSession(tmp, resume_from=resume_from)
    return run_training(config, session), session


def prepared(tmp: Path, config: dict[str, Any], resume_from: Path) -> Trainer:
    """A Trainer restored from ``resume_from`` under ``config``, before any step."""
    trainer = Trainer(TrainSettings.from_config(config), LocalSession(tmp, resume_from=resume_from), config)
    trainer.setup()
    return trainer


def test_resume_matches_uninterrupted_run(base: dict[str, Any], tmp_path: Path) -> None:
    whole, whole_session = train(tmp_path / "whole", {**base, "max_steps": 8})
    _, first = train(tmp_path / "first", {**base, "max_steps": 4})
    resumed, second = train(tmp_path / "second", {**base, "max_steps": 8}, first.checkpoints[-1])
    assert [r["training.step"] for r in second.reports] == [6.0, 8.0]
    for key in ("training.loss", "validation.loss", "grad.norm", "validation.attention_score"):
        assert second.reports[-1][key] == pytest.approx(whole_session.reports[-1][key], rel=1e-5, abs=1e-6)
    assert second.reports[-1]["validation.step"] == whole_session.reports[-1]["validation.step"] == 4.0
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_a_truncated_checkpoint_resumes_from_the_one_before(base: dict[str, Any], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    _, first = train(tmp_path / "first", {**base, "max_steps": 6})   # validations at steps 2, 4, 6
    latest = first.checkpoints[-1] / CHECKPOINT_FILE
    latest.write_bytes(latest.read_bytes()[:4096])                    # truncated
    capsys.readouterr()
    _, resumed = train(tmp_path / "resumed", {**base, "max_steps": 8}, first.checkpoints[-1])
    err = capsys.readouterr().err
    assert [r["training.step"] for r in resumed.reports] == [6.0, 8.0]   # from step 4, not 0
    assert resumed.reports[0]["validation.step"] == 3.0
    line = next(x for x in err.splitlines() if "cannot be read" in x)
    assert line.startswith(f"smart-tuner: checkpoint {latest} cannot be read") and \
        line.endswith(f"restored the newest readable older one, {first.checkpoints[-2]}")
    assert latest.stat().st_size == 4096                              # left as it was


def test_after_a_fallback_the_next_rollback_reads_the_restored_checkpoint(
        base: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The last healthy checkpoint truncated; the rollback to it falls back (one line) and
    explodes at once, so the Supervisor rolls back again before any newer healthy checkpoint:
    to the readable one the trial restored, which the next run reads without a fallback."""
    sup = Supervisor(config_from_dict({"training_recovery": {"min_training_time": 0,
                                                             "min_validation_steps": 100}}),
                     tmp_path / "exp", echo=False)
    config = {**base, "max_steps": 6}
    _, first = train(tmp_path / "first", config)                      # validations 1-3
    for report, folder in zip(first.reports, first.checkpoints):
        sup.on_result("t1", config, report, str(folder), now=report["validation.step"])
    latest = first.checkpoints[-1] / CHECKPOINT_FILE
    assert sup.healthy_checkpoint("t1").checkpoint == str(latest.parent)
    latest.write_bytes(latest.read_bytes()[:4096])                    # truncated
    capsys.readouterr()
    exploding = {**base, "max_steps": 8, "inject": {"explode_after_step": 5}}   # from step 4 on
    _, second = train(tmp_path / "second", exploding, latest.parent)
    lines = [x for x in capsys.readouterr().err.splitlines() if "cannot be read" in x]
    assert len(lines) == 1 and lines[0].startswith(f"smart-tuner: checkpoint {latest} cannot be read")
    readable = first.checkpoints[-2]
    assert (second.reports[0][CHECKPOINT_UNREADABLE], second.reports[0][CHECKPOINT_RESTORED],
            second.reports[0][CHECKPOINT_RESTORED_STEP]) == (str(latest.parent), str(readable), 2.0)
    assert CHECKPOINT_RESTORED not in second.reports[1]               # told once
    action = sup.on_result("t1", exploding, second.reports[0], None, now=4.0)   # Ray: no checkpoint yet
    assert (action.kind, action.checkpoint, action.intervention.rolled_back_to) == \
        ("mutate", str(readable), 2)
    _, third = train(tmp_path / "third", {**action.new_config, "max_steps": 6}, Path(action.checkpoint))
    assert "cannot be read" not in capsys.readouterr().err
    assert third.reports[0]["validation.step"] == 3.0 and CHECKPOINT_RESTORED not in third.reports[0]
    assert latest.stat().st_size == 4096                              # left as it was


def test_reports_every_contract_metric_as_float(base: dict[str, Any], tmp_path: Path) -> None:
    _, session = train(tmp_path, {**base, "tensorboard": True})
    contract = ("training.loss", "validation.loss", "grad.norm", "grad.norm_mean", "validation.attention_score",
                "validation.gate_accuracy", "overfitting.gap", "validation.step", "learning_rate", "nan_skips",
                "validation.early_stop_fraction", "training.step", "restored_from_nan")
    for report in session.reports:
        assert all(type(report[k]) is float and math.isfinite(report[k]) for k in contract), report
        assert report["overfitting.gap"] == pytest.approx(report["validation.loss"] - report["training.loss"])
    assert [r["validation.step"] for r in session.reports] == [1.0, 2.0]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_checkpoint_loads_with_weights_only(base: dict[str, Any], tmp_path: Path) -> None:
    _, session = train(tmp_path, base)
    state = torch.load(session.checkpoints[-1] / CHECKPOINT_FILE, weights_only=True)
    assert (state["step"], state["validation_step"], state["restart_generation"]) == (4, 2, 0)
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert {"model", "optimizer", "scaler", "schedule", "best", "epoch", "batch_in_epoch"} <= set(state)


@pytest.mark.parametrize(
    "change, probe, expected",
    [
        ({"learning_rate": 3e-4}, lambda t: t.optimizer.param_groups[0]["lr"], 3e-4),  # past warm-up
        ({"weight_decay": 0.05}, lambda t: t.optimizer.param_groups[0]["weight_decay"], 0.05),
        ({"dropout": 0.3}, lambda t: (t.model.cfg.dropout, t.model.encoder.p), (0.3, 0.3)),
        ({"batch_size": 5}, lambda t: (t.batches.batch_size, t.batches.epoch, t.batches.batch_in_epoch),
         (5, 1, 0)),
        ({"guided_attention_weight": 4.0}, lambda t: t.criterion.guided_attention_weight, 4.0),
        ({"gate_loss_weight": 2.0, "gate_pos_weight": 9.0},
         lambda t: (t.criterion.gate_loss_weight, t.criterion.gate_pos_weight), (2.0, 9.0)),
        ({"grad_clip_thresh": 0.5, "gate_threshold": 0.7},
         lambda t: (t.s.grad_clip_thresh, t.s.gate_threshold, t.model.cfg.gate_threshold), (0.5, 0.7, 0.7)),
    ],
)
def test_config_change_on_restore_takes_effect(
    base: dict[str, Any], tmp_path: Path, change: dict[str, Any], probe: Any, expected: Any
) -> None:
    _, first = train(tmp_path / "first", base)
    trainer = prepared(tmp_path / "second", {**base, "max_steps": 6, **change}, first.checkpoints[-1])
    assert probe(trainer) == pytest.approx(expected)
    assert trainer.step == 4


def test_changed_batch_size_trains_with_new_batches(base: dict[str, Any], tmp_path: Path) -> None:
    _, first = train(tmp_path / "first", base)
    trainer = prepared(tmp_path / "second", {**base, "batch_size": 5}, first.checkpoints[-1])
    assert len(next(iter(trainer.batches))) == 5


@pytest.mark.parametrize("flags, attention_reset, lr_restarted", [
    ({}, False, False),
    ({"reset_attention": True}, True, False),
    ({"lr_restart": True}, False, True),
    ({"reset_attention": True, "lr_restart": True}, True, True),
])
def test_restore_flags(base: dict[str, Any], tmp_path: Path, flags: dict[str, bool], attention_reset: bool,
                       lr_restarted: bool) -> None:
    _, first = train(tmp_path / "first", base)
    saved = load_checkpoint(first.checkpoints[-1])["model"]
    trainer = prepared(tmp_path / "second", {**base, "learning_rate": 2e-3, **flags}, first.checkpoints[-1])
    now = trainer.model.state_dict()
    attention = [k for k in now if k.startswith("decoder.attention.")]
    others = [k for k in now if not k.startswith("decoder.attention.")]
    assert attention and any(not torch.equal(now[k], saved[k]) for k in attention) == attention_reset
    assert all(torch.equal(now[k], saved[k]) for k in others)
    fresh_moments = [p not in trainer.optimizer.state for p in trainer.model.decoder.attention.parameters()]
    assert all(fresh_moments) == attention_reset and any(fresh_moments) == attention_reset
    assert trainer.schedule.start_step == (4 if lr_restarted else 0)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 if lr_restarted else 2e-3)


def test_architecture_change_without_restart_is_a_config_error(base: dict[str, Any], tmp_path: Path) -> None:
    _, first = train(tmp_path / "first", base)
    changed = {**base, "model": {**SMALL_MODEL, "decoder_rnn_dim": 48}}
    with pytest.raises(TrainConfigError, match="_restart_generation"):
        prepared(tmp_path / "second", changed, first.checkpoints[-1])
    assert prepared(tmp_path / "third", {**changed, "_restart_generation": 1}, first.checkpoints[-1]).step == 0


def test_flags_are_not_repeated_on_a_plain_resume(base: dict[str, Any], tmp_path: Path) -> None:
    config = {**base, "reset_attention": True, "lr_restart": True}
    _, first = train(tmp_path / "first", config)
    trainer = prepared(tmp_path / "second", config, first.checkpoints[-1])
    saved = load_checkpoint(first.checkpoints[-1])["model"]
    assert all(torch.equal(v, saved[k]) for k, v in trainer.model.state_dict().items())
    assert trainer.schedule.start_step == 0


@pytest.mark.parametrize("generation, expected_step, expected_validation_step", [(0, 4, 2), (1, 0, 0)])
def test_restart_generation_ignores_older_checkpoint(
    base: dict[str, Any], tmp_path: Path, generation: int, expected_step: int, expected_validation_step: int
) -> None:
    _, first = train(tmp_path / "first", base)
    config = {**base, "_restart_generation": generation}
    trainer = prepared(tmp_path / "second", config, first.checkpoints[-1])
    assert (trainer.step, trainer.validation_step) == (expected_step, expected_validation_step)
    if generation:
        fresh = prepared(tmp_path / "fresh", {**base, "seed": base["seed"] + 1}, None)  # type: ignore[arg-type]
        for a, b in zip(trainer.model.parameters(), fresh.model.parameters()):
            assert torch.equal(a, b)


@pytest.mark.parametrize("inject, nan_skips, restored, first_skipped", [
    ({}, 0, 0, 0),
    ({"nan_at_step": 2}, 1, 0, 1),
    ({"nan_params_at_step": 3}, 0, 1, 0),
])
def test_injected_nan_is_skipped_and_counted(
    base: dict[str, Any], tmp_path: Path, inject: dict[str, int], nan_skips: int, restored: int,
    first_skipped: int,
) -> None:
    trainer, session = train(tmp_path, {**base, "inject": inject})
    last = session.reports[-1]
    assert (last["nan_skips"], last["restored_from_nan"]) == (nan_skips, restored)
    first = session.reports[0]
    # the skipped step is counted, and grad.norm is the norm of the step that was taken
    assert (first["training.skipped_steps"], first["training.interval_steps"]) == (first_skipped, 2)
    assert all(math.isfinite(r["grad.norm"]) and r["grad.norm"] > 0 for r in session.reports)
    assert all(math.isfinite(r["training.loss"]) for r in session.reports)
    assert trainer.params_finite()


@pytest.mark.parametrize("learning_rate, threshold, exploded", [
    (1e-3, 5e-4, True),   # above the threshold: gradients x 1e4 from step 3 on
    (1e-3, 2e-3, False),  # a learning rate at or under the threshold cures it
])
def test_injected_explosion_depends_on_learning_rate(
    base: dict[str, Any], tmp_path: Path, learning_rate: float, threshold: float, exploded: bool
) -> None:
    inject = {"explode_after_step": 3, "explode_lr_threshold": threshold}
    _, session = train(tmp_path, {**base, "learning_rate": learning_rate, "inject": inject})
    first, second = (r["grad.norm"] for r in session.reports)
    assert first < 1e3
    assert (second > 1e3) == exploded
    assert math.isfinite(session.reports[-1]["validation.loss"])


@pytest.mark.parametrize("change, key", [
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"batch_size": 0}, "batch_size"),
    ({"amp": "fp8"}, "amp"),
    ({"inject": {"nan_at_sep": 3}}, "inject"),
    ({"model": {"no_such_field": 1}}, "no_such_field"),
])
def test_bad_config_value_fails_fast(base: dict[str, Any], tmp_path: Path, change: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        train(tmp_path, {**base, **change})


def test_missing_dataset_names_the_corpus_command(tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match="smart-tuner corpus DIR"):
        run_training({"data_dir": str(tmp_path / "nowhere")}, LocalSession(tmp_path))
    assert DEFAULTS["data_dir"] is None


@pytest.mark.parametrize("inject, counter", [({"nan_at_step": 3}, "nan_skips"),
                                             ({"nan_params_at_step": 3}, "restored_from_nan")])
def test_one_shot_fault_does_not_fire_again_after_a_rollback(
    base: dict[str, Any], tmp_path: Path, inject: dict[str, int], counter: str
) -> None:
    config = {**base, "inject": inject}
    _, session = train(tmp_path, config)
    assert [r[counter] for r in session.reports] == [0, 1]
    # the scheduler rolls the trial back to validation 1 (step 2): step 3 trains again, cleanly
    again = LocalSession(tmp_path, resume_from=session.checkpoints[0])
    run_training(config, again)
    assert [r[counter] for r in again.reports] == [0]
    assert again.reports[-1]["training.skipped_steps"] == 0


def test_lr_spike_is_one_shot_over_its_window(base: dict[str, Any], tmp_path: Path) -> None:
    """Steps 3-4 train at 20x the rate; rolled back to step 2 after the window, they train unspiked."""
    config = {**base, "learning_rate": 1e-3, "inject": {"lr_spike_at_step": 3, "lr_spike_steps": 2,
                                                        "lr_spike_factor": 20.0}}
    _, session = train(tmp_path, config)
    assert [r["learning_rate"] for r in session.reports] == pytest.approx([1e-3, 20e-3])
    assert (tmp_path / "injected_faults.json").read_text() == '["lr_spike_at_step"]'
    # the scheduler rolls the trial back to validation 1 (step 2): steps 3-4 train again, unspiked
    again = LocalSession(tmp_path, resume_from=session.checkpoints[0])
    run_training(config, again)
    assert [r["learning_rate"] for r in again.reports] == pytest.approx([1e-3])
    assert again.reports[-1]["training.step"] == 4.0


def test_lr_spike_replays_an_unfinished_window(base: dict[str, Any], tmp_path: Path) -> None:
    """The window is steps 3-6; the trial stops after step 4, so a rollback to step 2 replays the spike."""
    config = {**base, "learning_rate": 1e-3, "inject": {"lr_spike_at_step": 3, "lr_spike_steps": 4}}
    _, session = train(tmp_path, config)
    assert not (tmp_path / "injected_faults.json").exists()
    again = LocalSession(tmp_path, resume_from=session.checkpoints[0])
    run_training(config, again)
    assert [r["learning_rate"] for r in again.reports] == pytest.approx([20e-3])   # default factor x20
