"""Tests of model/metrics.py on constructed alignments and gate outputs."""

from __future__ import annotations

import math

import pytest
import torch

from model.metrics import (MetricInputError, alignment_components, attention_score, diagonality,
                           early_stop_fraction, gate_accuracy)

T_DEC, N_CHARS = 90, 40  # decoder steps and characters of the constructed alignments


def one_hot_path(positions: list[int], n_chars: int = N_CHARS) -> torch.Tensor:
    a = torch.zeros(len(positions), n_chars)  # (T_dec, N)
    a[torch.arange(len(positions)), torch.tensor(positions)] = 1.0
    return a


def blur(a: torch.Tensor, width: float) -> torch.Tensor:
    """Gaussian smear of each row around its peak (a realistic, not quite sharp alignment)."""
    n = torch.arange(a.size(1), dtype=torch.float32)
    rows = torch.exp(-((n.unsqueeze(0) - a.argmax(1, keepdim=True)) ** 2) / (2 * width**2))
    return rows / rows.sum(1, keepdim=True)


def make_alignment(kind: str) -> torch.Tensor:
    diag = [t * N_CHARS // T_DEC for t in range(T_DEC)]
    gen = torch.Generator().manual_seed(0)
    return {
        "diagonal": lambda: one_hot_path(diag),
        "soft diagonal": lambda: blur(one_hot_path(diag), 0.8),
        "uniform": lambda: torch.full((T_DEC, N_CHARS), 1.0 / N_CHARS),
        "random": lambda: torch.softmax(torch.randn(T_DEC, N_CHARS, generator=gen), dim=1),
        "stuck on one": lambda: one_hot_path([3] * T_DEC),
        "stuck on three": lambda: one_hot_path([3 + t % 3 for t in range(T_DEC)]),
        "reversed": lambda: one_hot_path([N_CHARS - 1 - n for n in diag]),
        "short": lambda: one_hot_path([t * (N_CHARS // 2) // T_DEC for t in range(T_DEC)]),
        "jitter": lambda: one_hot_path([min(N_CHARS - 1, max(0, n + (3 if t % 2 else -3)))
                                        for t, n in enumerate(diag)]),
    }[kind]()


def batch_of(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return a.unsqueeze(0), torch.tensor([a.size(1)]), torch.tensor([a.size(0)])


@pytest.mark.parametrize("kind, low, high", [
    ("diagonal", 0.9, 1.0),
    ("soft diagonal", 0.7, 0.8),
    ("uniform", 0.0, 0.1),
    ("random", 0.0, 0.1),
    ("stuck on one", 0.0, 0.1),
    ("stuck on three", 0.0, 0.1),
    ("reversed", 0.0, 0.1),
    ("short", 0.0, 0.5),
    ("jitter", 0.0, 0.6),
])
def test_attention_score_table(kind: str, low: float, high: float) -> None:
    score = attention_score(*batch_of(make_alignment(kind)))
    assert low <= score <= high + 1e-9, f"{kind}: {score}"


@pytest.mark.parametrize("kind, expected", [
    ("diagonal", (1.0, 1.0, 1.0)),
    ("stuck on one", (1.0, 1 / N_CHARS, 1.0)),
    ("reversed", (1.0, 1.0, 0.0)),
    ("short", (1.0, 0.5, 1.0)),
    ("uniform", (2 / N_CHARS, 1 / N_CHARS, 1.0)),
])
def test_alignment_components(kind: str, expected: tuple[float, float, float]) -> None:
    assert alignment_components(make_alignment(kind)) == pytest.approx(expected)


def test_single_character_text() -> None:
    a = torch.ones(1, 5, 1)
    assert attention_score(a, torch.tensor([1]), torch.tensor([5])) == 1.0


@pytest.mark.parametrize("r", [1, 2, 3])
def test_attention_score_ignores_padding(r: int) -> None:
    """Item 1 (20 chars, 30 steps) is padded to the batch; garbage in its padding must not count."""
    a = torch.zeros(2, T_DEC, N_CHARS)
    a[0] = make_alignment("diagonal")
    a[1, :30, :20] = one_hot_path([t * 20 // 30 for t in range(30)], 20)
    a[1, 30:, 5] = 1.0  # past its last decoder step: stuck, ignored
    score = attention_score(a, torch.tensor([N_CHARS, 20]), torch.tensor([T_DEC * r, 30 * r - (r - 1)]), r)
    assert score == pytest.approx(1.0)


@pytest.mark.parametrize("kind, low, high", [("diagonal", 0.95, 1.0), ("reversed", 0.0, 0.15),
                                             ("uniform", 0.1, 0.3), ("stuck on one", 0.0, 0.2)])
def test_diagonality(kind: str, low: float, high: float) -> None:
    assert low <= diagonality(*batch_of(make_alignment(kind))) <= high


def test_attention_score_is_batch_mean() -> None:
    a = torch.stack([make_alignment("diagonal"), make_alignment("reversed")])
    lengths = torch.tensor([N_CHARS, N_CHARS]), torch.tensor([T_DEC, T_DEC])
    assert attention_score(a, *lengths) == pytest.approx(0.5)


MEL_LEN = 100


def gate_from_first_fire(first_fire: int | None, n_frames: int = MEL_LEN + 20,
                         start_only: bool = False) -> torch.Tensor:
    """Logits (1, T): -10 before ``first_fire``, +10 from it on (only at the start if ``start_only``)."""
    logits = torch.full((1, n_frames), -10.0)
    if first_fire is not None:
        logits[0, first_fire:(3 if start_only else n_frames)] = 10.0
    return logits


@pytest.mark.parametrize("case, first_fire, start_only, accuracy_range, early", [
    ("correct", MEL_LEN - 1, False, (0.99, 1.0), 0.0),
    ("one frame early", MEL_LEN - 2, False, (0.98, 0.99), 0.0),
    ("never", None, False, (0.0, 0.001), 0.0),
    ("everywhere", 0, False, (0.0, 0.02), 1.0),
    ("at start", 0, True, (0.0, 0.02), 1.0),
    ("late", MEL_LEN + 5, False, (0.0, 0.001), 0.0),
    ("at 25%", 24, False, (0.2, 0.3), 1.0),
    ("at 60%", 59, False, (0.55, 0.65), 0.0),
])
def test_gate_metrics_table(case: str, first_fire: int | None, start_only: bool,
                            accuracy_range: tuple[float, float], early: float) -> None:
    logits, lengths = gate_from_first_fire(first_fire, start_only=start_only), torch.tensor([MEL_LEN])
    low, high = accuracy_range
    assert low <= gate_accuracy(logits, lengths) <= high, case
    assert early_stop_fraction(logits, lengths) == early, case


@pytest.mark.parametrize("threshold, expected", [(0.5, 1.0), (0.9, 0.7311 / 0.9)])
def test_gate_threshold(threshold: float, expected: float) -> None:
    logits = torch.full((1, 10), -5.0)
    logits[0, 9] = 1.0  # sigmoid = 0.73 at the last frame: fires at 0.5; below 0.9 -> partial credit
    assert gate_accuracy(logits, torch.tensor([10]), threshold) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("p_end, expected", [(0.0001, 0.0002), (0.1, 0.2), (0.4, 0.8), (0.49, 0.98)])
def test_gate_still_learning_gets_partial_credit(p_end: float, expected: float) -> None:
    """A gate below the threshold at the last frame scores p_end / threshold: ~0 when it never rises."""
    logits = torch.full((1, 10), -10.0)
    logits[0, 9] = math.log(p_end / (1 - p_end))
    assert gate_accuracy(logits, torch.tensor([10])) == pytest.approx(expected, abs=1e-4)


def test_gate_metrics_batch_mean() -> None:
    logits = torch.cat([gate_from_first_fire(MEL_LEN - 1), gate_from_first_fire(None), gate_from_first_fire(0),
                        gate_from_first_fire(MEL_LEN - 1)])
    lengths = torch.tensor([MEL_LEN] * 4)
    assert gate_accuracy(logits, lengths) == pytest.approx((1 + 0 + 0.01 + 1) / 4, abs=1e-4)
    assert early_stop_fraction(logits, lengths) == 0.25


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs_give_nan(bad: float) -> None:
    a, text_lengths, mel_lengths = batch_of(make_alignment("diagonal"))
    a[0, 3, 3] = bad
    gate = gate_from_first_fire(MEL_LEN - 1)
    gate[0, 5] = bad
    assert math.isnan(attention_score(a, text_lengths, mel_lengths))
    assert math.isnan(diagonality(a, text_lengths, mel_lengths))
    assert math.isnan(gate_accuracy(gate, torch.tensor([MEL_LEN])))
    assert math.isnan(early_stop_fraction(gate, torch.tensor([MEL_LEN])))


@pytest.mark.parametrize("call, message", [
    (lambda: attention_score(torch.zeros(2, 3), torch.tensor([3]), torch.tensor([2])), "alignments must have 3 dims"),
    (lambda: attention_score(torch.zeros(1, 3, 3), torch.tensor([3]), torch.tensor([3]), 0), "n_frames_per_step"),
    (lambda: gate_accuracy(torch.zeros(2, 5), torch.tensor([5])), "gate_logits must have 2 dims and batch size 1"),
    (lambda: gate_accuracy(torch.zeros(1, 5), torch.tensor([5]), 1.5), "threshold must be in"),
    (lambda: early_stop_fraction(torch.zeros(1, 5), torch.tensor([5]), fraction=0.0), "fraction must be in"),
])
def test_bad_arguments_raise(call, message: str) -> None:
    with pytest.raises(MetricInputError, match=message):
        call()
