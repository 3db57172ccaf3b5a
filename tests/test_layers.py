"""Tests of model/layers.py: initialisation, always-on prenet dropout, attention masking, encoder packing."""

from __future__ import annotations

import pytest
import torch

from model.layers import (Attention, ConvNorm, Encoder, LinearNorm, LocationLayer, Postnet, Prenet,
                          lengths_to_mask)

torch.set_num_threads(1)


@pytest.mark.parametrize("lengths, max_len, expected", [
    ([3, 1], None, [[True, True, True], [True, False, False]]),
    ([2], 4, [[True, True, False, False]]),
])
def test_lengths_to_mask(lengths: list[int], max_len: int | None, expected: list[list[bool]]) -> None:
    assert lengths_to_mask(torch.tensor(lengths), max_len).tolist() == expected


@pytest.mark.parametrize("layer, gain", [
    (LinearNorm(300, 200), 1.0),
    (LinearNorm(300, 200, w_init_gain="tanh"), 5.0 / 3.0),
    (ConvNorm(100, 120, kernel_size=5, w_init_gain="relu"), 2.0**0.5),
])
def test_xavier_init_bound_and_zero_bias(layer: torch.nn.Module, gain: float) -> None:
    fan_in = layer.weight[0].numel()
    fan_out = layer.weight.size(0) * (layer.weight[0, 0].numel() if layer.weight.dim() == 3 else 1)
    bound = gain * (6.0 / (fan_in + fan_out)) ** 0.5
    assert layer.weight.abs().max().item() <= bound + 1e-6
    assert layer.weight.abs().max().item() > 0.9 * bound
    assert torch.count_nonzero(layer.bias).item() == 0


def test_convnorm_rejects_even_kernel() -> None:
    with pytest.raises(ValueError, match="kernel_size must be odd.*got 4"):
        ConvNorm(2, 2, kernel_size=4)


def test_convnorm_keeps_length() -> None:
    assert ConvNorm(3, 5, kernel_size=31)(torch.randn(2, 3, 17)).shape == (2, 5, 17)


@pytest.mark.parametrize("train_mode", [True, False])
def test_prenet_dropout_is_on_in_both_modes(train_mode: bool) -> None:
    prenet = Prenet(8, 16, p=0.5).train(train_mode)
    x = torch.randn(4, 8)
    assert prenet(x).shape == (4, 16)
    assert not torch.equal(prenet(x), prenet(x))


def test_location_layer_shape() -> None:
    assert LocationLayer(n_filters=4, kernel_size=7, attention_dim=6)(torch.rand(3, 2, 11)).shape == (3, 11, 6)


def _attention_inputs(lengths: list[int]) -> tuple[Attention, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    b, length = len(lengths), max(lengths)
    attention = Attention(query_dim=12, memory_dim=10, attention_dim=8, n_filters=4, kernel_size=5)
    memory = torch.randn(b, length, 10)  # (B, L, E)
    mask = ~lengths_to_mask(torch.tensor(lengths), length)
    return attention, torch.randn(b, 12), memory, attention.memory_layer(memory), mask


@pytest.mark.parametrize("lengths", [[7, 7], [7, 3], [5, 1, 2]])
def test_attention_masks_padded_text(lengths: list[int]) -> None:
    attention, query, memory, processed, mask = _attention_inputs(lengths)
    context, weights = attention(query, memory, processed, torch.rand(len(lengths), 2, max(lengths)), mask)
    assert context.shape == (len(lengths), 10)
    assert torch.allclose(weights.sum(dim=1), torch.ones(len(lengths)))
    assert torch.all(weights[mask] == 0)
    assert torch.all(weights[~mask] > 0)


def test_attention_reset_parameters_changes_every_weight() -> None:
    attention = _attention_inputs([4])[0]
    before = {k: v.clone() for k, v in attention.state_dict().items()}
    attention.reset_parameters()
    after = attention.state_dict()
    assert sorted(before) == sorted(after)
    assert all(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("n_convolutions", [2, 3, 5])
def test_postnet_shape_and_eval_determinism(n_convolutions: int) -> None:
    postnet = Postnet(n_mels=6, channels=16, kernel_size=5, n_convolutions=n_convolutions, p=0.5)
    x = torch.randn(2, 6, 9)
    assert postnet(x).shape == (2, 6, 9)
    postnet.eval()
    assert torch.equal(postnet(x), postnet(x))


def test_postnet_rejects_one_layer() -> None:
    with pytest.raises(ValueError, match="postnet_n_convolutions must be >= 2, got 1"):
        Postnet(6, 16, 5, 1)


def test_encoder_packing_matches_unpadded_item() -> None:
    torch.manual_seed(0)
    encoder = Encoder(dim=8, kernel_size=3, n_convolutions=2).eval()
    x = torch.randn(2, 8, 6)  # (B, E, L)
    x[1, :, 4:] = 0.0  # item 1 has 4 real characters
    out = encoder(x, torch.tensor([6, 4]))
    assert out.shape == (2, 6, 8)
    alone = encoder(x[1:, :, :4], torch.tensor([4]))
    assert torch.allclose(out[1, :4], alone[0], atol=1e-6)
    assert torch.all(out[1, 4:] == 0)


def test_encoder_rejects_odd_dim() -> None:
    with pytest.raises(ValueError, match="encoder_embedding_dim must be even.*got 7"):
        Encoder(dim=7, kernel_size=3, n_convolutions=1)
