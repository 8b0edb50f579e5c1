"""Shared fixtures: small speech datasets synthesized with espeak-ng (installed by `make`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from convai_asr.testing import SENTENCES, concatenate, fit_tiny, synthesize_set, tiny_train_set


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


@pytest.fixture(scope="session")
def tiny_fits(
    tiny_speech_train: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Any]:
    """``tiny_fits(kind)``: the tiny ``kind`` model (``quartznet`` or ``conformer``) trained on
    the tiny set, once per test session on first use, and shared by every test file (its
    :class:`~convai_core.train.TrainResult`; tests must not change the model in place)."""
    results: dict[str, Any] = {}

    def get(kind: str) -> Any:
        if kind not in results:
            results[kind] = fit_tiny(kind, tiny_speech_train, tmp_path_factory.mktemp(f"fit_{kind}"))
        return results[kind]

    return get
