"""The built-in speech corpus: generated sentences spoken by eSpeak NG, in LJSpeech layout.

    out_dir/metadata.csv     id|text|normalized text     (written last, atomically)
    out_dir/wavs/<id>.wav    22050 Hz mono 16-bit PCM, silence trimmed at both ends
    out_dir/corpus.json      how it was built (n_utterances, seed, voice, format version)

A complete corpus with the same settings is reused. An interrupted build leaves a
``.building.json`` marker: a re-run with the same settings keeps the wavs already written
(each wav is written to a temporary file and renamed, so none is half written) and goes on.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from model.espeak import EspeakVoice, espeak_sample_rate, synthesize
from model.sentences import generate_sentences
from model.text import english_cleaners

__all__ = ["CorpusError", "build_corpus", "trim_silence", "VOICE", "CORPUS_VERSION"]

CORPUS_VERSION = 1
VOICE = EspeakVoice(name="en-us", rate=165, pitch=50, pitch_range=50, volume=100)
_MARKER = ".building.json"
_INFO = "corpus.json"
_ID = re.compile(r"^ST-\d{4,}\.wav$")
# trimming: a 10 ms frame is speech when its peak exceeds 1% of the utterance's peak;
# keep 40 ms of margin around the speech so onsets and releases are not clipped.
_TRIM_FRAME_S = 0.010
_TRIM_RELATIVE = 0.01
_TRIM_MARGIN_S = 0.040


class CorpusError(ValueError):
    """The output folder cannot take the built-in corpus."""


def trim_silence(samples: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Cut leading and trailing silence: (N,) -> (M,), M <= N.

    A frame of 10 ms counts as sound when its peak |x| exceeds 1% of the signal's peak; 40 ms
    of margin is kept on each side. An all-zero signal is returned unchanged.
    """
    peak = int(np.abs(samples).max()) if samples.size else 0
    if peak == 0:
        return samples
    frame = max(1, int(_TRIM_FRAME_S * sampling_rate))
    n_frames = -(-samples.size // frame)
    padded = np.zeros(n_frames * frame, dtype=np.int32)
    padded[: samples.size] = np.abs(samples.astype(np.int32))
    loud = np.nonzero(padded.reshape(n_frames, frame).max(axis=1) > _TRIM_RELATIVE * peak)[0]
    margin = int(_TRIM_MARGIN_S * sampling_rate)
    start = max(0, loud[0] * frame - margin)
    end = min(samples.size, (loud[-1] + 1) * frame + margin)
    return samples[start:end]


def _settings(n_utterances: int, seed: int) -> dict:
    return {"version": CORPUS_VERSION, "n_utterances": n_utterances, "seed": seed,
            "voice": asdict(VOICE), "sampling_rate": espeak_sample_rate()}


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _is_complete(out: Path, settings: dict) -> bool:
    info = _read_json(out / _INFO)
    if info is None or info.get("settings") != settings or not (out / "metadata.csv").is_file():
        return False
    ids = info.get("ids", [])
    return len(ids) == settings["n_utterances"] and all(
        (out / "wavs" / f"{i}.wav").is_file() for i in ids
    )


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CorpusError(f"corpus folder {out} is a file; fix: pass a folder path")
    if (out / "metadata.csv").exists() and not (out / _INFO).exists():
        raise CorpusError(
            f"{out} already holds a dataset not built by smart-tuner (metadata.csv without "
            f"{_INFO}); fix: choose an empty or new folder"
        )


def build_corpus(out_dir: str | Path, n_utterances: int = 600, seed: int = 0,
                 progress: bool = True) -> Path:
    """Build (or reuse) the built-in corpus in ``out_dir`` and return its path.

    Sentences come from ``model.sentences.generate_sentences(n_utterances, seed)``; eSpeak NG
    speaks the normalized text (``english_cleaners``) with one fixed voice (``VOICE``).
    """
    if not isinstance(n_utterances, int) or n_utterances < 1:
        raise CorpusError(f"n_utterances must be a positive integer, got {n_utterances!r}")
    out = Path(out_dir).expanduser()
    _check_folder(out)
    settings = _settings(n_utterances, seed)
    if _is_complete(out, settings):
        return out

    wavs = out / "wavs"
    wavs.mkdir(parents=True, exist_ok=True)
    marker = _read_json(out / _MARKER)
    resume = marker is not None and marker.get("settings") == settings
    if not resume:
        # a different or unknown earlier build: drop its metadata and our wavs, keep anything else
        for stale in (out / "metadata.csv", out / _INFO):
            stale.unlink(missing_ok=True)
        for f in wavs.iterdir():
            if _ID.match(f.name):
                f.unlink()
        _write_atomic(out / _MARKER, json.dumps({"settings": settings}))

    sentences = generate_sentences(n_utterances, seed)
    width = max(4, len(str(n_utterances)))
    rate = settings["sampling_rate"]
    lines: list[str] = []
    ids: list[str] = []
    for k, text in enumerate(tqdm(sentences, desc="corpus", unit="utt", disable=not progress)):
        uid = f"ST-{k + 1:0{width}d}"
        normalized = english_cleaners(text)
        path = wavs / f"{uid}.wav"
        if not (resume and path.is_file()):
            samples = trim_silence(synthesize(normalized, VOICE), rate)  # (N,) int16
            if samples.size == 0:
                raise CorpusError(f"eSpeak NG produced no audio for {normalized!r}")
            tmp = wavs / f".{uid}.{os.getpid()}.tmp"
            sf.write(str(tmp), samples, rate, subtype="PCM_16", format="WAV")
            os.replace(tmp, path)
        ids.append(uid)
        lines.append(f"{uid}|{text}|{normalized}")

    _write_atomic(out / _INFO, json.dumps({"settings": settings, "ids": ids}, indent=1))
    _write_atomic(out / "metadata.csv", "\n".join(lines) + "\n")
    (out / _MARKER).unlink(missing_ok=True)
    return out
