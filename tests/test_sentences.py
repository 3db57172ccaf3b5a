from __future__ import annotations

import pytest

from model.sentences import MAX_WORDS, MIN_WORDS, generate_sentences, vocabulary
from model.text import SymbolSet, english_cleaners


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_sentences_are_deterministic_distinct_and_short(seed: int) -> None:
    sentences = generate_sentences(200, seed)
    assert sentences == generate_sentences(200, seed)
    assert len(set(sentences)) == 200
    symbols = SymbolSet.english()
    for s in sentences:
        assert MIN_WORDS <= len(s.split()) <= MAX_WORDS
        assert "|" not in s
        assert symbols.encode(english_cleaners(s))[-1] == 1  # every normalized sentence encodes


def test_seeds_differ_and_vocabulary_is_moderate() -> None:
    assert generate_sentences(50, 0) != generate_sentences(50, 1)
    assert 250 <= len(vocabulary()) <= 600


@pytest.mark.parametrize("n", [0, -3])
def test_bad_counts(n: int) -> None:
    with pytest.raises(ValueError, match="n_utterances"):
        generate_sentences(n)
