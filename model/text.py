"""Text front end: cleaners and character symbol sets.

``english_cleaners`` lowercases, expands abbreviations, symbols and numbers into words and
collapses whitespace. ``SymbolSet`` maps characters to ids: 0 is the pad "_", 1 the end of
sentence "~"; ``encode`` never drops a character silently, it raises ``UnknownCharacterError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "PAD",
    "EOS",
    "UnknownCharacterError",
    "SymbolSet",
    "basic_cleaners",
    "english_cleaners",
    "CLEANERS",
    "number_to_words",
    "ordinal_to_words",
    "normalize_numbers",
]

PAD = "_"
EOS = "~"
_PUNCTUATION = "!'(),-.:;? "
_LETTERS = "abcdefghijklmnopqrstuvwxyz"

_ABBREVIATIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\b{abbr}\.", re.IGNORECASE), full)
    for abbr, full in [
        ("mrs", "missus"), ("mr", "mister"), ("dr", "doctor"), ("st", "saint"),
        ("co", "company"), ("jr", "junior"), ("maj", "major"), ("gen", "general"),
        ("drs", "doctors"), ("rev", "reverend"), ("lt", "lieutenant"), ("hon", "honorable"),
        ("sgt", "sergeant"), ("capt", "captain"), ("esq", "esquire"), ("ltd", "limited"),
        ("col", "colonel"), ("ft", "fort"), ("prof", "professor"), ("etc", "et cetera"),
        ("vs", "versus"),
    ]
]
_SYMBOLS = [("&", " and "), ("%", " percent "), ("+", " plus "), ("@", " at "), ("=", " equals ")]
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": "", "\u201d": "", '"': "",
                         "\u2013": "-", "\u2014": "-", "\t": " ", "\n": " ", "\r": " "})
_WHITESPACE = re.compile(r"\s+")

# ---------------------------------------------------------------- numbers to words
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                  "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
_COMMA_NUMBER = re.compile(r"([0-9][0-9,]+[0-9])")
_POUNDS = re.compile(r"\u00a3([0-9,]*[0-9]+)")
_DOLLARS = re.compile(r"\$([0-9.,]*[0-9]+)")
_DECIMAL = re.compile(r"([0-9]+\.[0-9]+)")
_ORDINAL = re.compile(r"\b([0-9]+)(st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER = re.compile(r"[0-9]+")


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{_ONES[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens] + (f"-{_ONES[ones]}" if ones else ""))
    elif rest or not words:
        words.append(_ONES[rest])
    return " ".join(words)


def number_to_words(n: int) -> str:
    """Cardinal: 0 -> "zero", 2024 -> "two thousand twenty-four", -5 -> "minus five"."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= 10**15:
        return " ".join(_ONES[int(d)] for d in str(n))  # read huge numbers digit by digit
    words = []
    for value, name in _SCALES:
        if n >= value:
            words.append(f"{number_to_words(n // value)} {name}")
            n %= value
    if n or not words:
        words.append(_below_thousand(n))
    return " ".join(words)


