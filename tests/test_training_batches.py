"""EpochBatches: the batch order is a pure function of (seed, epoch) and resumes exactly."""

from __future__ import annotations

import itertools

import pytest
import torch

from model.data import FeatureSet
from tuner.training.batches import EpochBatches, isolated_rng


def ids(batches, n: int) -> list[list[int]]:
    return [b.indices.tolist() for b in itertools.islice(batches, n)]


@pytest.mark.parametrize("batch_size, stop_after", [(3, 2), (3, 6), (5, 7), (16, 1)])
def test_resume_continues_the_same_order(features: FeatureSet, batch_size: int, stop_after: int) -> None:
    train = list(range(16))
    whole = ids(iter(EpochBatches(features, train, batch_size, 3, seed=4)), stop_after + 4)
    first = EpochBatches(features, train, batch_size, 3, seed=4)
    head = ids(iter(first), stop_after)
    torch.rand(5)  # training draws from the global RNG in between: the order must not care
    resumed = EpochBatches(features, train, batch_size, 3, seed=4)
    resumed.seek(first.epoch, first.batch_in_epoch)
    assert head + ids(iter(resumed), 4) == whole


def test_epochs_differ_and_cover_the_split(features: FeatureSet) -> None:
    batches = EpochBatches(features, list(range(16)), 4, 3, seed=0)
    epoch0, epoch1 = ids(iter(batches), 4), ids(iter(batches), 4)
    assert epoch0 != epoch1
    assert sorted(sum(epoch0, [])) == list(range(16))


def test_isolated_rng_restores_the_outer_state() -> None:
    state = torch.get_rng_state()
    with isolated_rng(123):
        inside = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), state)
    with isolated_rng(123):
        assert torch.equal(torch.rand(3), inside)
