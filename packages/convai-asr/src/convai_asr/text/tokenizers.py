"""Tokenizers that turn transcripts into label ids for CTC models.

Ids run from 0 to ``vocab_size - 1``; the CTC blank is *not* part of the tokenizer and a model puts
it at id ``vocab_size`` (so its output layer has ``vocab_size + 1`` classes).

* :class:`CharTokenizer`: one token per character; English by default, or built from training
  text (so Mandarin Han characters work).
* :class:`SentencePieceTokenizer`: sub-word pieces from a SentencePiece model, trained offline
  with :func:`train_sentencepiece`.
* :func:`build_tokenizer`: a tokenizer from a config node ``{name: <tokenizers key>, ...}``
  through the registry (``asr/char``, ``asr/sentencepiece`` or a plugin's).

Both implement :class:`convai_core.interfaces.Tokenizer` (re-exported here), the protocol every
convai tokenizer follows.
"""

from __future__ import annotations

import io
import os
import string
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from convai_core.errors import ConfigError, ConvaiError
from convai_core.interfaces import Tokenizer

__all__ = [
    "CharTokenizer",
    "SentencePieceTokenizer",
    "Tokenizer",
    "build_tokenizer",
    "train_sentencepiece",
]

_WORD_START = "\u2581"  # SentencePiece's "▁", marks a piece that starts a word
_ENGLISH = (" ", *string.ascii_lowercase, "'")


