"""Validation pass of ``train_tts``: teacher-forced loss terms and alignment/gate metrics.

Every metric is the mean over validation utterances (batch means weighted by batch size).
``validation.attention_score`` and ``validation.gate_accuracy`` use the teacher-forced alignments
and gate logits (model/metrics.py documents their formulas); ``validation.early_stop_fraction``
is the fraction of utterances whose gate fires before 30% of their frames. NaN policy: a
non-finite batch value makes the mean non-finite (kept, never replaced).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from model.loss import Tacotron2Loss
from model.metrics import attention_score, early_stop_fraction, gate_accuracy
from model.tacotron2 import Tacotron2

__all__ = ["ValidationSample", "validate"]

TERM_NAMES = ("mel", "mel_postnet", "gate", "guided_attention")


@dataclass
class ValidationSample:
    """One validation utterance for images (numpy, real frames/characters only)."""

    alignment: np.ndarray  # (T_dec, L)
    mel_target: np.ndarray  # (n_mels, T)
    mel_predicted: np.ndarray  # (n_mels, T) after the postnet
    gate_predicted: np.ndarray  # (T,) sigmoid(gate logit)
    gate_target: np.ndarray  # (T,) 0/1


@torch.no_grad()
def validate(
    model: Tacotron2,
    criterion: Tacotron2Loss,
    batches: Iterable,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager],
    gate_threshold: float,
) -> tuple[dict[str, float], ValidationSample | None]:
    """Run the model over ``batches`` (model/data.py ``Batch``) in eval mode.

    Returns ``validation.*`` metrics (plain floats) and the first utterance of the first batch.
    """
    r = model.cfg.n_frames_per_step
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    sample: ValidationSample | None = None
    try:
        for batch in batches:
            batch = batch.to(device)
            with autocast():
                out = model(batch.text, batch.text_lengths, batch.mels, batch.mel_lengths)
                terms = criterion(out, batch)
            out = type(out)(*(t.float() for t in out))  # autocast may give bf16 outputs
            n = int(batch.text.size(0))
            values = {"validation.loss": float(terms.total)}
            values.update({f"validation.loss_{k}": float(getattr(terms, k)) for k in TERM_NAMES})
            values["validation.attention_score"] = attention_score(
                out.alignments, batch.text_lengths, batch.mel_lengths, r
            )
            values["validation.gate_accuracy"] = gate_accuracy(
                out.gate_logits, batch.mel_lengths, gate_threshold
            )
            values["validation.early_stop_fraction"] = early_stop_fraction(
                out.gate_logits, batch.mel_lengths, gate_threshold
            )
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + n * float(value)
            count += n
            if sample is None:
                sample = _sample(out, batch, r)
    finally:
        model.train(was_training)
    return {k: v / max(count, 1) for k, v in sums.items()}, sample


def _sample(out, batch, r: int) -> ValidationSample:
    """Utterance 0 of ``batch`` cut to its real length."""
    t = int(batch.mel_lengths[0])
    length = int(batch.text_lengths[0])
    t_dec = -(-t // r)  # ceil(T / r) decoder steps
    return ValidationSample(
        alignment=out.alignments[0, :t_dec, :length].cpu().numpy(),  # (T_dec, L)
        mel_target=batch.mels[0, :, :t].float().cpu().numpy(),  # (n_mels, T)
        mel_predicted=out.mel_postnet[0, :, :t].cpu().numpy(),  # (n_mels, T)
        gate_predicted=torch.sigmoid(out.gate_logits[0, :t]).cpu().numpy(),  # (T,)
        gate_target=batch.gate_targets[0, :t].float().cpu().numpy(),  # (T,)
    )
