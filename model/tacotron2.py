"""Tacotron2 (Shen et al. 2018) after NVIDIA/tacotron2: encoder, location-sensitive attention,
autoregressive decoder emitting ``n_frames_per_step`` (r) frames per step, postnet.

Shapes: B batch, L text length, T mel frames (a multiple of r inside the decoder), T_dec = T / r.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from model.layers import Attention, Encoder, LinearNorm, Postnet, Prenet, lengths_to_mask

GATE_PAD_LOGIT = 1e3  # gate logit written at padded frames: "already stopped" (NVIDIA mask_padding)
DECODER_DROPOUT_RATIO = 0.2  # set_dropout(p): attention/decoder RNN dropout = 0.2 * p (paper: 0.1 vs 0.5)


class Tacotron2ConfigError(ValueError):
    """A Tacotron2Config field has an unusable value; the message names the field and the fix."""


@dataclass
class Tacotron2Config:
    """Model sizes; the defaults are the paper's ("full"). ``preset("tiny", ...)`` is for CPUs."""

    n_symbols: int
    n_mels: int = 80
    n_frames_per_step: int = 1  # r: frames per decoder step; the decoder input is every r-th frame
    symbols_embedding_dim: int = 512  # must equal encoder_embedding_dim
    encoder_n_convolutions: int = 3
    encoder_embedding_dim: int = 512
    encoder_kernel_size: int = 5
    attention_rnn_dim: int = 1024
    attention_dim: int = 128
    attention_location_n_filters: int = 32
    attention_location_kernel_size: int = 31
    decoder_rnn_dim: int = 1024
    prenet_dim: int = 256
    max_decoder_steps: int = 1000  # inference step limit, in decoder steps (each emits r frames)
    gate_threshold: float = 0.5  # inference stops once sigmoid(gate logit) > this
    p_attention_dropout: float = 0.1
    p_decoder_dropout: float = 0.1
    prenet_dropout: float = 0.5  # always on, also at inference
    dropout: float = 0.5  # encoder and postnet conv dropout (the tuner's `dropout`)
    postnet_embedding_dim: int = 512
    postnet_kernel_size: int = 5
    postnet_n_convolutions: int = 5

    def __post_init__(self) -> None:
        positive = ("n_symbols", "n_mels", "n_frames_per_step", "max_decoder_steps", "attention_dim",
                    "attention_rnn_dim", "decoder_rnn_dim", "prenet_dim", "postnet_embedding_dim")
        for name in positive:
            if getattr(self, name) < 1:
                raise Tacotron2ConfigError(f"Tacotron2Config.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("p_attention_dropout", "p_decoder_dropout", "prenet_dropout", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise Tacotron2ConfigError(
                    f"Tacotron2Config.{name} must be in [0, 1), got {getattr(self, name)!r}; use e.g. 0.1")
        if not 0.0 < self.gate_threshold < 1.0:
            raise Tacotron2ConfigError(
                f"Tacotron2Config.gate_threshold must be in (0, 1), got {self.gate_threshold!r}; use 0.5")
        if self.symbols_embedding_dim != self.encoder_embedding_dim:
            raise Tacotron2ConfigError(
                f"Tacotron2Config.symbols_embedding_dim ({self.symbols_embedding_dim}) must equal "
                f"encoder_embedding_dim ({self.encoder_embedding_dim}); set both to the same value")

    @classmethod
    def preset(cls, name: str, n_symbols: int, **overrides: Any) -> Tacotron2Config:
        """``"full"`` (paper sizes) or ``"tiny"`` (learns to align on 2 CPU cores), then overrides."""
        if name not in PRESETS:
            raise Tacotron2ConfigError(f"model preset {name!r} is unknown; use one of {sorted(PRESETS)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise Tacotron2ConfigError(f"model overrides {unknown} are not Tacotron2Config fields; "
                                       f"use names from {sorted(known - {'n_symbols'})}")
        return cls(n_symbols=n_symbols, **{**PRESETS[name], **overrides})