def ordinal_to_words(n: int) -> str:
    """1 -> "first", 22 -> "twenty-second", 100 -> "one hundredth"."""
    words = number_to_words(n)
    head, sep, last = words.rpartition(" ")
    stem, dash, unit = last.rpartition("-")
    if unit in _ORDINAL_WORDS:
        unit = _ORDINAL_WORDS[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    return head + sep + stem + dash + unit


def _year_or_number(n: int) -> str:
    """Four-digit numbers 1100-2999 read as years (NVIDIA tacotron2's rule): 1999 -> "nineteen
    ninety-nine", 2005 -> "two thousand five", 1900 -> "nineteen hundred"."""
    if 1000 < n < 3000 and n % 1000:
        if 2000 < n < 2010:
            return "two thousand " + _ONES[n % 100]
        if n % 100 == 0:
            return number_to_words(n // 100) + " hundred"
        high, low = divmod(n, 100)
        return f"{number_to_words(high)} {'oh ' + _ONES[low] if low < 10 else number_to_words(low)}"
    return number_to_words(n)


def _dollars(m: re.Match[str]) -> str:
    parts = m.group(1).replace(",", "").split(".")
    if len(parts) > 2 or not all(p.isdigit() for p in parts if p):
        return m.group(1) + " dollars"
    dollars = int(parts[0] or 0)
    cents = int(parts[1][:2].ljust(2, "0")) if len(parts) > 1 and parts[1] else 0
    said = []
    if dollars or not cents:
        said.append(f"{number_to_words(dollars)} dollar{'' if dollars == 1 else 's'}")
    if cents:
        said.append(f"{number_to_words(cents)} cent{'' if cents == 1 else 's'}")
    return ", ".join(said)


def _decimal(m: re.Match[str]) -> str:
    whole, frac = m.group(1).split(".")
    return f"{number_to_words(int(whole))} point {' '.join(_ONES[int(d)] for d in frac)}"


def normalize_numbers(text: str) -> str:
    """Spell out the numbers in ``text``: thousands separators, pounds, dollars and cents,
    decimals, ordinals, then plain integers (years for 1100-2999)."""
    text = _COMMA_NUMBER.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _POUNDS.sub(lambda m: f"{m.group(1)} pounds", text)
    text = _DOLLARS.sub(_dollars, text)
    text = _DECIMAL.sub(_decimal, text)
    text = _ORDINAL.sub(lambda m: ordinal_to_words(int(m.group(1))), text)
    return _NUMBER.sub(lambda m: _year_or_number(int(m.group(0))), text)


class UnknownCharacterError(ValueError):
    """A text holds characters outside the symbol set.

    ``characters`` maps each unknown character to the positions where it occurs.
    """

    def __init__(self, text: str, characters: dict[str, list[int]]) -> None:
        self.text = text
        self.characters = characters
        listed = ", ".join(
            f"{c!r} (U+{ord(c):04X}) at {pos[:5]}" for c, pos in characters.items()
        )
        super().__init__(
            f"unknown characters {listed} in text {text[:80]!r}; fix: clean the text or build the "
            f"symbol set from the dataset with SymbolSet.from_texts(...)"
        )


def basic_cleaners(text: str) -> str:
    """Language-neutral cleaning: lowercase, unify quotes and dashes, collapse whitespace."""
    text = text.translate(_QUOTES).lower()
    return _WHITESPACE.sub(" ", text).strip()


def english_cleaners(text: str) -> str:
    """English cleaning: ``basic_cleaners`` plus abbreviations ("Dr." -> "doctor"), symbols
    ("&" -> "and", "%" -> "percent") and numbers spelled out ("$3.50" -> "three dollars,
    fifty cents", "1st" -> "first", "1999" -> "nineteen ninety-nine")."""
    text = text.translate(_QUOTES)
    for pattern, full in _ABBREVIATIONS:
        text = pattern.sub(full, text)
    text = normalize_numbers(text)
    for symbol, word in _SYMBOLS:
        text = text.replace(symbol, word)
    return basic_cleaners(text)


CLEANERS = {"english": english_cleaners, "basic": basic_cleaners}


@dataclass(frozen=True)
class SymbolSet:
    """An ordered tuple of single characters; index 0 is the pad "_" and index 1 the eos "~".

    The pad and eos characters are reserved: a text containing them is rejected by ``encode``.
    """

    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.symbols) < 3 or self.symbols[0] != PAD or self.symbols[1] != EOS:
            raise ValueError(
                f"symbols must start with pad {PAD!r} and eos {EOS!r} and hold at least one more, "
                f"got {self.symbols[:5]!r}; fix: build it with SymbolSet.from_texts(texts)"
            )
        bad = [s for s in self.symbols if len(s) != 1]
        if bad or len(set(self.symbols)) != len(self.symbols):
            raise ValueError(
                f"symbols must be distinct single characters, got {bad or self.symbols!r}; "
                f"fix: build it with SymbolSet.from_texts(texts)"
            )
        object.__setattr__(self, "_index", {s: i for i, s in enumerate(self.symbols)})

    @classmethod
    def english(cls) -> SymbolSet:
        """pad, eos, punctuation ``!'(),-.:;?`` and space, then a-z (what english_cleaners emits)."""
        return cls((PAD, EOS, *_PUNCTUATION, *_LETTERS))

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> SymbolSet:
        """pad, eos, then every character of ``texts`` (already cleaned): non-letters first,
        then letters, each group sorted by code point. Deterministic for the same texts."""
        chars = {c for t in texts for c in t} - {PAD, EOS}
        if not chars:
            raise ValueError("from_texts got no characters; fix: pass the dataset's non-empty texts")
        ordered = sorted(chars, key=lambda c: (c.isalpha(), c))
        return cls((PAD, EOS, *ordered))

    def unknown(self, text: str) -> dict[str, list[int]]:
        """Characters of ``text`` outside the set (pad and eos count as unknown) -> positions."""
        index: dict[str, int] = self._index  # type: ignore[attr-defined]
        found: dict[str, list[int]] = {}
        for i, c in enumerate(text):
            if c not in index or c in (PAD, EOS):
                found.setdefault(c, []).append(i)
        return found

    def encode(self, text: str) -> list[int]:
        """Character ids of ``text`` followed by the eos id 1. Raises UnknownCharacterError."""
        missing = self.unknown(text)
        if missing:
            raise UnknownCharacterError(text, missing)
        index: dict[str, int] = self._index  # type: ignore[attr-defined]
        return [index[c] for c in text] + [1]

    def decode(self, ids: Sequence[int]) -> str:
        """Inverse of ``encode``: pad and eos ids are left out."""
        return "".join(self.symbols[int(i)] for i in ids if int(i) > 1)

    def __len__(self) -> int:
        return len(self.symbols)
