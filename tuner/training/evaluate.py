"""Validation pass of ``train_tts``: teacher-forced loss terms and alignment/gate metrics.

Every metric is the mean over validation utterances (batch means weighted by batch size).
``validation.attention_score`` and ``validation.gate_accuracy`` use the teacher-forced alignments
and gate logits (model/metrics.py documents their formulas); ``validation.early_stop_fraction``
is the fraction of utterances whose gate fires before 30% of their frames. NaN policy: a
non-finite batch value makes the mean non-finite (kept, never replaced).

``refresh_batchnorm`` runs before every validation: BatchNorm's running statistics (an exponential
average of earlier steps' batch statistics, momentum 0.1) lag behind weights that still move fast,
which doubled the postnet's eval-mode loss of young trials (7.22 against 3.70 with statistics
re-estimated from the same weights, BENCHMARKS.md). They are re-estimated from a fixed set of
training batches with the current weights (a cumulative average, dropout as in eval mode), so the
validation loss and ``overfitting.gap`` measure the model, not the staleness of its statistics.
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

__all__ = ["ValidationSample", "validate", "refresh_batchnorm"]

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
def refresh_batchnorm(
    model: torch.nn.Module,
    batches: Iterable,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager],
) -> int:
    """Re-estimate every BatchNorm's running mean/variance from ``batches`` (model/data.py
    ``Batch``) with the current weights: statistics reset, then a cumulative average over the
    batches (``momentum=None``) with the rest of the model in eval mode (dropout as validation
    sees it). Weights, gradients and the model's train/eval mode are left as they were.
    Returns the number of batches used (0: no BatchNorm or no batches, nothing changed)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    batches = list(batches)
    if not norms or not batches:
        return 0
    was_training = model.training
    momenta = [m.momentum for m in norms]
    model.eval()
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the refresh batches
            m.train()
        for batch in batches:
            batch = batch.to(device)
            with autocast():
                model(batch.text, batch.text_lengths, batch.mels, batch.mel_lengths)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    return len(batches)


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
