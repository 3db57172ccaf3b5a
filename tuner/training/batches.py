"""Deterministic, resumable batch order for ``train_tts``.

The batches of epoch ``e`` are a pure function of ``(seed, e, batch_size)``: the loader is built
with ``seed + e`` and its batch sampler is drawn once, under RNGs seeded from ``(seed, e)`` and
isolated from the training RNGs. A checkpoint stores ``(epoch, batch_in_epoch)``; a resumed trial
rebuilds the epoch and skips the batches already trained on, so N steps + save + restore + M
steps sees exactly the batches of N + M uninterrupted steps. A changed ``batch_size`` on restore
starts a new epoch (the old position means nothing in the new order).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from model.data import Batch, FeatureSet, make_loader
from tuner.training.checkpoint import capture_rng, restore_rng

__all__ = ["EpochBatches", "isolated_rng"]


@contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Seed torch, numpy and python RNGs with ``seed`` inside; restore the outer states after."""
    saved = capture_rng()
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        restore_rng(saved)


class EpochBatches:
    """Training batches, epoch after epoch, from a saved position."""

    def __init__(
        self, features: FeatureSet, indices: list[int], batch_size: int, n_frames_per_step: int, seed: int
    ) -> None:
        self.features = features
        self.indices = indices
        self.batch_size = batch_size
        self.r = n_frames_per_step
        self.seed = seed
        self.epoch = 0
        self.batch_in_epoch = 0  # batches of `epoch` already handed out

    def seek(self, epoch: int, batch_in_epoch: int) -> None:
        """Continue at batch ``batch_in_epoch`` of ``epoch`` (from a checkpoint)."""
        self.epoch, self.batch_in_epoch = int(epoch), int(batch_in_epoch)

    def __iter__(self) -> Iterator[Batch]:
        while True:
            with isolated_rng(self.seed * 1_000_003 + self.epoch):
                loader = make_loader(
                    self.features, self.indices, self.batch_size, self.r, shuffle=True,
                    seed=self.seed + self.epoch, drop_last=False,
                )
                order = [list(b) for b in loader.batch_sampler]
            for i in range(self.batch_in_epoch, len(order)):
                self.batch_in_epoch = i + 1
                yield loader.collate_fn([loader.dataset[j] for j in order[i]])
            self.epoch += 1
            self.batch_in_epoch = 0
