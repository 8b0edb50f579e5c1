"""Text corpora for synthetic speech: they live in :mod:`convai_core.corpora` (shared with TTS)."""

from __future__ import annotations

from convai_core.corpora import (
    GENSIM_WHEEL_REQUIREMENT,
    LEE_MEMBER,
    LEE_SHA256,
    SQUAD_TRAIN_MEMBER,
    SQUAD_TRAIN_SHA256,
    SQUAD_WHEEL_REQUIREMENT,
    news_sentences,
    text_file_sentences,
    wikipedia_sentences,
)

__all__ = [
    "GENSIM_WHEEL_REQUIREMENT",
    "LEE_MEMBER",
    "LEE_SHA256",
    "SQUAD_TRAIN_MEMBER",
    "SQUAD_TRAIN_SHA256",
    "SQUAD_WHEEL_REQUIREMENT",
    "news_sentences",
    "text_file_sentences",
    "wikipedia_sentences",
]
