"""Shared fixtures: a small teacher corpus (the piper voice, run in its own environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Our own sentences (not from a corpus), long enough to cover most English phonemes.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore, doesn't she?",
    "How much wood would a woodchuck chuck?",
    "We measured the voice on a cold winter morning.",
    "Jack's friends enjoy the big yellow garage in June.",
    "Please call Stella and ask her to bring these things.",
    "Thank you for listening to this short message!",
    "Nothing ever changes in the village by the river.",
]


@pytest.fixture(scope="session")
def teacher_sentences() -> list[str]:
    """The sentences of :func:`teacher_corpus`."""
    return list(SENTENCES)


@pytest.fixture(scope="session")
def teacher_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Manifest of the eight sentences spoken by the teacher voice, with symbol durations: the
    voice's sampling noise off, so every run trains on the same audio."""
    from convai_tts.data.teacher import build_teacher_corpus

    return build_teacher_corpus(
        SENTENCES, tmp_path_factory.mktemp("teacher"), workers=1, variation=False
    )
