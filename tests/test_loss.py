"""Tests of model/loss.py: masked mel terms, gate pos_weight, guided attention, NaN pass-through."""

from __future__ import annotations

import math

import pytest
import torch

from model.data import Batch, collate
from model.loss import LossConfigError, LossTerms, Tacotron2Loss, guided_attention_weights
from model.tacotron2 import GATE_PAD_LOGIT, Tacotron2Output


def make_batch(mel_lengths: tuple[int, ...] = (12, 8), text_lengths: tuple[int, ...] = (6, 4), r: int = 1) -> Batch:
    gen = torch.Generator().manual_seed(0)
    items = [(i, torch.randint(1, 10, (n_text,), generator=gen), torch.randn(5, n_mel, generator=gen))
             for i, (n_text, n_mel) in enumerate(zip(text_lengths, mel_lengths))]
    return collate(items, n_frames_per_step=r)


def diagonal(n_steps: int, n_chars: int, reverse: bool = False) -> torch.Tensor:
    a = torch.zeros(n_steps, n_chars)  # (T_dec, N)
    for t in range(n_steps):
        n = t * n_chars // n_steps
        a[t, n_chars - 1 - n if reverse else n] = 1.0
    return a


def perfect_output(batch: Batch, r: int = 1, reverse: bool = False, gate_logit: float = 30.0) -> Tacotron2Output:
    """Exact mels, confident correct gates, one-hot (anti-)diagonal alignments on each real block."""
    b, _, t = batch.mels.shape
    t_dec = -(-t // r)
    gate = torch.where(batch.gate_targets > 0.5, gate_logit, -gate_logit)
    alignments = torch.zeros(b, t_dec, batch.text.size(1))
    for i, (n_mel, n_text) in enumerate(zip(batch.mel_lengths.tolist(), batch.text_lengths.tolist())):
        n_steps = -(-n_mel // r)
        alignments[i, :n_steps, :n_text] = diagonal(n_steps, n_text, reverse)
        alignments[i, n_steps:, 0] = 1.0
        gate[i, n_mel:] = GATE_PAD_LOGIT
    return Tacotron2Output(batch.mels.clone(), batch.mels.clone(), gate, alignments)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_perfect_prediction(r: int) -> None:
    batch = make_batch(r=r)
    terms = Tacotron2Loss(guided_attention_weight=1.0)(perfect_output(batch, r), batch)
    assert isinstance(terms, LossTerms)
    assert terms.mel.item() == 0.0 and terms.mel_postnet.item() == 0.0
    assert terms.gate.item() < 1e-6
    assert terms.guided_attention.item() < 0.1


@pytest.mark.parametrize("r", [1, 2])
def test_guided_attention_prefers_diagonal(r: int) -> None:
    batch = make_batch(mel_lengths=(40, 30), text_lengths=(10, 8), r=r)
    loss = Tacotron2Loss()
    diag = loss(perfect_output(batch, r), batch).guided_attention.item()
    anti = loss(perfect_output(batch, r, reverse=True), batch).guided_attention.item()
    assert diag < 0.1 < 0.5 < anti


@pytest.mark.parametrize("r", [1, 3])
def test_guided_attention_is_expected_penalty_per_decoder_step(r: int) -> None:
    """Uniform attention: sum_n W[t, n] / N per step, averaged over all real steps of the batch."""
    batch = make_batch(mel_lengths=(12, 8), text_lengths=(6, 4), r=r)
    out = perfect_output(batch, r)
    uniform = torch.zeros_like(out.alignments)
    steps = [-(-12 // r), -(-8 // r)]
    uniform[0, :steps[0], :6], uniform[1, :steps[1], :4] = 1 / 6, 1 / 4
    terms = Tacotron2Loss(guided_attention_sigma=0.3)(out._replace(alignments=uniform), batch)
    expected = sum(guided_attention_weights(t, n, 0.3).mean(1).sum() for t, n in zip(steps, (6, 4))) / sum(steps)
    assert terms.guided_attention.item() == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("n_steps, n_chars, sigma", [(5, 5, 0.2), (12, 4, 0.4), (3, 9, 0.1)])
def test_guided_attention_weights_formula(n_steps: int, n_chars: int, sigma: float) -> None:
    w = guided_attention_weights(n_steps, n_chars, sigma)
    assert w.shape == (n_steps, n_chars)
    t, n = n_steps - 1, 0
    assert w[t, n].item() == pytest.approx(1 - math.exp(-((n / n_chars - t / n_steps) ** 2) / (2 * sigma**2)))
    assert w[0, 0].item() == 0.0


@pytest.mark.parametrize("field, value", [("mel", 1.0), ("mel_postnet", 2.0)])
def test_mel_terms_are_masked_mse(field: str, value: float) -> None:
    batch = make_batch()
    out = perfect_output(batch)
    shifted = getattr(out, field) + value
    shifted[1, :, 8:] = 1e6  # padded frames of item 1: ignored
    terms = Tacotron2Loss()(out._replace(**{field: shifted}), batch)
    assert getattr(terms, field).item() == pytest.approx(value**2)


@pytest.mark.parametrize("pos_weight", [1.0, 5.0, 20.0])
def test_gate_pos_weight_scales_missed_stops(pos_weight: float) -> None:
    batch = make_batch()
    out = perfect_output(batch)
    gate = torch.zeros_like(out.gate_logits)  # p = 0.5 on every real frame
    gate[1, 8:] = GATE_PAD_LOGIT
    terms = Tacotron2Loss(gate_pos_weight=pos_weight)(out._replace(gate_logits=gate), batch)
    n_real, n_pos = 12 + 8, 2  # one stop frame per utterance
    expected = math.log(2) * (pos_weight * n_pos + (n_real - n_pos)) / n_real
    assert terms.gate.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("gate_w, ga_w", [(1.0, 1.0), (0.0, 3.0), (2.5, 0.0)])
def test_total_is_weighted_sum(gate_w: float, ga_w: float) -> None:
    batch = make_batch()
    out = perfect_output(batch, reverse=True, gate_logit=-1.0)
    out = out._replace(mel=out.mel + 0.5)
    t = Tacotron2Loss(gate_loss_weight=gate_w, guided_attention_weight=ga_w)(out, batch)
    expected = t.mel + t.mel_postnet + gate_w * t.gate + ga_w * t.guided_attention
    assert t.total.item() == pytest.approx(expected.item())
    assert t.gate.item() > 0 and t.guided_attention.item() > 0


@pytest.mark.parametrize("field, bad", [("mel", float("nan")), ("mel_postnet", float("inf")),
                                        ("gate_logits", float("nan")), ("alignments", float("nan"))])
def test_non_finite_values_pass_through(field: str, bad: float) -> None:
    batch = make_batch()
    out = perfect_output(batch)
    broken = getattr(out, field).clone()
    broken[0, ..., 1] = bad  # a real position of item 0
    terms = Tacotron2Loss()(out._replace(**{field: broken}), batch)
    assert not math.isfinite(terms.total.item())


def test_gradient_flows_to_outputs() -> None:
    batch = make_batch()
    out = perfect_output(batch)
    mel = (out.mel + 0.1).requires_grad_()
    align = out.alignments.clone().requires_grad_()
    Tacotron2Loss()(out._replace(mel=mel, alignments=align), batch).total.backward()
    assert mel.grad.abs().sum() > 0 and align.grad.abs().sum() > 0
    assert torch.all(mel.grad[1, :, 8:] == 0)


@pytest.mark.parametrize("kwargs, message", [
    ({"gate_pos_weight": 0.0}, "gate_pos_weight must be finite and > 0, got 0.0"),
    ({"gate_loss_weight": -1.0}, "gate_loss_weight must be finite and >= 0, got -1.0"),
    ({"guided_attention_weight": float("nan")}, "guided_attention_weight must be finite"),
    ({"guided_attention_sigma": 0.0}, "guided_attention_sigma must be finite and > 0"),
])
def test_bad_weights_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(LossConfigError, match=message):
        Tacotron2Loss(**kwargs)
    assert issubclass(LossConfigError, ValueError)
