"""Building blocks of Tacotron2 (after NVIDIA/tacotron2 ``layers.py`` and ``model.py``).

Shapes use B = batch, L = text length, T = mel frames, E = encoder width, n_mels = mel bins.
No module here moves tensors between devices; ``lengths.cpu()`` for ``pack_padded_sequence``
is what PyTorch's API requires.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """Boolean mask ``(B, max_len)``: True at real positions ``t < lengths[b]``."""
    max_len = int(lengths.max().item()) if max_len is None else max_len
    positions = torch.arange(max_len, device=lengths.device)  # (max_len,)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)  # (B, max_len)


class LinearNorm(nn.Linear):
    """``nn.Linear`` with Xavier-uniform weights scaled by ``gain(w_init_gain)``."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True,
                 w_init_gain: str = "linear") -> None:
        self.w_init_gain = w_init_gain
        super().__init__(in_dim, out_dim, bias=bias)

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight, gain=nn.init.calculate_gain(self.w_init_gain))
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class ConvNorm(nn.Conv1d):
    """``nn.Conv1d`` with 'same' padding (odd kernels) and Xavier-uniform weights."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, bias: bool = True,
                 w_init_gain: str = "linear") -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}; "
                             f"use e.g. {kernel_size + 1}")
        self.w_init_gain = w_init_gain
        super().__init__(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=bias)

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight, gain=nn.init.calculate_gain(self.w_init_gain))
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class Prenet(nn.Module):
    """Two ReLU layers with dropout ``p`` that stays ON in eval mode too (Tacotron2 paper, sec. 2.3).

    The always-on dropout is the noise source that lets the autoregressive decoder cope with its
    own imperfect predictions at inference, so it is not part of ``Tacotron2.set_dropout``.
    ``(..., in_dim) -> (..., dim)``.
    """

    def __init__(self, in_dim: int, dim: int, p: float = 0.5) -> None:
        super().__init__()
        self.layers = nn.ModuleList([LinearNorm(in_dim, dim, bias=False), LinearNorm(dim, dim, bias=False)])
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        for linear in self.layers:
            x = F.dropout(F.relu(linear(x)), p=self.p, training=True)
        return x


class LocationLayer(nn.Module):
    """Location features of the attention: conv over (previous, cumulative) weights, then a projection.

    ``(B, 2, L) -> (B, L, attention_dim)``.
    """

    def __init__(self, n_filters: int, kernel_size: int, attention_dim: int) -> None:
        super().__init__()
        self.conv = ConvNorm(2, n_filters, kernel_size, bias=False)
        self.dense = LinearNorm(n_filters, attention_dim, bias=False, w_init_gain="tanh")

    def forward(self, weights_cat: Tensor) -> Tensor:
        features = self.conv(weights_cat)  # (B, n_filters, L)
        return self.dense(features.transpose(1, 2))  # (B, L, attention_dim)


class Attention(nn.Module):
    """Location-sensitive attention (Chorowski et al. 2015), as in NVIDIA tacotron2.

    energies[b, l] = v . tanh(W q_b + V m_{b,l} + U f_{b,l}); padded text positions get -inf,
    so their weight after the softmax is exactly 0.
    """

    def __init__(self, query_dim: int, memory_dim: int, attention_dim: int, n_filters: int,
                 kernel_size: int) -> None:
        super().__init__()
        self.query_layer = LinearNorm(query_dim, attention_dim, bias=False, w_init_gain="tanh")
        self.memory_layer = LinearNorm(memory_dim, attention_dim, bias=False, w_init_gain="tanh")
        self.v = LinearNorm(attention_dim, 1, bias=False)
        self.location_layer = LocationLayer(n_filters, kernel_size, attention_dim)

    def reset_parameters(self) -> None:
        """Re-initialise query/memory layers, v and the location layer (fresh Xavier weights)."""
        for module in self.modules():
            if isinstance(module, (LinearNorm, ConvNorm)):
                module.reset_parameters()

    def forward(self, query: Tensor, memory: Tensor, processed_memory: Tensor, weights_cat: Tensor,
                mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """One decoder step.

        query (B, query_dim); memory (B, L, E); processed_memory (B, L, attention_dim);
        weights_cat (B, 2, L); mask (B, L) True at PADDED positions.
        Returns context (B, E) and weights (B, L).
        """
        processed_query = self.query_layer(query).unsqueeze(1)  # (B, 1, attention_dim)
        location = self.location_layer(weights_cat)  # (B, L, attention_dim)
        energies = self.v(torch.tanh(processed_query + location + processed_memory)).squeeze(-1)  # (B, L)
        if mask is not None:
            energies = energies.masked_fill(mask, float("-inf"))
        weights = F.softmax(energies, dim=1)  # (B, L)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, E)
        return context, weights


class Postnet(nn.Module):
    """Five (configurable) 1-D convolutions with batch norm predicting a residual for the mel.

    tanh after every layer but the last; dropout ``p`` (the tuner's ``dropout``) after each layer,
    active only in training mode. ``(B, n_mels, T) -> (B, n_mels, T)``.
    """

    def __init__(self, n_mels: int, channels: int, kernel_size: int, n_convolutions: int, p: float = 0.5) -> None:
        super().__init__()
        if n_convolutions < 2:
            raise ValueError(f"postnet_n_convolutions must be >= 2, got {n_convolutions}; use 3 or 5")
        dims = [n_mels] + [channels] * (n_convolutions - 1) + [n_mels]
        self.convs = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            gain = "linear" if i == n_convolutions - 1 else "tanh"
            self.convs.append(nn.Sequential(ConvNorm(d_in, d_out, kernel_size, w_init_gain=gain),
                                            nn.BatchNorm1d(d_out)))
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x)  # (B, C, T)
            if i < len(self.convs) - 1:
                x = torch.tanh(x)
            x = F.dropout(x, self.p, self.training)
        return x


class Encoder(nn.Module):
    """Convolutions (ReLU, batch norm, dropout ``p``) then a BiLSTM over packed sequences.

    ``(B, E, L)`` embedded text and lengths ``(B,)`` -> ``(B, L, E)``; outputs at padded positions are 0.
    Padded positions are zeroed after every convolution, so padding never leaks into real characters
    (an item's encoding does not depend on the batch it is in).
    """

    def __init__(self, dim: int, kernel_size: int, n_convolutions: int, p: float = 0.5) -> None:
        super().__init__()
        if dim % 2 != 0:
            raise ValueError(f"encoder_embedding_dim must be even (BiLSTM halves), got {dim}; use {dim + 1}")
        self.convs = nn.ModuleList(
            nn.Sequential(ConvNorm(dim, dim, kernel_size, w_init_gain="relu"), nn.BatchNorm1d(dim))
            for _ in range(n_convolutions))
        self.lstm = nn.LSTM(dim, dim // 2, num_layers=1, batch_first=True, bidirectional=True)
        self.p = p

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        real = lengths_to_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)  # (B, 1, L)
        for conv in self.convs:
            x = F.dropout(F.relu(conv(x * real)), self.p, self.training)  # (B, E, L)
        x = x.transpose(1, 2)  # (B, E, L) -> (B, L, E)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=x.size(1))
        return outputs  # (B, L, E)
