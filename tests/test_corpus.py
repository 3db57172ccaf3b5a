from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model.corpus import CorpusError, build_corpus, trim_silence
from model.espeak import is_deterministic
from model.text import english_cleaners


def _rows(root: Path) -> list[list[str]]:
    return [line.split("|") for line in (root / "metadata.csv").read_text().splitlines()]


@pytest.mark.parametrize(
    "samples, kept",
    [
        (np.r_[np.zeros(22050), np.full(2205, 1000), np.zeros(22050)], (2205, 2205 + 2 * 882 + 441)),
        (np.full(500, 1000), (500, 500)),
        (np.zeros(100), (100, 100)),
    ],
)
def test_trim_silence(samples: np.ndarray, kept: tuple[int, int]) -> None:
    out = trim_silence(samples.astype(np.int16), 22050)
    assert kept[0] <= out.size <= kept[1]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("c") / "corpus", n_utterances=6, seed=3, progress=False)


def test_layout_and_durations(small: Path) -> None:
    rows = _rows(small)
    assert len(rows) == 6 and all(len(r) == 3 for r in rows)
    assert [r[0] for r in rows] == [f"ST-{k:04d}" for k in range(1, 7)]
    for uid, text, normalized in rows:
        assert normalized == english_cleaners(text)
        info = sf.info(small / "wavs" / f"{uid}.wav")
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert 0.7 < info.duration < 4.5
        wav, _ = sf.read(small / "wavs" / f"{uid}.wav", dtype="int16")
        # trimmed: sound (> 1% of the peak) starts and ends within 40 ms margin + one 10 ms frame
        loud = np.nonzero(np.abs(wav) > 0.01 * np.abs(wav).max())[0]
        assert loud[0] <= 0.05 * 22050 and wav.size - loud[-1] <= 0.05 * 22050
    assert sorted(p.name for p in (small / "wavs").iterdir()) == [f"{r[0]}.wav" for r in rows]
    assert not (small / ".building.json").exists()


def test_rerun_reuses_a_complete_corpus(small: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in small.rglob("*") if p.is_file()}
    assert build_corpus(small, n_utterances=6, seed=3, progress=False) == small
    assert before == {p.name: p.stat().st_mtime_ns for p in small.rglob("*") if p.is_file()}


def test_same_seed_same_corpus_other_seed_other_text(small: Path, tmp_path: Path) -> None:
    again = build_corpus(tmp_path / "again", n_utterances=6, seed=3, progress=False)
    assert _rows(again) == _rows(small)
    for uid, _, _ in _rows(small) if is_deterministic() else []:
        assert (again / "wavs" / f"{uid}.wav").read_bytes() == (small / "wavs" / f"{uid}.wav").read_bytes()
    other = build_corpus(tmp_path / "other", n_utterances=6, seed=4, progress=False)
    assert [r[1] for r in _rows(other)] != [r[1] for r in _rows(small)]


def test_interrupted_build_resumes(small: Path, tmp_path: Path) -> None:
    out = build_corpus(tmp_path / "c", n_utterances=6, seed=3, progress=False)
    # simulate a crash after three wavs: no metadata.csv yet, the marker still there
    info = json.loads((out / "corpus.json").read_text())
    (out / "metadata.csv").unlink()
    (out / "corpus.json").unlink()
    (out / ".building.json").write_text(json.dumps({"settings": info["settings"]}))
    for uid in ("ST-0004", "ST-0005", "ST-0006"):
        (out / "wavs" / f"{uid}.wav").unlink()
    kept = (out / "wavs" / "ST-0001.wav").stat().st_mtime_ns
    build_corpus(out, n_utterances=6, seed=3, progress=False)
    assert _rows(out) == _rows(small)
    assert (out / "wavs" / "ST-0001.wav").stat().st_mtime_ns == kept  # reused, not redone
    if is_deterministic():
        assert (out / "wavs" / "ST-0006.wav").read_bytes() == (small / "wavs" / "ST-0006.wav").read_bytes()


def test_other_settings_rebuild_in_place(tmp_path: Path) -> None:
    out = build_corpus(tmp_path / "c", n_utterances=6, seed=3, progress=False)
    (out / "wavs" / "notes.txt").write_text("user file")
    build_corpus(out, n_utterances=4, seed=3, progress=False)
    assert len(_rows(out)) == 4
    assert sorted(p.name for p in (out / "wavs").iterdir()) == [
        "ST-0001.wav", "ST-0002.wav", "ST-0003.wav", "ST-0004.wav", "notes.txt"]


@pytest.mark.parametrize(
    "prepare, n, match",
    [
        (lambda d: (d / "metadata.csv").write_text("LJ001|a|a\n"), 4, "not built by smart-tuner"),
        (lambda d: None, 0, "n_utterances"),
    ],
)
def test_refuses_foreign_dataset_and_bad_counts(tmp_path: Path, prepare, n: int, match: str) -> None:
    out = tmp_path / "d"
    out.mkdir()
    prepare(out)
    with pytest.raises(CorpusError, match=match):
        build_corpus(out, n_utterances=n, progress=False)


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(CorpusError, match="is a file"):
        build_corpus(f, n_utterances=2, progress=False)
    assert os.path.isfile(f)
