"""Validation metrics of Tacotron2 as plain Python floats (what crosses into ``tuner/``).

Conventions shared by every function here:

- Only the real region of each utterance counts: decoder steps ``k < ceil(mel_lengths[b] / r)``
  and characters ``n < text_lengths[b]`` for alignments; frames ``t < mel_lengths[b]`` for gates.
- NaN policy: if any input value is NaN or infinite, the result is ``float('nan')``, never 0,
  so that the tuner's rules see a broken model as broken rather than as "collapsed".
- Batch results are the plain mean over utterances.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class MetricInputError(ValueError):
    """Metric inputs with inconsistent shapes or invalid arguments; the message names the argument."""


def _check_batch(name: str, values: Tensor, lengths: Tensor, dims: int) -> None:
    if values.dim() != dims or values.size(0) != lengths.size(0):
        raise MetricInputError(f"{name} must have {dims} dims and batch size {lengths.size(0)} "
                               f"(from the lengths), got shape {tuple(values.shape)}")


def _real_alignments(alignments: Tensor, text_lengths: Tensor, mel_lengths: Tensor,
                     n_frames_per_step: int) -> list[Tensor]:
    """Per utterance: the (decoder steps, characters) real block of ``alignments`` (B, T_dec, L), float64."""
    _check_batch("alignments", alignments, text_lengths, 3)
    if n_frames_per_step < 1:
        raise MetricInputError(f"n_frames_per_step must be >= 1, got {n_frames_per_step!r}")
    blocks = []
    for a, n_chars, n_mel in zip(alignments.detach().double(), text_lengths.tolist(), mel_lengths.tolist()):
        n_steps = min(a.size(0), math.ceil(n_mel / n_frames_per_step))
        blocks.append(a[:max(n_steps, 1), :max(min(n_chars, a.size(1)), 1)])
    return blocks


def alignment_components(a: Tensor) -> tuple[float, float, float]:
    """(focus, coverage, monotonicity) of one real alignment block ``a`` (T_dec, N).

    With p_t = argmax_n a[t, n] and d_t = p_{t+1} - p_t:
      focus        = mean_t max_n (a[t, n] + a[t, n+1])   (1: one character, or a pair in transition,
                                                           per step; 2/N: uniform; a[t, 0] if N = 1)
      coverage     = (max_t p_t - min_t p_t + 1) / N      (share of the text the peak travels over)
      monotonicity = sum_t max(d_t, 0) / sum_t |d_t|      (1 if the peak never moves: forward share of moves)
    """
    pairs = a[:, :-1] + a[:, 1:] if a.size(1) > 1 else a  # (T_dec, N - 1) mass of adjacent pairs
    focus = float(pairs.max(dim=1).values.mean())
    peaks = a.argmax(dim=1)  # (T_dec,)
    coverage = float(peaks.max() - peaks.min() + 1) / a.size(1)
    moves = peaks.diff().double()
    travelled = float(moves.abs().sum())
    monotonicity = 1.0 if travelled == 0 else float(moves.clamp(min=0).sum()) / travelled
    return focus, coverage, monotonicity


def attention_score(alignments: Tensor, text_lengths: Tensor, mel_lengths: Tensor,
                    n_frames_per_step: int = 1) -> float:
    """Alignment quality in [0, 1]: mean over utterances of focus * coverage * monotonicity.

    See :func:`alignment_components`. Every factor must be high for a high score: a clean diagonal
    scores ~1; uniform attention has focus 2/N; attention stuck on a few characters has coverage
    ~k/N; a reversed (right-to-left) alignment has monotonicity 0; one that stops at half the text
    has coverage 0.5. Jittery back-and-forth peaks get monotonicity ~0.5. Focus counts the best pair
    of adjacent characters because a sharp alignment splits its weight between two neighbours while
    it moves from one to the next (a plain max would rate such a clean, soft diagonal ~0.5).
    alignments (B, T_dec, L); lengths (B,). NaN/Inf anywhere in ``alignments`` -> NaN.
    """
    if not bool(torch.isfinite(alignments).all()):
        return float("nan")
    blocks = _real_alignments(alignments, text_lengths, mel_lengths, n_frames_per_step)
    return sum(math.prod(alignment_components(a)) for a in blocks) / len(blocks)


def diagonality(alignments: Tensor, text_lengths: Tensor, mel_lengths: Tensor, n_frames_per_step: int = 1,
                band: float = 0.1) -> float:
    """Share of attention mass near the diagonal, in [0, 1], averaged over utterances.

    diagonality = mean_t sum_n a[t, n] * [|n / N - t / T| <= band]  on the real block (T, N).
    A linear diagonal scores 1; uniform attention ~2 * band. NaN/Inf anywhere -> NaN.
    """
    if not bool(torch.isfinite(alignments).all()):
        return float("nan")
    scores = []
    for a in _real_alignments(alignments, text_lengths, mel_lengths, n_frames_per_step):
        t = torch.arange(a.size(0), dtype=torch.float64).unsqueeze(1) / a.size(0)  # (T, 1)
        n = torch.arange(a.size(1), dtype=torch.float64).unsqueeze(0) / a.size(1)  # (1, N)
        scores.append(float((a * ((n - t).abs() <= band)).sum(dim=1).mean()))
    return sum(scores) / len(scores)


def _first_fire(gate_logits: Tensor, mel_lengths: Tensor,
                threshold: float) -> list[tuple[int | None, int, float]]:
    """Per utterance: (first real frame where sigmoid(logit) > threshold, or None; real length n;
    sigmoid(logit) at the last real frame)."""
    _check_batch("gate_logits", gate_logits, mel_lengths, 2)
    if not 0.0 < threshold < 1.0:
        raise MetricInputError(f"threshold must be in (0, 1), got {threshold!r}; use 0.5")
    probs = torch.sigmoid(gate_logits.detach().double())  # (B, T)
    result = []
    for row, n in zip(probs, mel_lengths.tolist()):
        n = max(1, min(int(n), row.size(0)))
        hits = (row[:n] > threshold).nonzero()
        result.append((int(hits[0]) if len(hits) else None, n, float(row[n - 1])))
    return result


def gate_accuracy(gate_logits: Tensor, mel_lengths: Tensor, threshold: float = 0.5) -> float:
    """Stop-gate quality in [0, 1]: mean over utterances of the share of the utterance that would be
    spoken before the gate stops it.

    With f = first real frame where sigmoid(logit) > threshold, n = real length and
    p_end = sigmoid(logit) at the last real frame:
      score = (f + 1) / n          if the gate fires inside the utterance (1 when it fires at the last frame),
      score = p_end / threshold    if it never fires inside it: synthesis would not stop there yet.
    A gate that never rises (collapsed: p_end ~ 0) scores ~0; one still learning, about to fire at
    the right frame, gets partial credit (p_end 0.4 at threshold 0.5 -> 0.8), so the score moves
    smoothly while a young model learns where utterances end instead of jumping between 0 and 1.
    A gate firing everywhere or at the start scores ~1/n; firing at 30% of the utterance ~0.3.
    Frames past ``mel_lengths`` are ignored (the model writes "stop" there). gate_logits (B, T).
    NaN/Inf anywhere in ``gate_logits`` -> NaN.
    """
    if not bool(torch.isfinite(gate_logits).all()):
        return float("nan")
    scores = [p_end / threshold if f is None else (f + 1) / n
              for f, n, p_end in _first_fire(gate_logits, mel_lengths, threshold)]
    return sum(scores) / len(scores)


def early_stop_fraction(gate_logits: Tensor, mel_lengths: Tensor, threshold: float = 0.5,
                        fraction: float = 0.3) -> float:
    """Share of utterances whose gate first fires before ``fraction`` of their real length, in [0, 1].

    early_b = [f_b < fraction * n_b], f_b the first real frame with sigmoid(logit) > threshold
    (a gate that never fires is not early). NaN/Inf anywhere in ``gate_logits`` -> NaN.
    """
    if not 0.0 < fraction <= 1.0:
        raise MetricInputError(f"fraction must be in (0, 1], got {fraction!r}; use 0.3")
    if not bool(torch.isfinite(gate_logits).all()):
        return float("nan")
    fires = _first_fire(gate_logits, mel_lengths, threshold)
    return sum(f is not None and f < fraction * n for f, n, _ in fires) / len(fires)
