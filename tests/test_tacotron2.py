"""Tests of model/tacotron2.py: config/presets, shapes, masking, inference stopping, dropout, attention reset."""

from __future__ import annotations

import pytest
import torch

from model.data import Batch, collate
from model.tacotron2 import GATE_PAD_LOGIT, Tacotron2, Tacotron2Config, Tacotron2ConfigError, Tacotron2Output

torch.set_num_threads(1)

N_SYMBOLS = 20
SMALL = dict(n_mels=8, symbols_embedding_dim=16, encoder_embedding_dim=16, attention_rnn_dim=24,
             decoder_rnn_dim=24, prenet_dim=12, attention_dim=8, attention_location_n_filters=4,
             attention_location_kernel_size=5, postnet_embedding_dim=16, max_decoder_steps=30)


def small_model(r: int = 1, **overrides: object) -> Tacotron2:
    torch.manual_seed(0)
    return Tacotron2(Tacotron2Config.preset("tiny", N_SYMBOLS, **{**SMALL, "n_frames_per_step": r, **overrides}))


def small_batch(mel_lengths: tuple[int, ...] = (13, 9, 4), text_lengths: tuple[int, ...] = (7, 5, 3),
                r: int = 1) -> Batch:
    gen = torch.Generator().manual_seed(1)
    items = [(i, torch.randint(1, N_SYMBOLS, (n_text,), generator=gen), torch.randn(8, n_mel, generator=gen))
             for i, (n_text, n_mel) in enumerate(zip(text_lengths, mel_lengths))]
    return collate(items, n_frames_per_step=r)


def run(model: Tacotron2, batch: Batch) -> Tacotron2Output:
    return model(batch.text, batch.text_lengths, batch.mels, batch.mel_lengths)


@pytest.mark.parametrize("name, field, expected", [
    ("full", "encoder_embedding_dim", 512), ("full", "n_frames_per_step", 1), ("full", "postnet_n_convolutions", 5),
    ("tiny", "encoder_embedding_dim", 128), ("tiny", "n_frames_per_step", 3), ("tiny", "attention_dim", 64),
])
def test_presets(name: str, field: str, expected: int) -> None:
    assert getattr(Tacotron2Config.preset(name, N_SYMBOLS), field) == expected


