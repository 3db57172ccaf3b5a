from __future__ import annotations

import pytest

from model.text import (
    SymbolSet,
    UnknownCharacterError,
    basic_cleaners,
    english_cleaners,
    number_to_words,
    ordinal_to_words,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("  Hello   WORLD  ", "hello world"),
        ("Dr. Lee met Mr. Brown and Mrs. Green.", "doctor lee met mister brown and missus green."),
        ("I have 3 cats.", "i have three cats."),
        ("1,000,000 people", "one million people"),
        ("It cost $3.50.", "it cost three dollars, fifty cents."),
        ("$1 and $0.01", "one dollar and one cent"),
        ("pi is 3.14", "pi is three point one four"),
        ("the 1st, 2nd, 3rd and 21st", "the first, second, third and twenty-first"),
        ("in 1999 and 2005 and 1900", "in nineteen ninety-nine and two thousand five and nineteen hundred"),
        ("cats & dogs 50%", "cats and dogs fifty percent"),
        ("\u201cQuoted\u201d \u2014 text", "quoted - text"),
        ("Tab\tand\nnewline", "tab and newline"),
    ],
)
def test_english_cleaners(text: str, expected: str) -> None:
    assert english_cleaners(text) == expected


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"), (7, "seven"), (13, "thirteen"), (20, "twenty"), (42, "forty-two"),
        (100, "one hundred"), (101, "one hundred one"), (999, "nine hundred ninety-nine"),
        (1000, "one thousand"), (12345, "twelve thousand three hundred forty-five"),
        (2_000_000_003, "two billion three"), (-4, "minus four"),
    ],
)
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


@pytest.mark.parametrize(
    "n, words",
    [(1, "first"), (2, "second"), (5, "fifth"), (12, "twelfth"), (20, "twentieth"),
     (22, "twenty-second"), (100, "one hundredth"), (109, "one hundred ninth")],
)
def test_ordinal_to_words(n: int, words: str) -> None:
    assert ordinal_to_words(n) == words


@pytest.mark.parametrize(
    "text", ["hello, world!", "what's up? (nothing) - fine; ok: yes.", "a"],
)
def test_english_round_trip(text: str) -> None:
    symbols = SymbolSet.english()
    ids = symbols.encode(text)
    assert ids[-1] == 1 and 0 not in ids
    assert symbols.decode(ids) == text


@pytest.mark.parametrize(
    "text, unknown",
    [
        ("caf\u00e9", {"\u00e9": [3]}),
        ("a_b~c", {"_": [1], "~": [3]}),  # pad and eos are reserved
        ("x#y#z", {"#": [1, 3]}),
        ("\u043f\u0440\u0438", {"\u043f": [0], "\u0440": [1], "\u0438": [2]}),
    ],
)
def test_unknown_characters_are_reported(text: str, unknown: dict[str, list[int]]) -> None:
    with pytest.raises(UnknownCharacterError) as info:
        SymbolSet.english().encode(text)
    assert info.value.characters == unknown
    message = str(info.value)
    assert "\n" not in message and "from_texts" in message
    assert all(repr(c) in message for c in unknown)


def test_russian_symbol_set_from_texts() -> None:
    texts = [basic_cleaners(t) for t in ["\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
                                           "\u0401\u0436 \u0438 \u0451\u043b\u043a\u0430."]]
    symbols = SymbolSet.from_texts(texts)
    assert symbols.symbols[:2] == ("_", "~")
    assert symbols.symbols[2:6] == (" ", "!", ",", ".")  # punctuation before letters
    assert "\u0451" in symbols.symbols and "\u041f" not in symbols.symbols  # lowercased
    for t in texts:
        assert symbols.decode(symbols.encode(t)) == t
    assert SymbolSet.from_texts(reversed(texts)) == symbols  # order of texts does not matter


@pytest.mark.parametrize(
    "symbols",
    [("a", "b", "c"), ("_", "~"), ("_", "~", "a", "a"), ("_", "~", "ab")],
)
def test_bad_symbol_tuples_are_rejected(symbols: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="symbols must"):
        SymbolSet(symbols)


def test_english_set_layout() -> None:
    symbols = SymbolSet.english()
    assert symbols.symbols[:2] == ("_", "~") and len(symbols) == 39
    assert set("abcdefghijklmnopqrstuvwxyz !?,.'-") <= set(symbols.symbols)
