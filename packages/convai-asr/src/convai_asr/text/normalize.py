"""Transcript normalization: bring raw text into a model's alphabet before tokenizing.

The steps, in order: Unicode NFKC (full-width digits and letters become ASCII), typographic
apostrophes become ``'``, optional lower-casing, ASCII numbers spelled out in English words, dashes
and slashes outside the vocabulary become spaces, accented letters outside it lose their accents
when the base letter is in it ("café" -> "cafe"), every other character outside the vocabulary is
dropped (and counted in :attr:`TextNormalizer.removed`), and whitespace is collapsed.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from convai_core.numbers import number_to_words

__all__ = ["TextNormalizer", "number_to_words"]

# An ASCII number: 1,000,000 / 3.25 / 21st. Only ASCII digits ([0-9], not \d, which also matches
# Arabic-Indic and other digits we cannot spell in English).
_NUMBER_RE = re.compile(r"[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?(?:st|nd|rd|th)?", re.IGNORECASE)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
# Word separators that become a space when the vocabulary lacks them ("well-known" -> "well known").
_SEPARATORS = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015/_")
_WHITESPACE_RE = re.compile(r"\s+")


@lru_cache(maxsize=4096)
def _strip_accents(char: str) -> str:
    """The character without its combining marks ("é" -> "e", "ß" stays), or "" if unchanged."""
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return base if base != char else ""


def _is_english_like(vocabulary: frozenset[str]) -> bool:
    lowered = {c.lower() for c in vocabulary}
    return set(string.ascii_lowercase) <= lowered and not (set(string.digits) & lowered)


class TextNormalizer:
    """Normalize transcripts into a vocabulary (a character set).

    Example:
        >>> norm = TextNormalizer(CharTokenizer.english().tokens)
        >>> norm("In 1990, I had 3 cats!")
        'in nineteen ninety i had three cats'
        >>> norm.removed
        Counter({',': 1, '!': 1})

    Args:
        vocabulary: the characters a model can emit (e.g. ``tokenizer.tokens`` of a character
            tokenizer); ``None`` keeps every character.
        lowercase: lower-case the text (a no-op for scripts without case, such as Han).
        numbers_to_words: spell ASCII numbers as English words. ``None`` (the default) decides from
            the vocabulary: on when it is ``None`` or English-like (holds a-z and no digit), off
            otherwise (a Mandarin vocabulary keeps its digits, or drops them if it lacks them).

    Attributes:
        removed: how many times each character was dropped because it is outside the vocabulary,
            summed over every call (public so training can report what the data lost).
    """

    def __init__(
        self,
        vocabulary: Iterable[str] | None = None,
        *,
        lowercase: bool = True,
        numbers_to_words: bool | None = None,
    ) -> None:
        self.vocabulary: frozenset[str] | None = (
            None if vocabulary is None else frozenset(vocabulary)
        )
        self.lowercase = lowercase
        if numbers_to_words is None:
            numbers_to_words = self.vocabulary is None or _is_english_like(self.vocabulary)
        self.numbers_to_words = numbers_to_words
        self.removed: Counter[str] = Counter()

    def __repr__(self) -> str:
        size = "any" if self.vocabulary is None else str(len(self.vocabulary))
        return (
            f"TextNormalizer(vocabulary={size} chars, lowercase={self.lowercase}, "
            f"numbers_to_words={self.numbers_to_words})"
        )

    def __call__(self, text: str) -> str:
        """Normalize one transcript (see the module docstring for the steps)."""
        text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
        if self.lowercase:
            text = text.lower()
        if self.numbers_to_words:
            text = _NUMBER_RE.sub(lambda m: f" {number_to_words(m.group(0))} ", text)
        text = _WHITESPACE_RE.sub(" ", text)
        if self.vocabulary is not None:
            text = self._filter(text)
        return _WHITESPACE_RE.sub(" ", text).strip()

    def _filter(self, text: str) -> str:
        vocabulary = self.vocabulary
        assert vocabulary is not None
        kept: list[str] = []
        for char in text:
            if char in vocabulary:
                kept.append(char)
                continue
            if char == " ":
                # a vocabulary without space (Mandarin...): spaces are dropped, not counted
                continue
            folded = _strip_accents(char)
            if folded and all(c in vocabulary for c in folded):  # "é" -> "e" when only "e" is known
                kept.append(folded)
                continue
            self.removed[char] += 1
            if char in _SEPARATORS and " " in vocabulary:
                kept.append(" ")
        return "".join(kept)
