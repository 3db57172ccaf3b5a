"""Train/validation split and length-bucketed batches of a FeatureSet (re-exported by model.data).

Batches are padded: texts with the pad id 0, mels with 0.0 up to a multiple of
``n_frames_per_step`` frames; gate targets are 1.0 from the last real frame on (padding included).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["LoaderError", "split_indices", "Batch", "collate", "BucketBatchSampler", "make_loader"]


class BatchSource(Protocol):
    """What batching reads of a ``model.data.FeatureSet`` (typed here, so no import cycle)."""

    text_ids: Sequence[torch.Tensor]   # (L,) int64 each
    mels: Sequence[torch.Tensor]       # (n_mels, T) float32 each
    mel_lengths: Sequence[int]

    def __len__(self) -> int: ...


class LoaderError(ValueError):
    """A split or loader argument is out of range; the message names it, its value and the fix."""


def split_indices(n: int, val_fraction: float = 0.05, seed: int = 1234,
                  min_val: int = 8) -> tuple[list[int], list[int]]:
    """Deterministic train/validation split of range(n): n_val = max(min_val, round(n *
    val_fraction)), capped at n - 1 so training keeps at least one utterance. Both sorted."""
    if n < 2:
        raise LoaderError(f"split_indices needs n >= 2 utterances, got {n!r}; fix: add utterances")
    if not 0.0 <= val_fraction < 1.0:
        raise LoaderError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    n_val = min(max(min_val, round(n * val_fraction)), n - 1)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[n_val:]), sorted(order[:n_val])


@dataclass
class Batch:
    text: torch.Tensor  # (B, L_max) int64, padded with 0
    text_lengths: torch.Tensor  # (B,) int64, sorted descending
    mels: torch.Tensor  # (B, n_mels, T_max) float32, T_max a multiple of n_frames_per_step
    mel_lengths: torch.Tensor  # (B,) int64
    gate_targets: torch.Tensor  # (B, T_max) float32, 1.0 from the last real frame on
    indices: torch.Tensor | None = None  # (B,) int64, positions in the FeatureSet

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        move = lambda t: None if t is None else t.to(device, non_blocking=non_blocking)  # noqa: E731
        return Batch(move(self.text), move(self.text_lengths), move(self.mels),
                     move(self.mel_lengths), move(self.gate_targets), move(self.indices))

    def __len__(self) -> int:
        return int(self.text.shape[0])


def collate(items: list[tuple[int, torch.Tensor, torch.Tensor]], n_frames_per_step: int = 1) -> Batch:
    """(index, text_ids (L,), mel (n_mels, T)) items -> Batch, sorted by text length descending."""
    items = sorted(items, key=lambda it: -len(it[1]))
    b = len(items)
    text_lengths = torch.tensor([len(t) for _, t, _ in items], dtype=torch.long)  # (B,)
    mel_lengths = torch.tensor([m.shape[1] for _, _, m in items], dtype=torch.long)  # (B,)
    r = n_frames_per_step
    t_max = -(-int(mel_lengths.max()) // r) * r
    text = torch.zeros(b, int(text_lengths[0]), dtype=torch.long)  # (B, L_max)
    mels = torch.zeros(b, items[0][2].shape[0], t_max)  # (B, n_mels, T_max)
    gate = torch.zeros(b, t_max)  # (B, T_max)
    for k, (_, t, m) in enumerate(items):
        text[k, : len(t)] = t
        mels[k, :, : m.shape[1]] = m
        gate[k, m.shape[1] - 1 :] = 1.0
    indices = torch.tensor([i for i, _, _ in items], dtype=torch.long)
    return Batch(text, text_lengths, mels, mel_lengths, gate, indices)


class _Items(Dataset):
    def __init__(self, features: BatchSource) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        return i, self.features.text_ids[i], self.features.mels[i]


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar mel length. Each epoch: shuffle the indices (seed + epoch), cut them
    into buckets of batch_size * 10, sort each bucket by length, cut it into batches, shuffle
    the batch order. Without shuffle the order is fixed; without bucketing no sorting."""

    def __init__(self, indices: list[int], lengths: list[int], batch_size: int, shuffle: bool,
                 seed: int, bucket: bool, drop_last: bool) -> None:
        self.indices, self.lengths = list(indices), lengths
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.bucket, self.drop_last = bucket, drop_last
        self.epoch = 0

    def _batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + epoch)
        order = list(self.indices)
        if self.shuffle:
            rng.shuffle(order)
        size = self.batch_size * 10 if self.bucket else len(order)
        batches: list[list[int]] = []
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            if self.bucket:
                chunk.sort(key=lambda i: -self.lengths[i])
            batches += [chunk[k : k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches(self.epoch)
        self.epoch += 1
        return iter(batches)

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def make_loader(features: BatchSource, indices: list[int], batch_size: int, n_frames_per_step: int = 1,
                shuffle: bool = True, seed: int = 0, bucket: bool = True,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader of Batch over ``features[indices]`` (num_workers=0, see BucketBatchSampler)."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise LoaderError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(n_frames_per_step, int) or n_frames_per_step < 1:
        raise LoaderError(f"n_frames_per_step must be a positive integer, got {n_frames_per_step!r}")
    if not indices:
        raise LoaderError("make_loader got no indices; fix: pass the train or validation split")
    bad = [i for i in indices if not 0 <= i < len(features)]
    if bad:
        raise LoaderError(f"indices {bad[:5]} are outside the {len(features)} utterances")
    if drop_last and batch_size > len(indices):
        raise LoaderError(
            f"batch_size {batch_size} > {len(indices)} utterances with drop_last=True gives no "
            f"batches; fix: lower batch_size to <= {len(indices)}"
        )
    sampler = BucketBatchSampler(indices, features.mel_lengths, batch_size, shuffle, seed, bucket, drop_last)
    return DataLoader(_Items(features), batch_sampler=sampler, num_workers=0,
                      collate_fn=functools.partial(collate, n_frames_per_step=n_frames_per_step))
