"""Tacotron2 training loss with a named breakdown of its terms.

Only real positions count: frames ``t < mel_lengths[b]`` for the mel and gate terms, and the
region (decoder steps ``k < ceil(mel_lengths[b] / r)``) x (characters ``n < text_lengths[b]``)
for guided attention. Non-finite values are never hidden: a NaN or Inf anywhere in the real
region of an output makes its term (and ``total``) NaN/Inf, which is the signal the tuner reads.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import torch
from torch import Tensor, nn

from model.layers import lengths_to_mask
from model.tacotron2 import Tacotron2Output


class LossConfigError(ValueError):
    """A Tacotron2Loss weight is unusable; the message names it, its value and a sensible one."""


class BatchLike(Protocol):
    """What the loss reads from ``model.data.Batch``."""

    text_lengths: Tensor  # (B,)
    mels: Tensor  # (B, n_mels, T)
    mel_lengths: Tensor  # (B,)
    gate_targets: Tensor  # (B, T) 1.0 from the last real frame on


class LossTerms(NamedTuple):
    total: Tensor  # mel + mel_postnet + gate_loss_weight * gate + guided_attention_weight * guided_attention
    mel: Tensor  # masked MSE before the postnet
    mel_postnet: Tensor  # masked MSE after the postnet
    gate: Tensor  # masked BCE-with-logits (pos_weight), unweighted
    guided_attention: Tensor  # DC-TTS guided attention loss, unweighted


def guided_attention_weights(n_steps: int, n_chars: int, sigma: float, device: torch.device | None = None) -> Tensor:
    """DC-TTS penalty matrix ``W[t, n] = 1 - exp(-(n / N - t / T)^2 / (2 sigma^2))``, shape (T, N).

    0 on the diagonal t/T = n/N, approaching 1 far from it.
    """
    t = torch.arange(n_steps, device=device, dtype=torch.float32).unsqueeze(1) / n_steps  # (T, 1)
    n = torch.arange(n_chars, device=device, dtype=torch.float32).unsqueeze(0) / n_chars  # (1, N)
    return 1.0 - torch.exp(-((n - t) ** 2) / (2.0 * sigma**2))  # (T, N)


class Tacotron2Loss(nn.Module):
    """total = MSE(mel) + MSE(mel_postnet) + gate_loss_weight * BCE(gate) + guided_attention_weight * GA.

    - MSE: sum over real frames and mel bins of (prediction - target)^2 / (real frames * n_mels).
    - BCE: ``BCEWithLogits(pos_weight=gate_pos_weight)`` averaged over real frames (the last real frame
      is the only positive one per utterance, hence the pos_weight).
    - GA: sum_{b, t, n} A[b, t, n] * W_b[t, n] / sum_b T_b over the real region, where W_b is
      :func:`guided_attention_weights` for utterance b's (T_b decoder steps, N_b characters): the
      expected off-diagonal penalty of one decoder step, in [0, 1). This is N_b times the DC-TTS
      mean over the (T_b, N_b) block, which makes the scale independent of text length, so that
      ``guided_attention_weight`` ~1 is a useful default (the plain block mean needed weights of
      20-50 to speed up alignment on the built-in corpus; see benchmarks/probes/train_probe.py).
    The weights are plain attributes, so a trainer may change them between steps.
    """

    def __init__(self, gate_pos_weight: float = 5.0, gate_loss_weight: float = 1.0,
                 guided_attention_weight: float = 1.0, guided_attention_sigma: float = 0.2) -> None:
        super().__init__()
        checks = {"gate_pos_weight": (gate_pos_weight, False, 5.0), "gate_loss_weight": (gate_loss_weight, True, 1.0),
                  "guided_attention_weight": (guided_attention_weight, True, 1.0),
                  "guided_attention_sigma": (guided_attention_sigma, False, 0.2)}
        for name, (value, zero_ok, default) in checks.items():
            if not (math.isfinite(value) and (value >= 0.0 if zero_ok else value > 0.0)):
                bound = ">= 0" if zero_ok else "> 0"
                raise LossConfigError(f"{name} must be finite and {bound}, got {value!r}; use e.g. {default}")
        self.gate_pos_weight = float(gate_pos_weight)
        self.gate_loss_weight = float(gate_loss_weight)
        self.guided_attention_weight = float(guided_attention_weight)
        self.guided_attention_sigma = float(guided_attention_sigma)

    def forward(self, out: Tacotron2Output, batch: BatchLike) -> LossTerms:
        n_frames = out.mel.size(2)
        frame_mask = lengths_to_mask(batch.mel_lengths, n_frames)  # (B, T)
        n_real = frame_mask.sum().clamp(min=1)
        target = batch.mels[..., :n_frames]  # (B, n_mels, T)
        mel = self._masked_mse(out.mel, target, frame_mask, n_real)
        mel_postnet = self._masked_mse(out.mel_postnet, target, frame_mask, n_real)
        pos_weight = torch.tensor(self.gate_pos_weight, device=out.gate_logits.device)
        bce = nn.functional.binary_cross_entropy_with_logits(
            out.gate_logits, batch.gate_targets[:, :n_frames].to(out.gate_logits.dtype),
            pos_weight=pos_weight, reduction="none")  # (B, T)
        gate = torch.where(frame_mask, bce, torch.zeros_like(bce)).sum() / n_real
        guided = self.guided_attention(out.alignments, batch.text_lengths, batch.mel_lengths, n_frames)
        total = mel + mel_postnet + self.gate_loss_weight * gate + self.guided_attention_weight * guided
        return LossTerms(total, mel, mel_postnet, gate, guided)

    @staticmethod
    def _masked_mse(prediction: Tensor, target: Tensor, frame_mask: Tensor, n_real: Tensor) -> Tensor:
        squared = (prediction - target) ** 2  # (B, n_mels, T)
        squared = torch.where(frame_mask.unsqueeze(1), squared, torch.zeros_like(squared))
        return squared.sum() / (n_real * prediction.size(1))

    def guided_attention(self, alignments: Tensor, text_lengths: Tensor, mel_lengths: Tensor,
                         n_frames: int) -> Tensor:
        """Sum of A * W over the real (decoder step, character) region / number of real decoder steps.

        alignments (B, T_dec, L); r is recovered as ceil(n_frames / T_dec).
        """
        b, t_dec, length = alignments.shape
        r = math.ceil(n_frames / t_dec)
        penalty = alignments.new_zeros(b, t_dec, length)  # (B, T_dec, L) W, 0 outside the real region
        region = torch.zeros(b, t_dec, length, dtype=torch.bool, device=alignments.device)
        total_steps = 0
        for i, (n_chars, n_mel) in enumerate(zip(text_lengths.tolist(), mel_lengths.tolist())):
            n_steps = min(t_dec, math.ceil(n_mel / r))
            n_chars = min(length, n_chars)
            penalty[i, :n_steps, :n_chars] = guided_attention_weights(
                n_steps, n_chars, self.guided_attention_sigma, alignments.device)
            region[i, :n_steps, :n_chars] = True
            total_steps += n_steps
        weighted = torch.where(region, alignments * penalty, torch.zeros_like(alignments))
        return weighted.sum() / max(total_steps, 1)
