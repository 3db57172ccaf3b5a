from __future__ import annotations

import pytest
import torch

from model.batches import Batch, LoaderError, collate, make_loader, split_indices
from model.data import FeatureSet

torch.set_num_threads(1)


@pytest.mark.parametrize(
    "n, val_fraction, min_val, n_val",
    [(600, 0.05, 8, 30), (24, 0.05, 8, 8), (5, 0.05, 8, 4), (100, 0.2, 1, 20), (2, 0.0, 0, 0)],
)
def test_split_indices(n: int, val_fraction: float, min_val: int, n_val: int) -> None:
    train, val = split_indices(n, val_fraction, seed=7, min_val=min_val)
    assert len(val) == n_val and sorted(train + val) == list(range(n))
    assert (train, val) == split_indices(n, val_fraction, seed=7, min_val=min_val)
    if n >= 100:
        assert val != split_indices(n, val_fraction, seed=8, min_val=min_val)[1]


@pytest.mark.parametrize("n, val_fraction", [(1, 0.05), (10, 1.0), (10, -0.1)])
def test_split_rejects(n: int, val_fraction: float) -> None:
    with pytest.raises(LoaderError):
        split_indices(n, val_fraction)


def _item(i: int, n_text: int, n_frames: int) -> tuple[int, torch.Tensor, torch.Tensor]:
    """Utterance i: n_text ids ending with eos, a (80, n_frames) mel filled with i."""
    text = torch.tensor([2 + k for k in range(n_text - 1)] + [1], dtype=torch.long)  # (L,)
    return i, text, torch.full((80, n_frames), float(i))


@pytest.mark.parametrize(
    "lengths, r, t_max",
    [([(5, 10), (7, 13), (3, 4)], 1, 13), ([(5, 10), (7, 13)], 3, 15), ([(4, 9)], 3, 9), ([(2, 1)], 2, 2)],
)
def test_collate_pads_and_sets_gate_targets(lengths: list[tuple[int, int]], r: int, t_max: int) -> None:
    batch = collate([_item(i, lt, lm) for i, (lt, lm) in enumerate(lengths)], n_frames_per_step=r)
    b = len(lengths)
    assert batch.mels.shape == (b, 80, t_max) and batch.gate_targets.shape == (b, t_max)
    assert batch.text_lengths.tolist() == sorted((lt for lt, _ in lengths), reverse=True)
    assert batch.text.shape == (b, max(lt for lt, _ in lengths))
    for k in range(b):
        i, n_text, n_mel = int(batch.indices[k]), int(batch.text_lengths[k]), int(batch.mel_lengths[k])
        assert (n_text, n_mel) == lengths[i]
        assert batch.text[k, n_text - 1] == 1 and (batch.text[k, n_text:] == 0).all()
        assert (batch.mels[k, :, :n_mel] == float(i)).all() and (batch.mels[k, :, n_mel:] == 0).all()
        assert batch.gate_targets[k].tolist() == [0.0] * (n_mel - 1) + [1.0] * (t_max - n_mel + 1)


def test_loader_batches_cover_the_split(features: FeatureSet) -> None:
    train, _ = split_indices(len(features))
    loader = make_loader(features, train, batch_size=4, n_frames_per_step=2, seed=3)
    seen: list[int] = []
    for batch in loader:
        assert isinstance(batch, Batch) and batch.mels.shape[2] % 2 == 0
        assert batch.mels.shape[2] == -(-int(batch.mel_lengths.max()) // 2) * 2
        assert (batch.text_lengths[:-1] >= batch.text_lengths[1:]).all()
        seen += batch.indices.tolist()
    assert sorted(seen) == train and len(loader) == 4
    epoch2 = [b.indices.tolist() for b in loader]
    assert sorted(sum(epoch2, [])) == train  # a new epoch reshuffles but covers the same set


def test_loader_is_deterministic_by_seed(features: FeatureSet) -> None:
    idx = list(range(len(features)))
    order = lambda seed: [b.indices.tolist() for b in make_loader(features, idx, 4, seed=seed)]  # noqa: E731
    assert order(1) == order(1)
    assert order(1) != order(2)
    fixed = [b.indices.tolist() for b in make_loader(features, idx, 4, shuffle=False)]
    assert fixed == [b.indices.tolist() for b in make_loader(features, idx, 4, shuffle=False)]


def test_bucketing_groups_similar_lengths(features: FeatureSet) -> None:
    idx = list(range(len(features)))

    def waste(bucket: bool) -> int:
        loader = make_loader(features, idx, 3, seed=0, bucket=bucket)
        return sum(int(b.mel_lengths.max()) * len(b) - int(b.mel_lengths.sum()) for b in loader)

    assert waste(True) < waste(False)  # fewer padded frames


def test_drop_last_and_batch_to(features: FeatureSet) -> None:
    loader = make_loader(features, list(range(10)), 4, drop_last=True)
    batches = list(loader)
    assert len(batches) == len(loader) == 2 and all(len(b) == 4 for b in batches)
    moved = batches[0].to("cpu")
    assert torch.equal(moved.mels, batches[0].mels) and moved.indices is not None


@pytest.mark.parametrize(
    "kwargs, match",
    [({"batch_size": 0}, "batch_size"), ({"n_frames_per_step": 0}, "n_frames_per_step"),
     ({"indices": []}, "no indices"), ({"indices": [0, 99]}, "outside"),
     ({"batch_size": 50, "drop_last": True}, "lower batch_size")],
)
def test_make_loader_rejects(features: FeatureSet, kwargs: dict, match: str) -> None:
    args = {"indices": list(range(len(features))), "batch_size": 4, **kwargs}
    with pytest.raises(LoaderError, match=match):
        make_loader(features, **args)
