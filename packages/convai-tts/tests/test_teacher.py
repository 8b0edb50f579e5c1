"""The teacher corpus: per-symbol durations that add up to each clip, and the IPA it is fed."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf

from convai_tts.data.teacher import teacher_units
from convai_tts.text.frontend import EnglishPhonemizer


def test_durations_cover_every_symbol_and_add_up_to_the_clip(
    teacher_corpus: Path, teacher_sentences: list[str]
) -> None:
    lines = [json.loads(line) for line in teacher_corpus.read_text().splitlines()]
    assert [line["text"] for line in lines] == teacher_sentences
    for line in lines:
        info = sf.info(line["audio_filepath"])
        assert info.samplerate == 22050
        symbols = line["symbols"].split()
        assert len(line["durations"]) == len(symbols) and symbols[0] == "|"
        assert sum(line["durations"]) * 256 == info.frames  # exact: hop 256, no rounding
        phonemes = [d for s, d in zip(symbols, line["durations"], strict=True) if s.isalpha()]
        assert min(phonemes) >= 1 and sum(phonemes) / len(phonemes) > 3  # every phoneme is heard
    assert not list(teacher_corpus.parent.glob(".teacher-requests-*"))


def test_without_variation_the_teacher_says_a_sentence_the_same_way_twice(
    teacher_corpus: Path, teacher_sentences: list[str], tmp_path: Path
) -> None:
    """The session corpus is built with ``variation=False``: a second build of its first two
    sentences gives the same samples and durations; with the voice's noise on they change."""
    import numpy as np

    from convai_tts.data.teacher import build_teacher_corpus

    first = _lines(teacher_corpus)[:2]
    again = build_teacher_corpus(teacher_sentences[:2], tmp_path / "a", workers=1, variation=False)
    noisy = build_teacher_corpus(teacher_sentences[:2], tmp_path / "b", workers=1)
    for old, new in zip(first, _lines(again), strict=True):
        assert new["durations"] == old["durations"]
        np.testing.assert_array_equal(_samples(new), _samples(old))
    assert any(n["durations"] != o["durations"] for n, o in zip(_lines(noisy), first, strict=True))


def _lines(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def _samples(line: dict):
    return sf.read(line["audio_filepath"], dtype="int16")[0]


def test_teacher_units_stress_one_vowel_of_content_words() -> None:
    """The dictionary has no stress, so the teacher gets a guess: the first vowel of a content
    word (the second after an unstressed prefix such as "a-"), none in function words; other
    AH / ER / IY are reduced (ə, ɚ, i). The mark goes before the vowel, as espeak-ng writes it."""
    frontend = EnglishPhonemizer()
    symbols = frontend.phonemize("The banana is about ready.")
    units = teacher_units(symbols, ["The", "banana", "is", "about", "ready"])
    assert len(units) == len(symbols)
    words = "".join(units).split(" ")
    assert words == ["", "ðə", "bˈʌnænə", "ɪz", "əbˈaʊt", "ɹˈɛdi."]