PRESETS: dict[str, dict[str, Any]] = {
    "full": {},
    # 2.1M parameters. Measured with benchmarks/probes/train_probe.py on the built-in corpus: with
    # guided_attention_weight 1.5, lr 2e-3, batch 16, attention_score >= 0.5 after ~100 steps
    # (r=2: 125 steps, more decoder steps each). See benchmarks/results/train_probe_*.json.
    "tiny": dict(n_frames_per_step=3, symbols_embedding_dim=128, encoder_embedding_dim=128,
                 encoder_n_convolutions=2, attention_rnn_dim=256, decoder_rnn_dim=256, prenet_dim=128,
                 attention_dim=64, attention_location_n_filters=16, postnet_embedding_dim=256,
                 postnet_n_convolutions=3, max_decoder_steps=500),
}


class Tacotron2Output(NamedTuple):
    mel: Tensor  # (B, n_mels, T) before the postnet; 0 at padded frames
    mel_postnet: Tensor  # (B, n_mels, T); 0 at padded frames
    gate_logits: Tensor  # (B, T); GATE_PAD_LOGIT at padded frames; a step's gate repeated to its r frames
    alignments: Tensor  # (B, T_dec, L) attention weights per decoder step, T_dec = ceil(T / r)


class DecoderState(NamedTuple):
    attention_hidden: Tensor  # (B, attention_rnn_dim)
    attention_cell: Tensor
    decoder_hidden: Tensor  # (B, decoder_rnn_dim)
    decoder_cell: Tensor
    weights: Tensor  # (B, L) attention weights of the previous step
    weights_cum: Tensor  # (B, L) their running sum
    context: Tensor  # (B, E)


