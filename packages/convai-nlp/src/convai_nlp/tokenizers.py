"""Tokenizers of convai-nlp (the core ``Tokenizer`` protocol).

* ``nlp/hf_tokenizer``: a Hugging Face fast tokenizer (WordPiece, BPE, Unigram) from its
  ``tokenizer.json``, the file a pretrained encoder ships; task models store the file in their
  ``.convai`` archive, so a restored model tokenizes offline exactly as in training.
* ``nlp/sentencepiece``: a SentencePiece model, loaded or trained from text files.
* ``nlp/char`` and ``nlp/word``: a character or whitespace-word vocabulary, given or built
  from text files.

Every tokenizer maps text to ids without special tokens (:meth:`encode`); the Hugging Face one
also builds encoder inputs with ``[CLS]``/``[SEP]`` and the word of each sub-token
(:meth:`HFTokenizer.encode_words`). Importing this module imports neither torch nor the
tokenizer libraries.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convai_core.errors import ConfigError

__all__ = [
    "NUM_CASES",
    "CharTokenizer",
    "Encoded",
    "HFTokenizer",
    "PairLayout",
    "Pieces",
    "SentencePieceTokenizer",
    "WordTokenizer",
    "case_class",
]

#: Case classes of :func:`case_class`: special token, uncased, lower, Title, UPPER, mIxed.
NUM_CASES = 6


def case_class(piece: str) -> int:
    """The letter case of the text a token came from: what an uncased tokenizer throws away.

    0 is kept for special tokens and padding; 1: no cased letter (digits, marks); 2: lower case;
    3: a capital then lower case (or one capital); 4: all capitals; 5: anything else.
    """
    cased = [c for c in piece if c.isupper() or c.islower()]
    if not cased:
        return 1
    if all(c.islower() for c in cased):
        return 2
    if cased[0].isupper() and all(c.islower() for c in cased[1:]):
        return 3
    if all(c.isupper() for c in cased):
        return 4
    return 5


@dataclass(frozen=True)
class Encoded:
    """One encoder input.

    Attributes:
        ids: token ids with the special tokens.
        word_ids: for each id, the index of the input word it belongs to (None for specials).
        case_ids: for each id, the :func:`case_class` of the text it came from.
    """

    ids: list[int]
    word_ids: list[int | None]
    case_ids: list[int]
    type_ids: list[int] | None = None

    def cut(self, limit: int) -> Encoded:
        """The first ``limit - 1`` tokens and the closing special token."""
        if len(self.ids) <= limit:
            return self
        return Encoded(
            [*self.ids[: limit - 1], self.ids[-1]],
            [*self.word_ids[: limit - 1], None],
            [*self.case_ids[: limit - 1], 0],
            None if self.type_ids is None else [*self.type_ids[: limit - 1], self.type_ids[-1]],
        )


@dataclass(frozen=True)
class Pieces:
    """Sub-tokens of one text without special tokens, with where each came from.

    Attributes:
        ids: token ids.
        offsets: ``(start, end)`` character span of each token in the text.
        case_ids: the :func:`case_class` of each token's text.
    """

    ids: list[int]
    offsets: list[tuple[int, int]]
    case_ids: list[int]


@dataclass(frozen=True)
class PairLayout:
    """Where a tokenizer puts its special tokens around a pair of texts (``A`` and ``B``).

    BERT: ``[CLS] A [SEP] B [SEP]`` with segment 0 up to the first ``[SEP]`` and 1 after;
    RoBERTa: ``<s> A </s></s> B </s>``, one segment.

    Attributes:
        prefix, middle, suffix: special token ids before ``A``, between, after ``B``.
        prefix_types, middle_types, suffix_types: their segment ids.
        type_a, type_b: the segment id of ``A``'s and of ``B``'s tokens.
    """

    prefix: list[int]
    middle: list[int]
    suffix: list[int]
    prefix_types: list[int]
    middle_types: list[int]
    suffix_types: list[int]
    type_a: int
    type_b: int

    @property
    def num_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    def join(self, a: Pieces, b: Pieces) -> Encoded:
        """``A`` and ``B`` (already cut to fit) as one encoder input; word ids are token
        indices into ``A`` and into ``B``."""
        ids = [*self.prefix, *a.ids, *self.middle, *b.ids, *self.suffix]
        types = [
            *self.prefix_types,
            *[self.type_a] * len(a.ids),
            *self.middle_types,
            *[self.type_b] * len(b.ids),
            *self.suffix_types,
        ]
        nones: list[int | None] = [None]
        words = [
            *nones * len(self.prefix),
            *range(len(a.ids)),
            *nones * len(self.middle),
            *range(len(b.ids)),
            *nones * len(self.suffix),
        ]
        cases = [
            *[0] * len(self.prefix),
            *a.case_ids,
            *[0] * len(self.middle),
            *b.case_ids,
            *[0] * len(self.suffix),
        ]
        return Encoded(ids, words, cases, types)


class HFTokenizer:
    """A Hugging Face fast tokenizer read from ``tokenizer.json`` (the ``tokenizers`` library).

    Args:
        tokenizer_file: path of ``tokenizer.json`` (normalizer, pre-tokenizer, vocabulary and
            the template that adds special tokens).
        max_length: most ids per encoder input, special tokens included.
    """

    def __init__(self, tokenizer_file: str, max_length: int = 512) -> None:
        from tokenizers import Tokenizer

        path = Path(tokenizer_file).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"model.tokenizer.tokenizer_file: {path} does not exist; point it at a "
                "tokenizer.json (a pretrained encoder's folder has one)."
            )
        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the library raises plain Exceptions on bad JSON
            raise ConfigError(
                f"{path} is not a tokenizer.json the tokenizers library reads: {exc}"
            ) from exc
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.tokenizer_file = str(path)
        self.max_length = int(max_length)
        vocab = self._tokenizer.get_vocab(with_added_tokens=True)
        self._tokens = [""] * (max(vocab.values()) + 1)
        for token, index in vocab.items():
            self._tokens[index] = token
        self.pad_id = self._special("[PAD]", "<pad>")
        self.cls_id = self._special("[CLS]", "<s>")
        self.sep_id = self._special("[SEP]", "</s>")
        self.unk_id = self._special("[UNK]", "<unk>")
        self._continuation = "##" if any(t.startswith("##") for t in self._tokens[:5000]) else None
        probe = self._tokenizer.encode("a", add_special_tokens=True)
        self._layout: PairLayout | None = None
        self.num_special = len(probe.ids) - len(
            self._tokenizer.encode("a", add_special_tokens=False).ids
        )

    def _special(self, *names: str) -> int:
        for name in names:
            index = self._tokenizer.token_to_id(name)
            if index is not None:
                return int(index)
        raise ConfigError(
            f"{self.tokenizer_file} has none of the special tokens {names}; it is not a "
            "BERT- or RoBERTa-style tokenizer."
        )

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=True))

    def word_boundaries(self, ids: Sequence[int]) -> list[bool]:
        if self._continuation is not None:
            return [not self._tokens[i].startswith(self._continuation) for i in ids]
        return [self._tokens[i].startswith(("Ġ", "▁")) or n == 0 for n, i in enumerate(ids)]

    def to_config(self) -> dict[str, Any]:
        return {
            "name": "nlp/hf_tokenizer",
            "tokenizer_file": self.tokenizer_file,
            "max_length": self.max_length,
        }

    def encode_texts(self, texts: Sequence[str], *, truncate: bool = True) -> list[Encoded]:
        """Encoder inputs of whole texts (``[CLS] text [SEP]``), cut to ``max_length``."""
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        result = []
        for text, e in zip(texts, encodings, strict=True):
            cases = [
                0 if w is None else case_class(text[a:b])
                for (a, b), w in zip(e.offsets, e.word_ids, strict=True)
            ]
            encoded = Encoded(list(e.ids), list(e.word_ids), cases)
            result.append(encoded.cut(self.max_length) if truncate else encoded)
        return result

    def encode_words(self, sentences: Sequence[Sequence[str]]) -> list[Encoded]:
        """Encoder inputs of pre-split words, with each sub-token's word index; not cut."""
        encodings = self._tokenizer.encode_batch(
            [list(words) for words in sentences], is_pretokenized=True, add_special_tokens=True
        )
        result = []
        for words, e in zip(sentences, encodings, strict=True):
            # offsets of pre-split words count from the start of each word
            cases = [
                0 if w is None else case_class(words[w][a:b])
                for (a, b), w in zip(e.offsets, e.word_ids, strict=True)
            ]
            result.append(Encoded(list(e.ids), list(e.word_ids), cases))
        return result

    def pieces(self, texts: Sequence[str]) -> list[Pieces]:
        """Sub-tokens of whole texts without special tokens, with character offsets."""
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [
            Pieces(
                list(e.ids),
                [(int(a), int(b)) for a, b in e.offsets],
                [case_class(text[a:b]) for a, b in e.offsets],
            )
            for text, e in zip(texts, encodings, strict=True)
        ]

    @property
    def pair_layout(self) -> PairLayout:
        """The tokenizer's special tokens and segment ids around a pair of texts."""
        if self._layout is None:
            probe = self._tokenizer.encode("a", "b", add_special_tokens=True)
            where = list(probe.sequence_ids)
            first_a, first_b = where.index(0), where.index(1)
            last_a, last_b = (
                len(where) - 1 - where[::-1].index(0),
                len(where) - 1 - where[::-1].index(1),
            )
            ids, types = list(probe.ids), list(probe.type_ids)
            self._layout = PairLayout(
                prefix=ids[:first_a],
                middle=ids[last_a + 1 : first_b],
                suffix=ids[last_b + 1 :],
                prefix_types=types[:first_a],
                middle_types=types[last_a + 1 : first_b],
                suffix_types=types[last_b + 1 :],
                type_a=types[first_a],
                type_b=types[first_b],
            )
        return self._layout

    def encode_pairs(
        self, firsts: Sequence[str], seconds: Sequence[str], *, max_first: int | None = None
    ) -> list[Encoded]:
        """Encoder inputs of text pairs (sentence pairs, question and passage), cut to fit.

        The longer side loses tokens from its end until the pair fits ``max_length``;
        ``max_first`` caps the first text beforehand (a question, say).
        """
        if len(firsts) != len(seconds):
            raise ValueError(f"{len(firsts)} first texts but {len(seconds)} second texts")
        layout = self.pair_layout
        budget = self.max_length - layout.num_special
        result = []
        for a, b in zip(self.pieces(firsts), self.pieces(seconds), strict=True):
            n_a, n_b = len(a.ids), len(b.ids)
            if max_first is not None:
                n_a = min(n_a, max_first)
            n_a, n_b = _fit_longest_first(n_a, n_b, budget)
            result.append(layout.join(_head(a, n_a), _head(b, n_b)))
        return result


