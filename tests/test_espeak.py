from __future__ import annotations

import numpy as np
import pytest

from model.espeak import EspeakError, EspeakVoice, espeak_sample_rate, is_deterministic, synthesize


def test_espeak_speaks_at_22050_hz() -> None:
    samples = synthesize("hello world")
    assert espeak_sample_rate() == 22050
    assert samples.dtype == np.int16 and 0.4 * 22050 < samples.size < 2.5 * 22050
    assert np.abs(samples).max() > 3000


@pytest.mark.parametrize("text", ["hello world", "the small cat sat on the mat.", "did anna see it?"])
def test_same_text_same_samples_whatever_came_before(text: str) -> None:
    assert is_deterministic()  # symbolic links work on Linux: the steady voice is in use
    first = synthesize(text)
    synthesize("something quite different, spoken in between")
    assert np.array_equal(first, synthesize(text))


@pytest.mark.parametrize(
    "voice, longer",
    [(EspeakVoice(rate=100), True), (EspeakVoice(rate=250), False), (EspeakVoice(name="en"), None)],
)
def test_voice_settings_take_effect(voice: EspeakVoice, longer: bool | None) -> None:
    base = synthesize("hello world, this is a test").size
    other = synthesize("hello world, this is a test", voice).size
    if longer is None:
        assert 0.7 * base < other < 1.4 * base
    else:
        assert (other > 1.3 * base) if longer else (other < 0.8 * base)


def test_unknown_voice_is_an_error() -> None:
    with pytest.raises(EspeakError, match="no voice 'xx-nowhere'"):
        synthesize("hello", EspeakVoice(name="xx-nowhere"))
    assert synthesize("hello").size > 0  # the engine still works afterwards
