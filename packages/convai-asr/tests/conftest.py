"""Shared fixtures: small speech datasets synthesized with espeak-ng (installed by `make`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from convai_asr.testing import SENTENCES, concatenate, synthesize_set, tiny_train_set


@pytest.fixture(scope="session")
def concat():
    """The :func:`concatenate` helper (test modules cannot import conftest by name)."""
    return concatenate


@pytest.fixture(scope="session")
def tiny_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 short commands spoken by one espeak-ng voice (manifest path)."""
    return synthesize_set(tmp_path_factory.mktemp("tiny_speech"), SENTENCES, "espeak-ng:en-us")


@pytest.fixture(scope="session")
def tiny_speech_train(tiny_speech: Path) -> Path:
    """The 20 commands plus 40 recordings of two or three of them joined by pauses (training
    set; see :func:`convai_asr.testing.tiny_train_set`)."""
    return tiny_train_set(tiny_speech)