def _fit_longest_first(n_a: int, n_b: int, budget: int) -> tuple[int, int]:
    """Token counts of a pair cut to ``budget``, one token at a time from the longer side."""
    excess = n_a + n_b - budget
    if excess <= 0:
        return n_a, n_b
    cut = min(excess, abs(n_a - n_b))
    if n_a > n_b:
        n_a -= cut
    else:
        n_b -= cut
    excess -= cut
    return n_a - excess // 2, n_b - (excess - excess // 2)


def _head(pieces: Pieces, count: int) -> Pieces:
    """The first ``count`` tokens of ``pieces``."""
    if count >= len(pieces.ids):
        return pieces
    return Pieces(pieces.ids[:count], pieces.offsets[:count], pieces.case_ids[:count])


def _read_lines(files: Iterable[str | os.PathLike[str]], key: str) -> list[str]:
    lines: list[str] = []
    for file in files:
        path = Path(file).expanduser()
        if not path.is_file():
            raise ConfigError(f"{key}: {path} does not exist")
        lines.extend(path.read_text(encoding="utf-8").splitlines())
    return lines


class _VocabTokenizer:
    """A fixed vocabulary of units (characters or words) with ``<unk>`` at id 0."""

    UNK = "<unk>"
    key = ""

    def __init__(
        self,
        vocabulary: Sequence[str] | None = None,
        text_files: Sequence[str] | None = None,
        min_count: int = 1,
        lowercase: bool = False,
    ) -> None:
        self.lowercase = bool(lowercase)
        if vocabulary is None:
            if not text_files:
                raise ConfigError(
                    f"model.tokenizer ({self.key}): give a vocabulary or text_files to build it from"
                )
            counts: dict[str, int] = {}
            for line in _read_lines(text_files, "model.tokenizer.text_files"):
                for unit in self._units(line):
                    counts[unit] = counts.get(unit, 0) + 1
            vocabulary = sorted(u for u, c in counts.items() if c >= int(min_count))
        units = [u for u in vocabulary if u != self.UNK]
        if len(set(units)) != len(units):
            raise ConfigError(f"model.tokenizer.vocabulary ({self.key}) repeats a unit")
        self._tokens = [self.UNK, *units]
        self._index = {u: i for i, u in enumerate(self._tokens)}

    def _units(self, text: str) -> list[str]:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    def encode(self, text: str) -> list[int]:
        return [self._index.get(u, 0) for u in self._units(text)]

    def to_config(self) -> dict[str, Any]:
        return {"name": self.key, "vocabulary": self._tokens[1:], "lowercase": self.lowercase}


