"""Datasets in LJSpeech layout: validation and a mel feature cache (batching: model.batches).

``root/metadata.csv`` holds ``id|text`` or ``id|text|normalized text`` lines (UTF-8, the
normalized text is used when present) and ``root/wavs/<id>.wav`` the audio. Features are
computed once and stored in one ``torch.save`` file, so trials load plain tensors and never
touch audio code. The split and the loader live in ``model.batches`` and are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

import soundfile as sf
import torch
from tqdm import tqdm

from model.audio import AudioConfig, load_wav, mel_spectrogram
from model.batches import Batch, LoaderError, collate, make_loader, split_indices
from model.text import CLEANERS, SymbolSet, UnknownCharacterError

__all__ = [
    "DatasetError", "LoaderError", "Utterance", "read_metadata", "FeatureSet", "prepare_features",
    "load_features", "features_path", "check_features", "split_indices", "Batch", "collate",
    "make_loader",
]

_CACHE_VERSION = 1
_HASHES_FILE = "wav-hashes.json"   # in the cache folder: content hashes of the wavs, see below


class DatasetError(ValueError):
    """The dataset cannot be used; the message names the file (and metadata line) and the fix."""


@dataclass(frozen=True)
class Utterance:
    id: str
    text: str  # the normalized text when metadata.csv has it, else the text
    wav_path: Path
    line: int  # 1-based line in metadata.csv


def _metadata_file(root: str | Path) -> Path:
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise DatasetError(
            f"dataset folder {folder} does not exist; fix: pass an LJSpeech-layout folder "
            f"(metadata.csv + wavs/) or build one with `smart-tuner corpus {folder}`"
        )
    meta = folder / "metadata.csv"
    if not meta.is_file():
        raise DatasetError(
            f"{meta} is missing; fix: add metadata.csv with lines 'id|text|normalized text'"
        )
    return meta


def read_metadata(root: str | Path) -> list[Utterance]:
    """Read and validate ``root/metadata.csv`` and the wavs it names; blank lines are skipped.

    Raises DatasetError (naming metadata.csv and the line, or the wav file) for: a missing
    folder or metadata.csv, a line without 2 or 3 '|'-separated fields, an empty id or text, a
    repeated id, a missing or unreadable wav, or a wav with no samples.
    """
    meta = _metadata_file(root)
    try:
        lines = meta.read_text(encoding="utf-8-sig").splitlines()   # a leading BOM is dropped
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{meta} cannot be read as UTF-8 text ({e}); fix: save it as UTF-8") from e
    wavs = meta.parent / "wavs"
    seen: dict[str, int] = {}
    out: list[Utterance] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{meta} line {number}"
        fields = raw.split("|")
        if len(fields) not in (2, 3):
            raise DatasetError(
                f"{where}: expected 2 or 3 '|'-separated fields (id|text|normalized text), "
                f"got {len(fields)} in {raw[:60]!r}; fix: remove extra '|' or add the text"
            )
        uid = fields[0].strip()
        text = (fields[2] if len(fields) == 3 and fields[2].strip() else fields[1]).strip()
        if not uid:
            raise DatasetError(f"{where}: empty id; fix: start the line with the wav's name")
        if not text:
            raise DatasetError(f"{where}: empty text for {uid!r}; fix: add its transcript or drop the line")
        if uid in (".", "..") or any(c in uid for c in "/\\\0"):
            raise DatasetError(f"{where}: id {uid!r} is not a file name inside {wavs}; fix: use the "
                               "wav's name without folders or '..' (e.g. 'LJ001-0001')")
        if uid in seen:
            raise DatasetError(f"{where}: id {uid!r} repeats line {seen[uid]}; fix: keep one line per wav")
        seen[uid] = number
        wav = wavs / f"{uid}.wav"
        _check_wav(wav, where)
        out.append(Utterance(uid, text, wav, number))
    if not out:
        raise DatasetError(f"{meta} has no utterances; fix: add lines 'id|text|normalized text'")
    return out


def _check_wav(wav: Path, where: str) -> None:
    if not wav.is_file():
        raise DatasetError(f"{wav} is missing (named at {where}); fix: add the wav or drop the line")
    try:
        info = sf.info(str(wav))
    except Exception as e:  # libsndfile raises its own error types for corrupt files
        raise DatasetError(
            f"{wav} is unreadable (named at {where}): {str(e).splitlines()[0]}; fix: re-export it as PCM wav"
        ) from e
    if info.frames == 0:
        raise DatasetError(f"{wav} has no audio samples (named at {where}); fix: replace it or drop the line")


@dataclass
class FeatureSet:
    """What trials load: encoded texts and log-mels, with the symbols and audio settings used."""

    ids: list[str]
    texts: list[str]  # cleaned texts, as encoded
    text_ids: list[torch.Tensor]  # (L,) int64 each, eos included
    mels: list[torch.Tensor]  # (n_mels, T) float32 each
    symbols: SymbolSet
    audio: AudioConfig
    cleaner: str = "english"  # key of model.text.CLEANERS applied before encoding
    mel_lengths: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.mel_lengths:
            self.mel_lengths = [int(m.shape[1]) for m in self.mels]

    def __len__(self) -> int:
        return len(self.ids)

    def encode(self, text: str) -> torch.Tensor:
        """Clean and encode a new text as the dataset's were: (L,) int64, eos included."""
        return torch.tensor(self.symbols.encode(CLEANERS[self.cleaner](text)), dtype=torch.long)


