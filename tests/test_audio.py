from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from model.audio import AudioConfig, AudioConfigError, load_wav, mel_spectrogram, n_frames

torch.set_num_threads(1)
CFG = AudioConfig()


def _sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 4000.0])
def test_sine_energy_lands_in_its_mel_bin(freq: float) -> None:
    wav = _sine(freq, 1.0, CFG.sampling_rate)
    mel = mel_spectrogram(wav, CFG)
    assert mel.shape == (80, 1 + wav.size // 256) and mel.dtype == np.float32
    centres = librosa.mel_frequencies(n_mels=CFG.n_mels + 2, fmin=CFG.fmin, fmax=CFG.fmax)[1:-1]
    expected = int(np.argmin(np.abs(centres - freq)))
    loudest = np.bincount(mel[:, 5:-5].argmax(axis=0)).argmax()
    assert abs(int(loudest) - expected) <= 1
    assert mel.max() > 0.0 and mel.min() >= np.log(1e-5) - 1e-6


def test_silence_is_the_log_floor() -> None:
    mel = mel_spectrogram(np.zeros(5000, dtype=np.float32), CFG)
    assert np.allclose(mel, np.log(1e-5))


@pytest.mark.parametrize("n_samples", [1, 100, 512, 513, 22050])
def test_frame_count(n_samples: int) -> None:
    wav = np.random.default_rng(0).uniform(-0.1, 0.1, n_samples).astype(np.float32)
    assert mel_spectrogram(wav, CFG).shape == (80, n_frames(n_samples, CFG))


@pytest.mark.parametrize("wav", [np.zeros(0, np.float32), np.array([0.0, np.nan], np.float32)])
def test_bad_signals_raise(wav: np.ndarray) -> None:
    with pytest.raises(ValueError):
        mel_spectrogram(wav, CFG)


@pytest.mark.parametrize(
    "rate, channels, subtype", [(16000, 1, "PCM_16"), (22050, 2, "PCM_16"), (44100, 1, "FLOAT")]
)
def test_load_wav_resamples_and_mixes_down(tmp_path: Path, rate: int, channels: int, subtype: str) -> None:
    tone = _sine(1000.0, 0.5, rate)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    path = tmp_path / "x.wav"
    sf.write(path, data, rate, subtype=subtype)
    wav = load_wav(path, 22050)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(wav.size - 11025) <= 2
    spectrum = np.abs(np.fft.rfft(wav))
    assert abs(np.argmax(spectrum) * 22050 / wav.size - 1000.0) < 5.0  # the tone keeps its pitch
    assert 0.45 < np.abs(wav).max() < 0.55


def test_cache_key_is_stable_and_setting_sensitive() -> None:
    assert AudioConfig().cache_key() == AudioConfig().cache_key()
    assert len(AudioConfig().cache_key()) == 12
    assert AudioConfig(n_mels=64).cache_key() != AudioConfig().cache_key()


@pytest.mark.parametrize(
    "kwargs, field",
    [({"n_fft": 0}, "n_fft"), ({"win_length": 2048}, "win_length"), ({"fmax": 20000.0}, "fmax"),
     ({"hop_length": 25.6}, "hop_length")],
)
def test_bad_audio_config(kwargs: dict, field: str) -> None:
    with pytest.raises(AudioConfigError, match=field):
        AudioConfig(**kwargs)
