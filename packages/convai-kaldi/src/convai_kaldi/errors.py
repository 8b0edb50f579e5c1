"""Errors of convai-kaldi."""

from __future__ import annotations

from convai_core.errors import ConvaiError

__all__ = ["KaldiDataError"]


class KaldiDataError(ConvaiError):
    """A Kaldi data directory, table or manifest that cannot be used; names file and line."""
