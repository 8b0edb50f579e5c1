"""A tokenizer: lower-case letters, space and apostrophe (a :class:`Tokenizer`)."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any


class LettersTokenizer:
    """One id per character of ``" " + a-z + extra``.

    Args:
        extra: characters added after the letters (default: the apostrophe).

    Raises:
        ValueError: on encoding a character outside the alphabet.
    """

    def __init__(self, extra: str = "'") -> None:
        self.extra = extra
        self._tokens = [" ", *string.ascii_lowercase, *extra]
        self._ids = {c: i for i, c in enumerate(self._tokens)}

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    @property
    def alphabet(self) -> list[str]:
        """Characters transcripts may hold (an ASR model's text normalizer drops the rest)."""
        return list(self._tokens)

    def encode(self, text: str) -> list[int]:
        unknown = sorted({c for c in text if c not in self._ids})
        if unknown:
            raise ValueError(f"characters {unknown} are not in the letters alphabet")
        return [self._ids[c] for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self._tokens[i] for i in ids if 0 <= i < len(self._tokens))

    def word_boundaries(self, ids: Sequence[int]) -> list[bool]:
        flags, previous_space = [], True
        for i in ids:
            is_space = self._tokens[i] == " "
            flags.append(previous_space and not is_space)
            previous_space = is_space
        return flags

    def to_config(self) -> dict[str, Any]:
        return {"name": "toy/letters", "extra": self.extra}