class CharTokenizer:
    """One token per character.

    Args:
        vocabulary: the characters, in id order; each a single character, no duplicates. A
            string is read as its characters; ``None`` gives :meth:`english`'s.

    Raises:
        ConfigError: the vocabulary is empty, holds duplicates or multi-character entries.
    """

    def __init__(self, vocabulary: Sequence[str] | None = None) -> None:
        vocabulary = list(_ENGLISH if vocabulary is None else vocabulary)
        if not vocabulary:
            raise ConfigError("a character vocabulary needs at least one character")
        long_entries = [v for v in vocabulary if not isinstance(v, str) or len(v) != 1]
        if long_entries:
            raise ConfigError(
                f"character vocabulary entries must be single characters, got {long_entries[:5]}; "
                "use a SentencePiece tokenizer for multi-character tokens"
            )
        duplicates = sorted(c for c, n in Counter(vocabulary).items() if n > 1)
        if duplicates:
            raise ConfigError(f"character vocabulary lists {duplicates} more than once")
        self._tokens = vocabulary
        self._ids = {c: i for i, c in enumerate(vocabulary)}

    @classmethod
    def english(cls) -> CharTokenizer:
        """Space, ``a``-``z`` and the apostrophe, in that order (28 tokens)."""
        return cls(_ENGLISH)

    @classmethod
    def from_texts(cls, texts: Iterable[str], *, min_count: int = 1) -> CharTokenizer:
        """Build the vocabulary from (normalized) training transcripts.

        Characters seen at least ``min_count`` times are kept, space first (if present), then by
        decreasing frequency, ties by code point, so the result is deterministic.

        Raises:
            ConfigError: no character reaches ``min_count``.
        """
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        for control in [c for c in counts if c in "\t\n\r\x0b\x0c"]:
            del counts[control]
        kept = [c for c, n in counts.items() if n >= min_count and c != " "]
        kept.sort(key=lambda c: (-counts[c], ord(c)))
        if counts.get(" ", 0) >= min_count:
            kept.insert(0, " ")
        if not kept:
            raise ConfigError(
                f"no character occurs at least min_count={min_count} times in the texts; "
                "lower min_count or check that the transcripts are not empty"
            )
        return cls(kept)

    @property
    def vocab_size(self) -> int:
        """Number of characters (without the CTC blank)."""
        return len(self._tokens)

    @property
    def tokens(self) -> list[str]:
        """The characters, indexed by id."""
        return list(self._tokens)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        """Characters to ids.

        Raises:
            ConvaiError: the text holds characters outside the vocabulary (normalize first, e.g.
                with :class:`~convai_asr.text.normalize.TextNormalizer`).
        """
        ids = self._ids
        try:
            return [ids[c] for c in text]
        except KeyError:
            unknown = sorted({c for c in text if c not in ids})
            raise ConvaiError(
                f"text {text[:60]!r} holds characters outside the tokenizer's vocabulary: "
                f"{unknown}; normalize transcripts with TextNormalizer(tokenizer.tokens) first, "
                "or build the vocabulary from the training text (CharTokenizer.from_texts)"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        """Ids to text (ids out of range, such as the CTC blank, are skipped)."""
        tokens, size = self._tokens, len(self._tokens)
        return "".join(tokens[int(i)] for i in ids if 0 <= int(i) < size)

    def word_boundaries(self, ids: Sequence[int]) -> list[bool]:
        """True for a non-space token that is first or follows a space."""
        flags: list[bool] = []
        previous_space = True
        for i in ids:
            is_space = self._tokens[int(i)].isspace()
            flags.append(previous_space and not is_space)
            previous_space = is_space
        return flags

    @property
    def alphabet(self) -> list[str]:
        """The characters transcripts may hold (text normalization drops the others)."""
        return list(self._tokens)

    def to_config(self) -> dict[str, Any]:
        """``{"name": "asr/char", "vocabulary": [...]}``."""
        return {"name": "asr/char", "vocabulary": list(self._tokens)}


class SentencePieceTokenizer:
    """Sub-word tokens from a SentencePiece model file.

    Args:
        model_path: the ``.model`` file written by :func:`train_sentencepiece` (or any
            SentencePiece model; BOS/EOS ids, if the model has them, are never emitted).

    Raises:
        ConfigError: the file is missing or not a SentencePiece model.
    """

    def __init__(self, model_path: str | os.PathLike[str]) -> None:
        import sentencepiece as spm

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ConfigError(
                f"SentencePiece model {str(self.model_path)!r} does not exist; train one with "
                "convai_asr.text.tokenizers.train_sentencepiece or fix tokenizer.model_path"
            )
        processor = spm.SentencePieceProcessor()
        try:
            processor.Load(str(self.model_path))
        except (OSError, RuntimeError) as exc:
            raise ConfigError(
                f"{str(self.model_path)!r} is not a readable SentencePiece model ({exc}); "
                "retrain it with train_sentencepiece"
            ) from exc
        self._sp = processor
        self._tokens = [processor.IdToPiece(i) for i in range(processor.GetPieceSize())]

    @property
    def vocab_size(self) -> int:
        """Number of pieces (without the CTC blank)."""
        return len(self._tokens)

    @property
    def tokens(self) -> list[str]:
        """The pieces, indexed by id."""
        return list(self._tokens)

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer({str(self.model_path)!r}, vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        """Text to piece ids (characters the model never saw map to its ``<unk>`` id)."""
        return list(self._sp.EncodeAsIds(text))

    def decode(self, ids: Sequence[int]) -> str:
        """Piece ids to text (ids out of range, such as the CTC blank, are skipped)."""
        size = len(self._tokens)
        return str(self._sp.DecodeIds([int(i) for i in ids if 0 <= int(i) < size]))

    def word_boundaries(self, ids: Sequence[int]) -> list[bool]:
        """True for pieces that start with ``▁`` (SentencePiece's word-start mark)."""
        return [self._tokens[int(i)].startswith(_WORD_START) for i in ids]

    def to_config(self) -> dict[str, Any]:
        """``{"name": "asr/sentencepiece", "model_path": "..."}``."""
        return {"name": "asr/sentencepiece", "model_path": str(self.model_path)}


def train_sentencepiece(
    texts: Iterable[str],
    *,
    vocab_size: int,
    output_dir: str | os.PathLike[str],
    model_type: Literal["unigram", "bpe"] = "unigram",
    character_coverage: float = 1.0,
) -> Path:
    """Train a SentencePiece model on transcripts, offline and deterministically.

    The model has ``<unk>`` at id 0 and no BOS/EOS pieces (CTC does not use them). Training uses one
    thread and keeps the input order, so the same texts give the same model.

    Args:
        texts: normalized training transcripts.
        vocab_size: number of pieces, ``<unk>`` included.
        output_dir: where ``tokenizer.model`` and ``tokenizer.vocab`` are written (created).
        model_type: ``"unigram"`` or ``"bpe"``.
        character_coverage: share of characters the model must cover (1.0 for English; 0.9995 is
            usual for Mandarin).

    Returns:
        The path of ``tokenizer.model``.

    Raises:
        ConfigError: bad arguments, no text, or a ``vocab_size`` the text cannot fill.
    """
    import sentencepiece as spm

    if model_type not in ("unigram", "bpe"):
        raise ConfigError(f"model_type must be 'unigram' or 'bpe', got {model_type!r}")
    if vocab_size < 2:
        raise ConfigError(f"vocab_size must be at least 2, got {vocab_size}")
    sentences = [t.strip() for t in texts if t and t.strip()]
    if not sentences:
        raise ConfigError("train_sentencepiece got no non-empty text; check the training manifest")
    model = io.BytesIO()
    try:
        # model_writer keeps the output path out of the model, so its bytes depend on the text only
        spm.SentencePieceTrainer.Train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            unk_id=0,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            num_threads=1,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise ConfigError(
            f"SentencePiece training failed: {exc}; with {len(sentences)} sentences, lower "
            "vocab_size (the text may not hold that many distinct pieces)"
        ) from exc
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = "".join(
        f"{processor.IdToPiece(i)}\t{processor.GetScore(i):g}\n"
        for i in range(processor.GetPieceSize())
    )
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    _write_atomic(output / "tokenizer.model", model.getvalue())
    _write_atomic(output / "tokenizer.vocab", vocab.encode("utf-8"))
    return output / "tokenizer.model"


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


#: Old ``tokenizer.type`` values and the registry keys that replace them.
LEGACY_TOKENIZER_NAMES = {"char": "asr/char", "sentencepiece": "asr/sentencepiece"}


def build_tokenizer(cfg: Any, *, path: str = "tokenizer") -> Tokenizer:
    """Build a tokenizer from a config node through the ``tokenizers`` registry.

    ``{"name": "asr/char"}`` gives the English characters; ``{"name": "asr/char", "vocabulary":
    [...]}`` a given set; ``{"name": "asr/sentencepiece", "model_path": "tokenizer.model"}`` a
    sub-word model; any key a plugin registers works the same way. The old form ``{"type":
    "char"}`` still works for one release, with a warning.

    Args:
        cfg: the node (a dict or an OmegaConf ``DictConfig``).
        path: its config path, for messages.

    Raises:
        ConfigError: a missing or unknown ``name``, an unknown key (with the closest valid one),
            or a missing ``model_path``.
    """
    from convai_core.components import build, rename_legacy_type

    node = rename_legacy_type(
        cfg, path=path, names=LEGACY_TOKENIZER_NAMES, removed_in="convai-asr 0.3"
    )
    return build("tokenizers", node, path=path)