def _file_sha1(path: str) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _wav_hashes(wavs: Path, memo_dir: Path) -> list[tuple[str, str]]:
    """(name, sha1 of the content) of each file in wavs/, by name.

    A file is hashed once: its hash is kept in ``<memo_dir>/wav-hashes.json`` with its size,
    mtime, ctime and inode, and read again only while all four are unchanged. Replacing a wav
    (even by one of the same size with its mtime copied) changes its ctime, so it is hashed
    again. The memo is best effort: a folder that cannot be written only costs re-hashing.
    """
    memo_path = memo_dir / _HASHES_FILE
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    prefix = str(wavs.resolve()) + os.sep
    kept = {k: v for k, v in memo.items() if not k.startswith(prefix)}   # other datasets' entries
    out: list[tuple[str, str]] = []
    for entry in sorted(os.scandir(wavs), key=lambda e: e.name):
        if not entry.is_file():
            continue
        st = entry.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        known = memo.get(prefix + entry.name)
        sha = known[4] if isinstance(known, list) and known[:4] == stamp else _file_sha1(entry.path)
        kept[prefix + entry.name] = [*stamp, sha]
        out.append((entry.name, sha))
    if kept != memo:
        try:
            memo_dir.mkdir(parents=True, exist_ok=True)
            tmp = memo_dir / f".{_HASHES_FILE}.{os.getpid()}.{random.getrandbits(32):08x}.tmp"
            tmp.write_text(json.dumps(kept), encoding="utf-8")
            os.replace(tmp, memo_path)
        except OSError:
            pass
    return out


def _dataset_fingerprint(meta: Path, memo_dir: Path) -> str:
    """sha1 of metadata.csv and of the name and content hash of each file in wavs/."""
    h = hashlib.sha1(meta.read_bytes())
    wavs = meta.parent / "wavs"
    if wavs.is_dir():
        for name, sha in _wav_hashes(wavs, memo_dir):
            h.update(f"{name}:{sha};".encode())
    return h.hexdigest()[:12]


def features_path(root: str | Path, audio: AudioConfig = AudioConfig(),
                  cache_dir: str | Path | None = None, symbols: SymbolSet | None = None) -> Path:
    """Where the feature cache of this dataset and these settings lives (it may not exist yet):
    ``<cache_dir or root/.cache>/features-<audio key>-<dataset hash>-<symbols key>.pt``; the
    dataset hash covers metadata.csv and the content of every wav (see :func:`_wav_hashes`)."""
    meta = _metadata_file(root)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else meta.parent / ".cache"
    sym = "auto" if symbols is None else hashlib.sha1("".join(symbols.symbols).encode()).hexdigest()[:8]
    return folder / f"features-{audio.cache_key()}-{_dataset_fingerprint(meta, folder)}-{sym}.pt"


def _choose_text(utts: list[Utterance], symbols: SymbolSet | None) -> tuple[SymbolSet, str, list[str]]:
    """English symbols and cleaners when every cleaned text fits them; otherwise the basic
    cleaners and a symbol set built from the dataset's texts (e.g. Russian)."""
    english = SymbolSet.english()
    if symbols is None or symbols == english:
        cleaned = [CLEANERS["english"](u.text) for u in utts]
        if symbols is not None or all(not english.unknown(t) for t in cleaned):
            return english, "english", cleaned
    cleaned = [CLEANERS["basic"](u.text) for u in utts]
    return symbols or SymbolSet.from_texts(cleaned), "basic", cleaned


