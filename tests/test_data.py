from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from model.audio import AudioConfig
from model.data import (
    DatasetError,
    FeatureSet,
    check_features,
    features_path,
    load_features,
    prepare_features,
    read_metadata,
)
from model.text import SymbolSet

torch.set_num_threads(1)


def _tone_dataset(root: Path, rows: list[str], seconds: float = 0.3, rate: int = 22050) -> Path:
    """A tiny LJSpeech-layout dataset: metadata rows as given, a tone wav for each id."""
    (root / "wavs").mkdir(parents=True)
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for k, row in enumerate(rows):
        t = np.arange(int(seconds * (k + 1) * rate)) / rate
        sf.write(root / "wavs" / f"{row.split('|')[0]}.wav", 0.3 * np.sin(2 * np.pi * 440 * t), rate)
    return root


def _copy(corpus_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(corpus_dir, tmp_path / "ds", ignore=shutil.ignore_patterns(".cache")))


def _lines(root: Path) -> list[str]:
    return (root / "metadata.csv").read_text().splitlines()


def _set_line(n: int, text: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        lines = _lines(root)
        lines[n - 1] = text
        (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return edit


def _wav(uid: str, action: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / "wavs" / f"{uid}.wav"
        if action == "delete":
            path.unlink()
        elif action == "garbage":
            path.write_bytes(b"this is not a wav file at all" * 10)
        elif action == "empty":
            sf.write(path, np.zeros(0, dtype=np.int16), 22050, subtype="PCM_16")
    return edit


# (edit to a copy of the 24-utterance corpus, expected fragments of the one-line message)
BROKEN = [
    pytest.param(lambda r: shutil.rmtree(r), ["does not exist", "smart-tuner corpus"], id="no-folder"),
    pytest.param(lambda r: (r / "metadata.csv").unlink(), ["metadata.csv is missing"], id="no-metadata"),
    pytest.param(_set_line(3, "ST-0003|a|b|c"), ["metadata.csv line 3", "got 4"], id="too-many-fields"),
    pytest.param(_set_line(5, "ST-0005"), ["metadata.csv line 5", "got 1"], id="one-field"),
    pytest.param(_set_line(2, "ST-0002|  |  "), ["metadata.csv line 2", "empty text", "ST-0002"], id="empty-text"),
    pytest.param(_set_line(4, "|hello|hello"), ["metadata.csv line 4", "empty id"], id="empty-id"),
    pytest.param(_set_line(6, "ST-0001|again|again"), ["metadata.csv line 6", "repeats line 1"], id="dup-id"),
    pytest.param(_wav("ST-0007", "delete"), ["ST-0007.wav is missing", "metadata.csv line 7"], id="missing-wav"),
    pytest.param(_wav("ST-0008", "garbage"), ["ST-0008.wav is unreadable", "metadata.csv line 8"], id="bad-wav"),
    pytest.param(_wav("ST-0009", "empty"), ["ST-0009.wav has no audio", "metadata.csv line 9"], id="empty-wav"),
    pytest.param(lambda r: (r / "metadata.csv").write_text("\n\n"), ["has no utterances"], id="no-lines"),
    pytest.param(lambda r: (r / "metadata.csv").write_bytes(b"ST-0001|\xff\xfe|x\n"), ["UTF-8"], id="not-utf8"),
    pytest.param(_set_line(3, "../../outside|a|a"), ["metadata.csv line 3", "'../../outside' is not a file name inside"],
                 id="id-leaves-dataset"),
    pytest.param(_set_line(4, "/etc/passwd|a|a"), ["metadata.csv line 4", "'/etc/passwd' is not a file name"],
                 id="absolute-id"),
    pytest.param(_set_line(5, "..|a|a"), ["metadata.csv line 5", "'..' is not a file name"], id="dotdot-id"),
]


@pytest.mark.parametrize("break_it, fragments", BROKEN)
def test_broken_datasets_name_file_and_line(corpus_dir: Path, tmp_path: Path,
                                            break_it: Callable[[Path], None], fragments: list[str]) -> None:
    root = _copy(corpus_dir, tmp_path)
    break_it(root)
    for call in (read_metadata, lambda r: load_features(r, cache_dir=tmp_path / "cache")):
        with pytest.raises(DatasetError) as info:
            call(root)
        message = str(info.value)
        assert "\n" not in message and "fix:" in message
        for fragment in fragments:
            assert fragment in message


def test_read_metadata_prefers_normalized_text(tmp_path: Path) -> None:
    root = _tone_dataset(tmp_path / "ds", ["a|Dr. Lee|doctor lee", "b|two words", "c|raw|"])
    utts = read_metadata(root)
    assert [(u.id, u.text, u.line) for u in utts] == [("a", "doctor lee", 1), ("b", "two words", 2), ("c", "raw", 3)]
    assert utts[0].wav_path == root / "wavs" / "a.wav"


def test_features_of_the_corpus(features: FeatureSet, corpus_dir: Path) -> None:
    assert len(features) == 24 and features.cleaner == "english"
    assert features.symbols == SymbolSet.english()
    assert features.ids == [u.id for u in read_metadata(corpus_dir)]
    for text, ids, mel, n in zip(features.texts, features.text_ids, features.mels, features.mel_lengths):
        assert ids.dtype == torch.long and ids[-1] == 1 and features.symbols.decode(ids.tolist()) == text
        assert mel.dtype == torch.float32 and mel.shape == (80, n) and 60 < n < 400
        assert mel.max() > -2.0 and mel.min() >= np.log(1e-5) - 1e-5
    assert torch.equal(features.encode("Dr. Lee has 3 cats."), torch.tensor(
        features.symbols.encode("doctor lee has three cats."), dtype=torch.long))


def test_cache_is_reused_and_keyed(corpus_dir: Path, tmp_path: Path) -> None:
    path = prepare_features(corpus_dir, cache_dir=tmp_path, progress=False)
    stamp = path.stat().st_mtime_ns
    again = load_features(corpus_dir, cache_dir=tmp_path)
    assert path.stat().st_mtime_ns == stamp and prepare_features(corpus_dir, cache_dir=tmp_path) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, "wav-hashes.json"]  # no tmp
    assert path.name.startswith(f"features-{AudioConfig().cache_key()}-")
    assert features_path(corpus_dir, AudioConfig(n_mels=40), tmp_path) != path
    small = load_features(corpus_dir, AudioConfig(n_mels=40), tmp_path)
    assert small.mels[0].shape[0] == 40 and again.mels[0].shape[0] == 80
    loaded = torch.load(path, weights_only=True)
    assert loaded["symbols"] == list(SymbolSet.english().symbols)


def test_cache_follows_a_changed_dataset(corpus_dir: Path, tmp_path: Path) -> None:
    root = _copy(corpus_dir, tmp_path)
    first = features_path(root, cache_dir=tmp_path / "c")
    lines = _lines(root)
    (root / "metadata.csv").write_text("\n".join(lines[:-1]) + "\n")
    assert features_path(root, cache_dir=tmp_path / "c") != first
    assert len(load_features(root, cache_dir=tmp_path / "c")) == 23


def test_default_cache_lives_beside_the_dataset(corpus_dir: Path, tmp_path: Path) -> None:
    root = _copy(corpus_dir, tmp_path)
    assert prepare_features(root, progress=False).parent == root / ".cache"


def test_russian_dataset_gets_its_own_symbols(tmp_path: Path) -> None:
    rows = ["r1|\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
            "r2|\u0401\u0436 \u0438 \u0451\u043b\u043a\u0430."]
    root = _tone_dataset(tmp_path / "ru", rows)
    fs = load_features(root, cache_dir=tmp_path / "c")
    assert fs.cleaner == "basic" and "\u0451" in fs.symbols.symbols
    assert fs.texts == ["\u043f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!", "\u0451\u0436 \u0438 \u0451\u043b\u043a\u0430."]
    assert load_features(root, cache_dir=tmp_path / "c").symbols == fs.symbols  # stored in the cache
    with pytest.raises(DatasetError, match=r"metadata.csv line 1: unknown characters"):
        load_features(root, cache_dir=tmp_path / "c", symbols=SymbolSet.english())


def test_resampled_dataset(tmp_path: Path) -> None:
    root = _tone_dataset(tmp_path / "ds", ["a|one", "b|two"], seconds=0.5, rate=16000)
    fs = load_features(root, cache_dir=tmp_path / "c")
    assert fs.mel_lengths == [1 + 11025 // 256, 1 + 22050 // 256]


def test_non_finite_audio_is_named(tmp_path: Path) -> None:
    root = _tone_dataset(tmp_path / "ds", ["a|one", "b|two"])
    sf.write(root / "wavs" / "b.wav", np.array([0.1, np.nan, 0.2] * 400, dtype=np.float32), 22050,
             subtype="FLOAT")
    with pytest.raises(DatasetError, match=r"b\.wav \(metadata.csv line 2\) gives no features.*NaN"):
        load_features(root, cache_dir=tmp_path / "c")


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_id_outside_the_dataset_reads_nothing_there(corpus_dir: Path, tmp_path: Path) -> None:
    """A wav planted outside the dataset under the id's path is never read, nothing is written."""
    root = _copy(corpus_dir, tmp_path)
    shutil.copy(root / "wavs" / "ST-0001.wav", tmp_path / "outside.wav")
    _set_line(2, "../../outside|hello|hello")(root)
    before = _tree(tmp_path)
    with pytest.raises(DatasetError, match=r"line 2: id '../../outside' is not a file name inside"):
        load_features(root, cache_dir=tmp_path / "cache")
    after = _tree(tmp_path)
    assert {k: after[k] for k in before} == before   # only the wav-hash memo may be new
    assert set(after) - set(before) <= {"cache/wav-hashes.json"}
    assert not list((tmp_path / "cache").glob("features-*"))


def test_a_utf8_bom_is_accepted(corpus_dir: Path, tmp_path: Path) -> None:
    root = _copy(corpus_dir, tmp_path)
    plain = read_metadata(root)
    (root / "metadata.csv").write_bytes(b"\xef\xbb\xbf" + (root / "metadata.csv").read_bytes())
    assert read_metadata(root) == plain and plain[0].id == "ST-0001"


def test_a_same_size_wav_replacement_gets_new_features(corpus_dir: Path, tmp_path: Path) -> None:
    """Other audio of the very same size, its mtime copied back (as ``cp -p`` does): the cache
    key changes and the new mels are computed, not the stale ones reused."""
    root = _copy(corpus_dir, tmp_path)
    wav = root / "wavs" / "ST-0003.wav"
    first = load_features(root, cache_dir=tmp_path / "c")
    old_path = features_path(root, cache_dir=tmp_path / "c")
    data, rate = sf.read(wav, dtype="int16")
    info, stat = sf.info(str(wav)), wav.stat()
    tone = (8000 * np.sin(2 * np.pi * 300 * np.arange(len(data)) / rate)).astype(np.int16)
    sf.write(wav, tone, rate, subtype=info.subtype)
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert wav.stat().st_size == stat.st_size and wav.stat().st_mtime_ns == stat.st_mtime_ns
    new_path = features_path(root, cache_dir=tmp_path / "c")
    assert new_path != old_path and old_path.is_file()
    second = load_features(root, cache_dir=tmp_path / "c")
    assert not torch.equal(first.mels[2], second.mels[2]) and torch.equal(first.mels[0], second.mels[0])
    assert features_path(root, cache_dir=tmp_path / "c") == new_path   # hashed once, then reused


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_cache_is_named_with_the_fix(corpus_dir: Path, tmp_path: Path, damage: str) -> None:
    path = prepare_features(corpus_dir, cache_dir=tmp_path, progress=False)
    check_features(path)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2] if damage == "truncate" else b"x" * len(blob))
    before = _tree(tmp_path)
    for call in (lambda: check_features(path), lambda: load_features(corpus_dir, cache_dir=tmp_path)):
        with pytest.raises(DatasetError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"feature cache {path} is damaged") and "\n" not in message
        assert f"rm {path}" in message
    assert _tree(tmp_path) == before    # the damaged file is named, not silently replaced
