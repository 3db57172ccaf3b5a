"""Sentences for the built-in corpus: a small grammar over a word list shipped in code.

``generate_sentences(n, seed)`` returns ``n`` distinct sentences of 4-10 words, deterministic
by seed. Raw sentences carry capitals, digits and abbreviations ("Dr. Lee has 3 red cups."),
so the corpus's normalized text column differs from the raw one, as in LJSpeech.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

__all__ = ["generate_sentences", "vocabulary", "MIN_WORDS", "MAX_WORDS"]

MIN_WORDS = 4
MAX_WORDS = 10

_NAMES = "Anna Peter Maria John Lucy David Emma Tom Sarah Paul Nina Mark Alice Sam Kate Ben".split()
_TITLED = ["Dr. Lee", "Mr. Brown", "Mrs. Green", "Dr. Stone", "Mr. Hill", "Mrs. Wood"]
_DETERMINERS = "the a my your his her our their this that one every".split()
_PLURAL_DETERMINERS = "the my your his her our their these those some many".split()
_ADJECTIVES = (
    "red blue green yellow white black brown small big little old young new quiet loud happy sad "
    "warm cold bright dark soft hard long short fast slow clean dirty tall heavy light kind "
    "clever funny strange tired busy hungry lucky gentle brave calm wild sweet fresh rich poor"
).split()
# (singular, plural)
_NOUNS = [
    (w, w + "s") for w in (
        "cat dog bird horse cow duck frog rabbit lion tiger bear girl boy friend teacher doctor "
        "farmer baker driver singer king queen cup book pen chair table door window car boat "
        "train ship letter flower tree apple cake bottle hat coat shoe ball kite lamp clock "
        "bag key ring map song picture garden river house school shop road bridge hill lake "
        "field forest street room kitchen"
    ).split()
] + [("box", "boxes"), ("glass", "glasses"), ("child", "children"), ("man", "men"),
     ("woman", "women"), ("city", "cities"), ("mouse", "mice"), ("sheep", "sheep"),
     ("fish", "fish"), ("bus", "buses"), ("story", "stories"), ("watch", "watches")]
# (base, past) of transitive verbs
_TVERBS = [
    ("see", "saw"), ("find", "found"), ("take", "took"), ("bring", "brought"), ("hold", "held"),
    ("paint", "painted"), ("carry", "carried"), ("open", "opened"), ("close", "closed"),
    ("watch", "watched"), ("like", "liked"), ("love", "loved"), ("want", "wanted"),
    ("clean", "cleaned"), ("draw", "drew"), ("buy", "bought"), ("sell", "sold"),
    ("lose", "lost"), ("keep", "kept"), ("follow", "followed"), ("visit", "visited"),
    ("help", "helped"), ("call", "called"), ("push", "pushed"), ("pull", "pulled"),
    ("catch", "caught"), ("throw", "threw"), ("read", "read"), ("write", "wrote"),
    ("fix", "fixed"), ("hide", "hid"), ("feed", "fed"), ("wash", "washed"), ("move", "moved"),
]
# (base, past) of intransitive verbs
_IVERBS = [
    ("sleep", "slept"), ("laugh", "laughed"), ("smile", "smiled"), ("run", "ran"),
    ("walk", "walked"), ("sing", "sang"), ("dance", "danced"), ("wait", "waited"),
    ("swim", "swam"), ("jump", "jumped"), ("sit", "sat"), ("stand", "stood"), ("play", "played"),
    ("rest", "rested"), ("talk", "talked"), ("work", "worked"), ("cry", "cried"),
    ("fall", "fell"), ("listen", "listened"), ("arrive", "arrived"), ("stay", "stayed"),
]
_ADVERBS = (
    "quickly slowly quietly loudly happily sadly softly early late often again together "
    "carefully gently suddenly"
).split()
# adjectives for "X is Y." sentences, where any subject, a person included, reads well
_STATES = "happy sad warm cold quiet busy tired hungry lucky brave calm clever funny kind".split()
_PREPOSITIONS = "in on under near behind beside across into over by".split()
_TIMES = [
    "today", "yesterday", "tonight", "at night", "in the morning", "in the evening",
    "last week", "on Monday", "on Friday", "every day", "after lunch", "before dinner",
    "in winter", "in summer", "at noon",
]
_WH = ["where is", "when did", "how did", "why did"]


def _subject(r: random.Random) -> tuple[str, bool]:
    """A subject phrase and whether it is plural."""
    roll = r.random()
    if roll < 0.2:
        return r.choice(_NAMES), False
    if roll < 0.28:
        return r.choice(_TITLED), False
    if roll < 0.45:
        return f"{r.choice(_PLURAL_DETERMINERS)} {_adj(r)}{r.choice(_NOUNS)[1]}", True
    return f"{r.choice(_DETERMINERS)} {_adj(r)}{r.choice(_NOUNS)[0]}", False


def _object(r: random.Random) -> str:
    if r.random() < 0.25:
        return f"{r.choice(_PLURAL_DETERMINERS)} {_adj(r)}{r.choice(_NOUNS)[1]}"
    if r.random() < 0.1:
        return r.choice(_NAMES)
    return f"{r.choice(_DETERMINERS)} {_adj(r)}{r.choice(_NOUNS)[0]}"


def _adj(r: random.Random) -> str:
    return f"{r.choice(_ADJECTIVES)} " if r.random() < 0.5 else ""


def _place(r: random.Random) -> str:
    return f"{r.choice(_PREPOSITIONS)} the {r.choice(_NOUNS)[0]}"


def _count(r: random.Random) -> str:
    n = r.randint(2, 12)
    return str(n) if r.random() < 0.5 else ["two", "three", "four", "five", "six", "seven",
                                             "eight", "nine", "ten", "eleven", "twelve"][n - 2]


def _t_transitive(r: random.Random) -> str:
    s, _ = _subject(r)
    return f"{s} {r.choice(_TVERBS)[1]} {_object(r)}."


def _t_intransitive(r: random.Random) -> str:
    s, _ = _subject(r)
    return f"{s} {r.choice(_IVERBS)[1]} {r.choice(_ADVERBS)}."


def _t_place(r: random.Random) -> str:
    s, _ = _subject(r)
    return f"{s} {r.choice(_IVERBS)[1]} {_place(r)}."


def _t_time(r: random.Random) -> str:
    s, _ = _subject(r)
    return f"{r.choice(_TIMES)}, {s} {r.choice(_TVERBS)[1]} {_object(r)}."


def _t_question(r: random.Random) -> str:
    s, _ = _subject(r)
    return f"did {s} {r.choice(_TVERBS)[0]} {_object(r)}?"


def _t_count(r: random.Random) -> str:
    noun = r.choice(_NOUNS)[1]
    who = r.choice(_NAMES + _TITLED)
    return f"{who} has {_count(r)} {_adj(r)}{noun}."


def _t_describe(r: random.Random) -> str:
    s, plural = _subject(r)
    very = "very " if r.random() < 0.3 else ""
    return f"{s} {'are' if plural else 'is'} {very}{r.choice(_STATES)}."


def _t_wh(r: random.Random) -> str:
    wh = r.choice(_WH)
    if wh.endswith("is"):
        return f"{wh} the {_adj(r)}{r.choice(_NOUNS)[0]}?"
    s, _ = _subject(r)
    return f"{wh} {s} {r.choice(_IVERBS)[0]}?"


def _t_pair(r: random.Random) -> str:
    return f"{r.choice(_NAMES)} and {r.choice(_NAMES)} {r.choice(_IVERBS)[1]} {r.choice(_TIMES)}."


def _t_want(r: random.Random) -> str:
    s, plural = _subject(r)
    return f"{s} {'want' if plural else 'wants'} to {r.choice(_TVERBS)[0]} {_object(r)}!"


_TEMPLATES: list[tuple[Callable[[random.Random], str], float]] = [
    (_t_transitive, 3.0), (_t_intransitive, 1.5), (_t_place, 1.5), (_t_time, 1.0),
    (_t_question, 1.0), (_t_count, 1.0), (_t_describe, 1.0), (_t_wh, 0.7), (_t_pair, 0.6),
    (_t_want, 0.8),
]
_WORD = re.compile(r"[A-Za-z']+|[0-9]+")


def _capitalise(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


def generate_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct sentences of MIN_WORDS-MAX_WORDS words, the same list for the same seed."""
    if n < 1:
        raise ValueError(f"n_utterances must be >= 1, got {n!r}")
    r = random.Random(seed)
    funcs = [f for f, _ in _TEMPLATES]
    weights = [w for _, w in _TEMPLATES]
    seen: set[str] = set()
    out: list[str] = []
    for _ in range(n * 50):
        sentence = _capitalise(r.choices(funcs, weights)[0](r))
        if sentence in seen or not MIN_WORDS <= len(_WORD.findall(sentence)) <= MAX_WORDS:
            continue
        seen.add(sentence)
        out.append(sentence)
        if len(out) == n:
            return out
    raise ValueError(f"the grammar could not produce {n} distinct sentences; fix: ask for fewer")


def vocabulary() -> set[str]:
    """Every lowercase word the grammar can emit (numbers as digits excluded)."""
    words: set[str] = set()
    chunks = (_NAMES + _TITLED + _DETERMINERS + _PLURAL_DETERMINERS + _ADJECTIVES + _ADVERBS
              + _PREPOSITIONS + _TIMES + _WH + ["very", "has", "is", "are", "did", "want",
                                                "wants", "to", "and", "the"])
    chunks += [w for pair in _NOUNS + _TVERBS + _IVERBS for w in pair]
    for chunk in chunks:
        words.update(w.lower() for w in _WORD.findall(chunk))
    return words