class CharTokenizer(_VocabTokenizer):
    """One token per character (spaces included); unknown characters map to ``<unk>``."""

    key = "nlp/char"

    def _units(self, text: str) -> list[str]:
        return list(text.lower() if self.lowercase else text)

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self._tokens[i] for i in ids)

    def word_boundaries(self, ids: Sequence[int]) -> list[bool]:
        result, previous = [], " "
        for i in ids:
            unit = self._tokens[i]
            result.append(unit != " " and previous == " ")
            previous = unit
        return result


class WordTokenizer(_VocabTokenizer):
    """One token per whitespace-separated word; unknown words map to ``<unk>``."""

    key = "nlp/word"

    def _units(self, text: str) -> list[str]:
        return (text.lower() if self.lowercase else text).split()

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self._tokens[i] for i in ids)

    def word_boundaries(self, ids: Sequence[int]) -> list[bool]:
        return [True] * len(ids)


class SentencePieceTokenizer:
    """SentencePiece subwords: load ``model_file``, or train one from ``text_files``.

    Args:
        model_file: a trained ``.model`` file.
        text_files: text to train on when there is no model file (one sentence a line).
        vocab_size: size to train to.
        model_type: ``unigram`` or ``bpe``.
        output_dir: where a trained model is written (default: beside the first text file).
    """

    def __init__(
        self,
        model_file: str | None = None,
        text_files: Sequence[str] | None = None,
        vocab_size: int = 1000,
        model_type: str = "unigram",
        output_dir: str | None = None,
    ) -> None:
        import sentencepiece as spm

        if model_file is None:
            if not text_files:
                raise ConfigError(
                    "model.tokenizer (nlp/sentencepiece): give model_file, or text_files to train on"
                )
            lines = _read_lines(text_files, "model.tokenizer.text_files")
            folder = Path(output_dir or Path(text_files[0]).expanduser().parent)
            folder.mkdir(parents=True, exist_ok=True)
            prefix = folder / f"sentencepiece_{model_type}_{vocab_size}"
            try:
                spm.SentencePieceTrainer.train(
                    sentence_iterator=iter(lines),
                    model_prefix=str(prefix),
                    vocab_size=int(vocab_size),
                    model_type=model_type,
                    character_coverage=1.0,
                    minloglevel=2,
                )
            except RuntimeError as exc:  # e.g. a vocabulary larger than the text allows
                raise ConfigError(f"model.tokenizer (nlp/sentencepiece): {exc}") from exc
            model_file = str(prefix) + ".model"
        path = Path(model_file).expanduser()
        if not path.is_file():
            raise ConfigError(f"model.tokenizer.model_file: {path} does not exist")
        self.model_file = str(path)
        self._sp = spm.SentencePieceProcessor(model_file=self.model_file)

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    @property
    def tokens(self) -> list[str]:
        return [self._sp.id_to_piece(i) for i in range(self.vocab_size)]

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._sp.decode(list(ids)))

    def word_boundaries(self, ids: Sequence[int]) -> list[bool]:
        return [self._sp.id_to_piece(int(i)).startswith("▁") for i in ids]

    def to_config(self) -> dict[str, Any]:
        return {"name": "nlp/sentencepiece", "model_file": self.model_file}
