"""A small ctypes driver for libespeak-ng, as shipped by PyPI's ``espeakng-loader``.

The library is a process-wide singleton (eSpeak NG keeps global state), so this module
initialises it once, in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode with a synth callback that collects
the int16 samples of one ``espeak_Synth`` call. Not thread-safe: synthesise from one thread.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

__all__ = ["EspeakError", "EspeakVoice", "synthesize", "espeak_sample_rate"]

# espeak_AUDIO_OUTPUT: PLAYBACK=0, RETRIEVAL=1, SYNCHRONOUS=2, SYNCH_PLAYBACK=3
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
# espeak_PARAMETER
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0

# int callback(short *wav, int numsamples, espeak_EVENT *events); return 0 to go on.
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakError(RuntimeError):
    """libespeak-ng could not be loaded, initialised, or refused a call."""


@dataclass(frozen=True)
class EspeakVoice:
    """Voice settings. ``rate`` in words per minute (eSpeak's default 175), ``pitch`` and
    ``pitch_range`` in 0-100 (defaults 50), ``volume`` in 0-200 (default 100)."""

    name: str = "en-us"
    rate: int = 165
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 100


class _Engine:
    """The initialised library, its sample rate and the sample buffer of the current call."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise EspeakError("espeakng-loader is not installed; fix: pip install espeakng-loader") from e
        lib_path = espeakng_loader.get_library_path()
        data_path = espeakng_loader.get_data_path()
        try:
            self.lib = ctypes.CDLL(lib_path)
        except OSError as e:
            raise EspeakError(f"cannot load libespeak-ng from {lib_path}: {e}") from e
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int

        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {rate}) with data path {data_path}")
        self.sample_rate: int = rate
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: EspeakVoice | None = None

    def _collect(self, wav: ctypes.POINTER(ctypes.c_short), n: int, _events: int) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def set_voice(self, voice: EspeakVoice) -> None:
        if voice == self._voice:
            return
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != _EE_OK:
            raise EspeakError(f"eSpeak NG has no voice {voice.name!r}; fix: use 'en-us' or 'en'")
        for param, value in ((_RATE, voice.rate), (_PITCH, voice.pitch),
                             (_RANGE, voice.pitch_range), (_VOLUME, voice.volume)):
            if self.lib.espeak_SetParameter(param, value, 0) != _EE_OK:
                raise EspeakError(f"espeak_SetParameter({param}, {value}) failed")
        self._voice = voice

    def synth(self, text: str, voice: EspeakVoice) -> np.ndarray:
        self.set_voice(voice)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data)
        err = self.lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != _EE_OK:
            raise EspeakError(f"espeak_Synth failed with code {err} on {text!r}")
        self.lib.espeak_Synchronize()
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks).astype(np.int16, copy=False)


_engine: _Engine | None = None
_lock = threading.Lock()


def _get_engine() -> _Engine:
    global _engine
    with _lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


def espeak_sample_rate() -> int:
    """The rate eSpeak NG synthesises at (22050 Hz for the shipped voices)."""
    return _get_engine().sample_rate


def synthesize(text: str, voice: EspeakVoice = EspeakVoice()) -> np.ndarray:
    """Speak ``text`` and return its samples: (N,) int16 at ``espeak_sample_rate()``."""
    engine = _get_engine()
    with _lock:
        return engine.synth(text, voice)