@pytest.mark.parametrize("name, overrides, message", [
    ("huge", {}, "model preset 'huge' is unknown"),
    ("tiny", {"hidden": 3}, r"model overrides \['hidden'\] are not Tacotron2Config fields"),
    ("tiny", {"n_frames_per_step": 0}, "n_frames_per_step must be >= 1, got 0"),
    ("tiny", {"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ("tiny", {"gate_threshold": 0.0}, "gate_threshold must be in"),
    ("tiny", {"symbols_embedding_dim": 64}, "symbols_embedding_dim \\(64\\) must equal encoder_embedding_dim"),
])
def test_config_errors_are_value_errors(name: str, overrides: dict, message: str) -> None:
    with pytest.raises(Tacotron2ConfigError, match=message):
        Tacotron2Config.preset(name, N_SYMBOLS, **overrides)
    assert issubclass(Tacotron2ConfigError, ValueError)


@pytest.mark.parametrize("r, batch_r, n_frames", [(1, 1, 13), (2, 2, 14), (3, 3, 15), (3, 1, 13)])
def test_forward_shapes_and_named_outputs(r: int, batch_r: int, n_frames: int) -> None:
    batch = small_batch(r=batch_r)
    out = run(small_model(r), batch)
    assert out._fields == ("mel", "mel_postnet", "gate_logits", "alignments")
    assert out.mel.shape == out.mel_postnet.shape == (3, 8, n_frames)
    assert out.gate_logits.shape == (3, n_frames)
    assert out.alignments.shape == (3, -(-n_frames // r), 7)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_padding_is_masked(r: int) -> None:
    batch = small_batch(r=r)
    out = run(small_model(r), batch)
    for b, (n_mel, n_text) in enumerate(zip(batch.mel_lengths.tolist(), batch.text_lengths.tolist())):
        assert torch.all(out.mel[b, :, n_mel:] == 0) and torch.all(out.mel_postnet[b, :, n_mel:] == 0)
        assert torch.all(out.gate_logits[b, n_mel:] == GATE_PAD_LOGIT)
        assert torch.all(out.gate_logits[b, :n_mel].abs() < 100)
        assert torch.all(out.mel_postnet[b, :, :n_mel] != 0)
        assert torch.all(out.alignments[b, :, n_text:] == 0)
        assert torch.allclose(out.alignments[b].sum(-1), torch.ones(out.alignments.size(1)))


@pytest.mark.parametrize("r", [2, 3])
def test_gate_is_repeated_over_each_group_of_r_frames(r: int) -> None:
    batch = small_batch(mel_lengths=(12, 12, 12), r=r)
    gates = run(small_model(r), batch).gate_logits.view(3, -1, r)  # (B, T_dec, r)
    assert torch.equal(gates, gates[..., :1].expand_as(gates))


def test_teacher_forcing_uses_every_rth_frame_only() -> None:
    r, batch = 3, small_batch(mel_lengths=(12, 12, 12), r=3)
    model = small_model(r).eval()
    changed = batch.mels.clone()
    changed[:, :, 0:2] += 5.0  # frames 0, 1 of the first group are not decoder inputs; frame 2 is
    torch.manual_seed(5)
    a = run(model, batch)
    torch.manual_seed(5)  # same prenet dropout masks
    b = model(batch.text, batch.text_lengths, changed, batch.mel_lengths)
    assert torch.equal(a.mel, b.mel)


def test_backward_reaches_every_parameter() -> None:
    model = small_model(2)
    out = run(model, small_batch(r=2))
    (out.mel_postnet.sum() + out.gate_logits.clamp(max=100).sum() + out.alignments.pow(2).sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


@pytest.mark.parametrize("r, gate_bias, max_steps, expected_frames", [
    (1, 20.0, 7, 1), (2, 20.0, 7, 2), (3, 20.0, 7, 3),  # the gate fires at once: one step
    (1, -20.0, 7, 7), (2, -20.0, 7, 14), (3, -20.0, 4, 12),  # never fires: the step limit
])
def test_inference_stops_at_gate_or_step_limit(r: int, gate_bias: float, max_steps: int, expected_frames: int) -> None:
    model = small_model(r).eval()
    torch.nn.init.zeros_(model.decoder.gate.weight)
    torch.nn.init.constant_(model.decoder.gate.bias, gate_bias)
    batch = small_batch(r=r)
    out, lengths = model.inference(batch.text, batch.text_lengths, max_decoder_steps=max_steps)
    assert lengths.tolist() == [expected_frames] * 3
    assert out.mel_postnet.shape == (3, 8, expected_frames)
    assert out.alignments.shape == (3, -(-expected_frames // r), 7)


def test_inference_lengths_follow_each_items_gate() -> None:
    model = small_model(1).eval()
    batch = small_batch()
    out, lengths = model.inference(batch.text, batch.text_lengths, max_decoder_steps=25, gate_threshold=0.5)
    first_fire = [(torch.sigmoid(g) > 0.5).nonzero() for g in out.gate_logits]
    expected = [int(f[0]) + 1 if len(f) else 25 for f in first_fire]
    assert lengths.tolist() == expected
    for b, n in enumerate(lengths.tolist()):
        assert torch.all(out.mel[b, :, n:] == 0)


def test_inference_rejects_zero_steps() -> None:
    batch = small_batch()
    with pytest.raises(ValueError, match="max_decoder_steps must be >= 1, got 0"):
        small_model().inference(batch.text, batch.text_lengths, max_decoder_steps=0)


@pytest.mark.parametrize("p, conv_p, rnn_p", [(0.0, 0.0, 0.0), (0.3, 0.3, 0.06), (0.5, 0.5, 0.1)])
def test_set_dropout(p: float, conv_p: float, rnn_p: float) -> None:
    model = small_model()
    model.set_dropout(p)
    assert model.encoder.p == model.postnet.p == model.cfg.dropout == conv_p
    assert model.decoder.p_attention_dropout == pytest.approx(rnn_p)
    assert model.decoder.p_decoder_dropout == pytest.approx(rnn_p)
    assert model.decoder.prenet.p == 0.5


def test_set_dropout_zero_makes_training_mode_deterministic_except_prenet() -> None:
    model = small_model()
    model.set_dropout(0.0)
    model.decoder.prenet.p = 0.0
    batch = small_batch()
    assert torch.equal(run(model, batch).mel_postnet, run(model, batch).mel_postnet)


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_set_dropout_rejects_bad_values(p: float) -> None:
    with pytest.raises(ValueError, match="dropout must be in"):
        small_model().set_dropout(p)


def test_reset_attention_changes_attention_only() -> None:
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_attention()
    changed = sorted(k for k, v in model.state_dict().items() if not torch.equal(v, before[k]))
    assert changed == sorted(k for k in before if k.startswith("decoder.attention."))
    assert len(changed) == 5  # query, memory, v, location conv, location dense
