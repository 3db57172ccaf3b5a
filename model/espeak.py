"""A small ctypes driver for libespeak-ng, as shipped by PyPI's ``espeakng-loader``.

The library is a process-wide singleton (eSpeak NG keeps global state), so this module
initialises it once, in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode with a synth callback that collects
the int16 samples of one ``espeak_Synth`` call. Calls are serialised by a lock.

Determinism: eSpeak's wave generator keeps state across calls in function statics (the pitch
"flutter" table index and the "roughness" cycle counter), so the same text can come out a few
samples longer or with a different waveform depending on what was spoken before. The driver
therefore runs eSpeak on a mirror of ``espeak-ng-data`` (symbolic links in a temporary folder)
that adds one voice variant, ``smarttuner``, with ``flutter 0`` and ``roughness 0``: with it the
same text gives the same samples, whatever came before. Where symbolic links are not allowed the
shipped data and the plain voice are used, and output may vary by a few samples.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["EspeakError", "EspeakVoice", "synthesize", "espeak_sample_rate", "is_deterministic"]

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
    steady: bool = True  # add the ``smarttuner`` variant (no flutter, no roughness): deterministic
    rate: int = 165
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 100


_VARIANT = "smarttuner"
_VARIANT_TEXT = "language variant\nname smarttuner\nflutter 0\nroughness 0\n"


def _steady_data_dir(data: Path) -> Path | None:
    """A temporary mirror of eSpeak's data folder (symbolic links) that adds the ``smarttuner``
    voice variant; removed at exit. None where symbolic links cannot be made."""
    mirror = Path(tempfile.mkdtemp(prefix="smart-tuner-espeak-"))
    atexit.register(shutil.rmtree, mirror, ignore_errors=True)
    try:
        for entry in data.iterdir():
            if entry.name != "voices":
                os.symlink(entry, mirror / entry.name)
        (mirror / "voices").mkdir()
        for entry in (data / "voices").iterdir():
            if entry.name != "!v":
                os.symlink(entry, mirror / "voices" / entry.name)
        (mirror / "voices" / "!v").mkdir()
        for entry in (data / "voices" / "!v").iterdir():
            os.symlink(entry, mirror / "voices" / "!v" / entry.name)
        (mirror / "voices" / "!v" / _VARIANT).write_text(_VARIANT_TEXT, encoding="ascii")
    except OSError:
        return None
    return mirror


class _Engine:
    """The initialised library, its sample rate and the sample buffer of the current call."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise EspeakError("espeakng-loader is not installed; fix: pip install espeakng-loader") from e
        lib_path = espeakng_loader.get_library_path()
        shipped = espeakng_loader.get_data_path()
        mirror = _steady_data_dir(Path(shipped))
        self.steady_available = mirror is not None
        data_path = str(mirror) if mirror is not None else shipped
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
        name = f"{voice.name}+{_VARIANT}" if voice.steady and self.steady_available else voice.name
        self._voice = None  # unknown until every setting below has been applied
        if self.lib.espeak_SetVoiceByName(name.encode()) != _EE_OK:
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


def is_deterministic() -> bool:
    """Whether steady voices give identical samples for identical texts on this machine."""
    return _get_engine().steady_available


def synthesize(text: str, voice: EspeakVoice = EspeakVoice()) -> np.ndarray:
    """Speak ``text`` and return its samples: (N,) int16 at ``espeak_sample_rate()``."""
    engine = _get_engine()
    with _lock:
        return engine.synth(text, voice)
