"""Audio front end: wav loading with resampling, and NVIDIA-tacotron2 log-mel spectrograms.

mel = log(clamp(M @ |STFT(wav)|, 1e-5)) with M = librosa's Slaney mel filterbank (as NVIDIA),
a Hann window, centred frames with reflect padding; T = 1 + len(wav) // hop_length frames.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch

__all__ = ["AudioConfig", "AudioConfigError", "load_wav", "mel_spectrogram", "n_frames"]

# Bump when the feature computation changes, so old feature caches are not reused.
_FEATURE_VERSION = 1
LOG_CLAMP = 1e-5


class AudioConfigError(ValueError):
    """An AudioConfig field has an impossible value."""


@dataclass(frozen=True)
class AudioConfig:
    """STFT and mel settings; the defaults are NVIDIA tacotron2's (LJSpeech, 22050 Hz).

    ``hop_length`` 256 samples is 11.6 ms per mel frame at 22050 Hz (86.1 frames per second).
    """

    sampling_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0

    def __post_init__(self) -> None:
        for name in ("sampling_rate", "n_fft", "hop_length", "win_length", "n_mels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise AudioConfigError(f"audio.{name} must be a positive integer, got {value!r}")
        if self.win_length > self.n_fft:
            raise AudioConfigError(
                f"audio.win_length {self.win_length} > n_fft {self.n_fft}; fix: set win_length <= n_fft"
            )
        if not 0.0 <= self.fmin < self.fmax <= self.sampling_rate / 2:
            raise AudioConfigError(
                f"audio.fmin/fmax must satisfy 0 <= fmin < fmax <= sampling_rate / 2 "
                f"({self.sampling_rate / 2}), got fmin={self.fmin!r}, fmax={self.fmax!r}"
            )

    def cache_key(self) -> str:
        """Short stable hash (12 hex digits) of the settings and the feature-code version."""
        payload = json.dumps({**asdict(self), "version": _FEATURE_VERSION}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:12]


def load_wav(path: str | Path, sampling_rate: int) -> np.ndarray:
    """Read a sound file as float32 mono in [-1, 1]: channels are averaged, and the signal is
    resampled with soxr (librosa, "soxr_hq") when the file's rate differs from ``sampling_rate``.
    Returns (N,) float32. Raises soundfile's error for a missing or unreadable file."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (N, channels)
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]  # (N,)
    if rate != sampling_rate and wav.size:
        wav = librosa.resample(wav, orig_sr=rate, target_sr=sampling_rate, res_type="soxr_hq")
    return np.ascontiguousarray(wav, dtype=np.float32)


@lru_cache(maxsize=8)
def _mel_basis(cfg: AudioConfig) -> torch.Tensor:
    basis = librosa.filters.mel(
        sr=cfg.sampling_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    )  # (n_mels, n_fft // 2 + 1), Slaney scale and area normalisation (NVIDIA's choice)
    return torch.from_numpy(basis.astype(np.float32))


@lru_cache(maxsize=8)
def _window(win_length: int) -> torch.Tensor:
    return torch.hann_window(win_length, periodic=True)


def n_frames(n_samples: int, cfg: AudioConfig) -> int:
    """Mel frames for ``n_samples`` samples: 1 + n_samples // hop_length (centred frames)."""
    return 1 + n_samples // cfg.hop_length


def mel_spectrogram(wav: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """Log-mel spectrogram of a float mono signal: (N,) -> (n_mels, 1 + N // hop) float32.

    Magnitude STFT (not power), Slaney mel filterbank, natural log after clamping at 1e-5, so
    silence is log(1e-5) = -11.51. Raises ValueError on an empty or non-finite signal.
    """
    if wav.ndim != 1 or wav.size == 0:
        raise ValueError(f"mel_spectrogram needs a non-empty 1-D signal, got shape {wav.shape}")
    if not np.isfinite(wav).all():
        raise ValueError("mel_spectrogram got NaN or Inf samples; fix: check the wav file")
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))  # (N,)
    pad = cfg.n_fft // 2
    # reflect padding needs N > pad; shorter signals are zero-padded to length pad + 1 first
    if x.numel() <= pad:
        x = torch.nn.functional.pad(x, (0, pad + 1 - x.numel()))
    spec = torch.stft(
        x, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window=_window(cfg.win_length), center=True, pad_mode="reflect", return_complex=True,
    ).abs()  # (n_fft // 2 + 1, T')
    spec = spec[:, : n_frames(wav.size, cfg)]  # (n_freq, T)
    mel = _mel_basis(cfg) @ spec  # (n_mels, T)
    return torch.log(torch.clamp(mel, min=LOG_CLAMP)).numpy().astype(np.float32, copy=False)
