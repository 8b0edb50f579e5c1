"""Errors of convai-nlp."""

from __future__ import annotations

from convai_core.errors import ConvaiError


class DataError(ConvaiError):
    """A data file is missing, malformed, or holds a label the model does not know.

    The message names the file and line and says what to do.
    """