class Decoder(nn.Module):
    """Prenet -> attention LSTM -> location-sensitive attention -> decoder LSTM -> r mel frames + gate."""

    def __init__(self, cfg: Tacotron2Config) -> None:
        super().__init__()
        e, r = cfg.encoder_embedding_dim, cfg.n_frames_per_step
        self.n_mels, self.r = cfg.n_mels, r
        self.p_attention_dropout, self.p_decoder_dropout = cfg.p_attention_dropout, cfg.p_decoder_dropout
        self.prenet = Prenet(cfg.n_mels, cfg.prenet_dim, cfg.prenet_dropout)
        self.attention_rnn = nn.LSTMCell(cfg.prenet_dim + e, cfg.attention_rnn_dim)
        self.attention = Attention(cfg.attention_rnn_dim, e, cfg.attention_dim,
                                   cfg.attention_location_n_filters, cfg.attention_location_kernel_size)
        self.decoder_rnn = nn.LSTMCell(cfg.attention_rnn_dim + e, cfg.decoder_rnn_dim)
        self.projection = LinearNorm(cfg.decoder_rnn_dim + e, cfg.n_mels * r)
        self.gate = LinearNorm(cfg.decoder_rnn_dim + e, 1, w_init_gain="sigmoid")

    def initial_state(self, memory: Tensor) -> DecoderState:
        b, length, e = memory.shape  # (B, L, E)
        zeros = memory.new_zeros
        return DecoderState(zeros(b, self.attention_rnn.hidden_size), zeros(b, self.attention_rnn.hidden_size),
                            zeros(b, self.decoder_rnn.hidden_size), zeros(b, self.decoder_rnn.hidden_size),
                            zeros(b, length), zeros(b, length), zeros(b, e))

    def step(self, x: Tensor, s: DecoderState, memory: Tensor, processed_memory: Tensor,
             mask: Tensor) -> tuple[Tensor, Tensor, Tensor, DecoderState]:
        """x (B, prenet_dim) -> frames (B, n_mels * r), gate logit (B,), weights (B, L), new state."""
        h_att, c_att = self.attention_rnn(torch.cat([x, s.context], -1), (s.attention_hidden, s.attention_cell))
        h_att = nn.functional.dropout(h_att, self.p_attention_dropout, self.training)  # (B, attention_rnn_dim)
        weights_cat = torch.stack([s.weights, s.weights_cum], dim=1)  # (B, 2, L)
        context, weights = self.attention(h_att, memory, processed_memory, weights_cat, mask)  # (B, E), (B, L)
        h_dec, c_dec = self.decoder_rnn(torch.cat([h_att, context], -1), (s.decoder_hidden, s.decoder_cell))
        h_dec = nn.functional.dropout(h_dec, self.p_decoder_dropout, self.training)  # (B, decoder_rnn_dim)
        out = torch.cat([h_dec, context], -1)  # (B, decoder_rnn_dim + E)
        state = DecoderState(h_att, c_att, h_dec, c_dec, weights, s.weights_cum + weights, context)
        return self.projection(out), self.gate(out).squeeze(-1), weights, state

    def _frames(self, steps: Sequence[Tensor]) -> Tensor:
        """r-frame groups [(B, n_mels * r)] * T_dec -> (B, n_mels, T_dec * r)."""
        b = steps[0].size(0)
        mel = torch.stack(steps, dim=1).view(b, len(steps) * self.r, self.n_mels)  # (B, T, n_mels)
        return mel.transpose(1, 2)  # (B, n_mels, T)

    def forward(self, memory: Tensor, mels: Tensor, memory_lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Teacher forcing. memory (B, L, E); mels (B, n_mels, T), T a multiple of r.

        The input of step k is the last frame of group k-1 (a zero "go" frame for k = 0).
        Returns mel (B, n_mels, T), gate logits (B, T) and alignments (B, T_dec, L).
        """
        mask = ~lengths_to_mask(memory_lengths, memory.size(1))  # (B, L) True at padding
        inputs = mels[:, :, self.r - 1::self.r].permute(2, 0, 1)  # (T_dec, B, n_mels)
        inputs = torch.cat([inputs.new_zeros(1, *inputs.shape[1:]), inputs[:-1]], dim=0)
        inputs = self.prenet(inputs)  # (T_dec, B, prenet_dim)
        processed_memory = self.attention.memory_layer(memory)  # (B, L, attention_dim)
        state = self.initial_state(memory)
        outputs = []
        for x in inputs:
            frame, gate, weights, state = self.step(x, state, memory, processed_memory, mask)
            outputs.append((frame, gate, weights))
        frames, gates, alignments = zip(*outputs)
        gate_logits = torch.stack(gates, dim=1).repeat_interleave(self.r, dim=1)  # (B, T_dec) -> (B, T)
        return self._frames(frames), gate_logits, torch.stack(alignments, dim=1)

    def inference(self, memory: Tensor, memory_lengths: Tensor, max_steps: int,
                  gate_threshold: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Free running until every item's gate fired (sigmoid > gate_threshold) or max_steps steps.

        Returns mel (B, n_mels, T), gate logits (B, T), alignments (B, T_dec, L), lengths (B,) in frames;
        an item that never stopped has length max_steps * r.
        """
        b = memory.size(0)
        mask = ~lengths_to_mask(memory_lengths, memory.size(1))
        processed_memory = self.attention.memory_layer(memory)
        state, x = self.initial_state(memory), memory.new_zeros(b, self.n_mels)
        steps = torch.full((b,), max_steps, dtype=torch.long, device=memory.device)  # decoder steps per item
        outputs = []
        for k in range(max_steps):
            frame, gate, weights, state = self.step(self.prenet(x), state, memory, processed_memory, mask)
            outputs.append((frame, gate, weights))
            stopped_now = (torch.sigmoid(gate) > gate_threshold) & (steps == max_steps)
            steps = torch.where(stopped_now, torch.full_like(steps, k + 1), steps)
            if bool((steps < max_steps).all()) or k == max_steps - 1:
                break
            x = frame[:, -self.n_mels:]  # (B, n_mels) last frame of the group
        frames, gates, alignments = zip(*outputs)
        gate_logits = torch.stack(gates, dim=1).repeat_interleave(self.r, dim=1)
        return self._frames(frames), gate_logits, torch.stack(alignments, dim=1), steps * self.r


class Tacotron2(nn.Module):
    """Text ids (B, L) -> Tacotron2Output. Call ``.eval()`` before ``inference`` (prenet dropout stays on)."""

    def __init__(self, cfg: Tacotron2Config) -> None:
        super().__init__()
        self.cfg = dataclasses.replace(cfg)
        self.embedding = nn.Embedding(cfg.n_symbols, cfg.symbols_embedding_dim)
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (cfg.n_symbols + cfg.symbols_embedding_dim))
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        self.encoder = Encoder(cfg.encoder_embedding_dim, cfg.encoder_kernel_size, cfg.encoder_n_convolutions,
                               cfg.dropout)
        self.decoder = Decoder(cfg)
        self.postnet = Postnet(cfg.n_mels, cfg.postnet_embedding_dim, cfg.postnet_kernel_size,
                               cfg.postnet_n_convolutions, cfg.dropout)

    def _encode(self, text: Tensor, text_lengths: Tensor) -> Tensor:
        embedded = self.embedding(text).transpose(1, 2)  # (B, L, E) -> (B, E, L)
        return self.encoder(embedded, text_lengths)  # (B, L, E)

    def _output(self, mel: Tensor, gate_logits: Tensor, alignments: Tensor, mel_lengths: Tensor,
                n_frames: int) -> Tacotron2Output:
        """Add the postnet residual, trim to ``n_frames`` and mask frames at or past ``mel_lengths``."""
        mel_postnet = mel + self.postnet(mel)  # (B, n_mels, T)
        mel, mel_postnet, gate_logits = mel[..., :n_frames], mel_postnet[..., :n_frames], gate_logits[:, :n_frames]
        pad = ~lengths_to_mask(mel_lengths, n_frames)  # (B, T) True at padded frames
        return Tacotron2Output(mel.masked_fill(pad.unsqueeze(1), 0.0), mel_postnet.masked_fill(pad.unsqueeze(1), 0.0),
                               gate_logits.masked_fill(pad, GATE_PAD_LOGIT), alignments)

    def forward(self, text: Tensor, text_lengths: Tensor, mels: Tensor, mel_lengths: Tensor) -> Tacotron2Output:
        """Teacher forcing. text (B, L) long, 0-padded; mels (B, n_mels, T); lengths (B,).

        T need not be a multiple of r: the mels are zero-padded for the decoder and outputs trimmed to T.
        """
        n_frames, r = mels.size(2), self.cfg.n_frames_per_step
        if n_frames % r:
            mels = nn.functional.pad(mels, (0, r - n_frames % r))  # (B, n_mels, ceil(T / r) * r)
        memory = self._encode(text, text_lengths)
        mel, gate_logits, alignments = self.decoder(memory, mels, text_lengths)
        return self._output(mel, gate_logits, alignments, mel_lengths, n_frames)

    @torch.no_grad()
    def inference(self, text: Tensor, text_lengths: Tensor, max_decoder_steps: int | None = None,
                  gate_threshold: float | None = None) -> tuple[Tacotron2Output, Tensor]:
        """Free-running synthesis; defaults come from the config. Returns outputs and mel lengths (B,).

        max_decoder_steps counts decoder steps (r frames each). Frames past an item's length are masked.
        """
        max_steps = self.cfg.max_decoder_steps if max_decoder_steps is None else max_decoder_steps
        threshold = self.cfg.gate_threshold if gate_threshold is None else gate_threshold
        if max_steps < 1:
            raise ValueError(f"max_decoder_steps must be >= 1, got {max_steps!r}")
        memory = self._encode(text, text_lengths)
        mel, gate_logits, alignments, lengths = self.decoder.inference(memory, text_lengths, max_steps, threshold)
        return self._output(mel, gate_logits, alignments, lengths, mel.size(2)), lengths

    def set_dropout(self, p: float) -> None:
        """Apply the tuner's ``dropout`` hyperparameter.

        Encoder and postnet conv dropout = p; attention and decoder RNN dropout = DECODER_DROPOUT_RATIO * p
        (0.2 p: the paper's 0.1 for p = 0.5, since RNN-state dropout hurts far more at the same rate).
        The prenet dropout is structural (always on, also at inference) and is not changed.
        """
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p!r}; use e.g. 0.5")
        self.cfg.dropout = self.encoder.p = self.postnet.p = float(p)
        rnn_p = DECODER_DROPOUT_RATIO * float(p)
        self.cfg.p_attention_dropout = self.cfg.p_decoder_dropout = rnn_p
        self.decoder.p_attention_dropout = self.decoder.p_decoder_dropout = rnn_p

    def reset_attention(self) -> None:
        """Re-initialise the attention (query/memory layers, v, location layer); all else is kept."""
        self.decoder.attention.reset_parameters()