def _compute(root: str | Path, audio: AudioConfig, symbols: SymbolSet | None, progress: bool) -> dict:
    utts = read_metadata(root)
    symbols, cleaner, cleaned = _choose_text(utts, symbols)
    text_ids: list[torch.Tensor] = []
    for u, t in zip(utts, cleaned):
        try:
            text_ids.append(torch.tensor(symbols.encode(t), dtype=torch.long))  # (L,)
        except UnknownCharacterError as e:
            raise DatasetError(f"{u.wav_path.parent.parent / 'metadata.csv'} line {u.line}: {e}") from e
    mels: list[torch.Tensor] = []
    for u in tqdm(utts, desc="mel features", unit="utt", disable=not progress):
        try:
            wav = load_wav(u.wav_path, audio.sampling_rate)  # (N,)
            mels.append(torch.from_numpy(mel_spectrogram(wav, audio)))  # (n_mels, T)
        except Exception as e:  # unreadable data, no samples, NaN/Inf samples
            raise DatasetError(
                f"{u.wav_path} (metadata.csv line {u.line}) gives no features: "
                f"{str(e).splitlines()[0]}; fix: re-export it as finite PCM audio or drop the line"
            ) from e
    return {
        "version": _CACHE_VERSION, "ids": [u.id for u in utts], "texts": cleaned,
        "text_ids": torch.cat(text_ids), "text_lengths": [len(t) for t in text_ids],
        "mels": torch.cat(mels, dim=1), "mel_lengths": [int(m.shape[1]) for m in mels],
        "symbols": list(symbols.symbols), "cleaner": cleaner, "audio": asdict(audio),
    }


def prepare_features(root: str | Path, audio: AudioConfig = AudioConfig(),
                     cache_dir: str | Path | None = None, symbols: SymbolSet | None = None,
                     progress: bool = True) -> Path:
    """Compute the features once and return the cache file; an existing cache is reused.

    The file is written to a temporary name and renamed (os.replace), so a concurrent trial
    sees either no file or a whole one. ``symbols=None`` picks english() when it covers the
    dataset, else SymbolSet.from_texts of the dataset.
    """
    path = features_path(root, audio, cache_dir, symbols)
    if path.is_file():
        return path
    payload = _compute(root, audio, symbols, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{random.getrandbits(32):08x}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_features(root: str | Path, audio: AudioConfig = AudioConfig(), cache_dir: str | Path | None = None,
                  symbols: SymbolSet | None = None, progress: bool = False) -> FeatureSet:
    """prepare_features if the cache is missing, then load it (torch.load, weights_only=True)."""
    path = prepare_features(root, audio, cache_dir, symbols, progress)
    d = _read_cache(path)
    return FeatureSet(
        ids=d["ids"], texts=d["texts"],
        text_ids=list(torch.split(d["text_ids"], d["text_lengths"])),
        mels=list(torch.split(d["mels"], d["mel_lengths"], dim=1)),
        symbols=SymbolSet(tuple(d["symbols"])), audio=AudioConfig(**d["audio"]),
        cleaner=d["cleaner"], mel_lengths=list(d["mel_lengths"]),
    )


def _read_cache(path: Path) -> dict:
    """The cache's payload, checked whole; DatasetError naming the file and the fix otherwise."""
    fix = (f"fix: delete it (rm {shlex.quote(str(path))}) and run the command again: the cache "
           "is rebuilt from the dataset")
    try:
        d = torch.load(path, weights_only=True)
        if d.get("version") != _CACHE_VERSION:
            raise DatasetError(f"{path} is a feature cache of another version; {fix}")
        n = len(d["ids"])
        whole = (len(d["texts"]) == len(d["text_lengths"]) == len(d["mel_lengths"]) == n
                 and int(d["text_ids"].numel()) == sum(d["text_lengths"])
                 and int(d["mels"].shape[1]) == sum(d["mel_lengths"]))
    except DatasetError:
        raise
    except Exception as e:  # torch's zip reader, unpickler or a missing key: the file is damaged
        raise DatasetError(f"feature cache {path} is damaged (truncated or overwritten: "
                           f"{(str(e).splitlines() or [type(e).__name__])[0]}); {fix}") from e
    if not whole:
        raise DatasetError(f"feature cache {path} is damaged (its lengths do not add up); {fix}")
    return d


def check_features(path: str | Path) -> None:
    """Read a feature cache whole (e.g. when a sweep starts, before any trial loads it); raise
    DatasetError naming the file and how to rebuild it when it is truncated or damaged."""
    _read_cache(Path(path))
