"""The English TTS frontend: raw text to sentences of phoneme symbols (registered tokenizer
``tts/english_phonemes``).

Steps: :func:`~convai_tts.text.normalize.normalize` (numbers, money, abbreviations), sentence
split, words to ARPAbet through :class:`~convai_tts.text.g2p.EnglishG2P`, and prosodic
punctuation kept as symbols (";" and ":" become ","). A sentence starts with a word gap and ends
with a pause mark ("." added when it has none), so every utterance has a place for its leading
and trailing silence. Sentences longer than ``max_symbols`` are cut at commas, else at word gaps.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from convai_core.errors import ConvaiError
from convai_tts.text.g2p import EnglishG2P
from convai_tts.text.normalize import normalize, split_sentences
from convai_tts.text.symbols import PAUSES, SYMBOLS, WORD_GAP

__all__ = ["EnglishPhonemizer"]

_TOKEN_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*'?|[,.!?;:]|\S")
_PAUSE_OF = {",": ",", ".": ".", "?": "?", "!": "!", ";": ",", ":": ","}
_SILENT = frozenset("\"'()[]{}*_~/\\|<>^")


def _fold(text: str) -> str:
    """Accented Latin letters lose their accents ("café" -> "cafe"); other text is kept."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class EnglishPhonemizer:
    """English text to phoneme symbols and ids (the core ``Tokenizer`` protocol).

    Args:
        lexicon: a CMU-format dictionary file (default: the CMU dictionary of the pocketsphinx
            wheel, fetched into the cache once). Models keep it as an archive artifact.
        user_lexicon: ``{word: "ARPABET PHONEMES"}``, winning over the dictionary.
        max_symbols: longest sentence a model takes in one piece; longer ones are cut.

    Attributes:
        dropped: characters that could not be read (not letters, digits or known marks), counted
            over every call.
    """

    #: The symbol inventory by id (models size their embeddings from it without loading a
    #: dictionary).
    SYMBOLS: tuple[str, ...] = SYMBOLS

    def __init__(
        self,
        lexicon: str | Path | None = None,
        user_lexicon: Mapping[str, str] | None = None,
        max_symbols: int = 400,
    ) -> None:
        self.g2p = EnglishG2P(lexicon, user_lexicon)
        self.max_symbols = int(max_symbols)
        if self.max_symbols < 16:
            raise ConvaiError(f"max_symbols must be at least 16, got {max_symbols}")
        self._ids = {symbol: i for i, symbol in enumerate(SYMBOLS)}
        self.dropped: Counter[str] = Counter()

    # -------------------------------------------------------------- Tokenizer protocol
    @property
    def vocab_size(self) -> int:
        return len(SYMBOLS)

    @property
    def tokens(self) -> list[str]:
        return list(SYMBOLS)

    @property
    def lexicon_path(self) -> Path:
        return self.g2p.lexicon_path

    def encode(self, text: str) -> list[int]:
        """One sentence of text to symbol ids (use :meth:`sentences` for longer text)."""
        return self.symbols_to_ids(self.phonemize(text))

    def decode(self, ids: Sequence[int]) -> str:
        """Ids to their symbols, separated by spaces (word gaps shown as ``|``)."""
        return " ".join("|" if SYMBOLS[i] == WORD_GAP else SYMBOLS[i] for i in ids if i > 0)

    def word_boundaries(self, ids: Sequence[int]) -> list[bool]:
        previous = WORD_GAP
        starts = []
        for i in ids:
            symbol = SYMBOLS[i]
            starts.append(previous == WORD_GAP and symbol not in (WORD_GAP, *PAUSES))
            previous = symbol if symbol not in PAUSES else WORD_GAP
        return starts

    def to_config(self) -> dict[str, Any]:
        return {
            "name": "tts/english_phonemes",
            "lexicon": str(self.g2p.lexicon_path),
            "user_lexicon": {w: " ".join(p) for w, p in self.g2p.user_lexicon.items()},
            "max_symbols": self.max_symbols,
        }

    # -------------------------------------------------------------- text -> symbols
    def symbols_to_ids(self, symbols: Sequence[str]) -> list[int]:
        unknown = sorted({s for s in symbols if s not in self._ids})
        if unknown:
            raise ConvaiError(
                f"unknown TTS symbols {unknown}; known symbols are {' '.join(SYMBOLS[1:])}"
            )
        return [self._ids[s] for s in symbols]

    def phonemize(self, sentence: str) -> list[str]:
        """Symbols of one already normalized sentence: a leading word gap, words separated by
        gaps, pauses for punctuation, a final pause.

        Raises:
            ConvaiError: the sentence has nothing to say (empty, or only unreadable characters).
        """
        symbols: list[str] = [WORD_GAP]
        for token in _TOKEN_RE.findall(_fold(sentence)):
            if token in _PAUSE_OF:
                pause = _PAUSE_OF[token]
                if symbols[-1] in PAUSES:  # "?!" or ",." -> the stronger (later) mark
                    symbols[-1] = pause
                elif len(symbols) > 1:
                    if symbols[-1] == WORD_GAP:
                        symbols.pop()
                    symbols.append(pause)
                continue
            if not token[0].isalpha():
                if token not in _SILENT and token != "-":
                    self.dropped[token] += 1
                continue
            phonemes = self.g2p(token)
            if not phonemes:
                continue
            if symbols[-1] != WORD_GAP:
                symbols.append(WORD_GAP)
            symbols.extend(phonemes)
        if len(symbols) == 1:
            raise ConvaiError(
                f"nothing to say in {sentence!r}: it has no word convai can read "
                "(English letters, digits, money, abbreviations)"
            )
        if symbols[-1] not in PAUSES:
            if symbols[-1] == WORD_GAP:
                symbols.pop()
            symbols.append(".")
        return symbols

    def sentences(self, text: str) -> list[list[str]]:
        """Raw text to sentences of symbols, each at most ``max_symbols`` long.

        Raises:
            ConvaiError: the text has nothing to say.
        """
        pieces: list[list[str]] = []
        for sentence in split_sentences(normalize(text)):
            try:
                symbols = self.phonemize(sentence)
            except ConvaiError:
                continue  # a stray mark between sentences
            pieces.extend(self._cut(symbols))
        if not pieces:
            raise ConvaiError(
                f"nothing to say in {text[:80]!r}: it has no word convai can read "
                "(English letters, digits, money, abbreviations)"
            )
        return pieces

    def _cut(self, symbols: list[str]) -> list[list[str]]:
        limit = self.max_symbols
        out: list[list[str]] = []
        while len(symbols) > limit:
            window = symbols[:limit]
            cut = max((i for i, s in enumerate(window) if s == ","), default=-1)
            if cut < limit // 3:
                gaps = [i for i, s in enumerate(window) if s == WORD_GAP and i > 0]
                cut = gaps[-1] if gaps else limit - 1
            head = window[: cut + 1]
            if head[-1] == WORD_GAP:
                head[-1] = ","
            out.append(head)
            symbols = [WORD_GAP, *symbols[cut + 1 :]]
            if len(symbols) > 1 and symbols[1] == WORD_GAP:
                symbols.pop(1)
        out.append(symbols)
        return out
