"""Build an n-gram language model (KenLM ARPA or binary) from plain text, for beam search.

The text is normalized the way transcripts are (lower case, numbers spelled out, only the
characters a model can emit) so the LM's words match what the acoustic model spells. Three kinds
of unit:

* ``word``: a word n-gram, for lexicon decoding (the decoder spells each LM word with the
  acoustic model's tokenizer; only words of the lexicon can come out).
* ``char``: a character n-gram whose words are single characters and ``|`` between words, for
  lexicon-free decoding of character models (words outside any vocabulary can still come out).
* ``tokens``: the acoustic model's own tokens (SentencePiece pieces), for lexicon-free decoding
  of subword models; needs the model's tokenizer.

Beside ``lm.bin`` it writes ``lm.bin.vocab.txt`` (each word and its count, most frequent first:
the lexicon's word list) and ``lm.bin.json`` (units, order, normalization; the decoder reads it to
refuse a mismatched LM with a clear message).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from convai_asr.lm.kenlm_tools import kenlm_tools
from convai_asr.text.normalize import TextNormalizer
from convai_core.errors import ConfigError, ConvaiError
from convai_core.interfaces import Tokenizer

__all__ = [
    "MAX_DECODER_ORDER",
    "WORD_SEPARATOR",
    "LMInfo",
    "build_lm",
    "lm_corpus_lines",
    "read_lm_info",
    "tokens_digest",
]

#: The word separator of character LMs (a space cannot be a KenLM word).
WORD_SEPARATOR = "|"
#: The highest n-gram order the decoder's KenLM (inside flashlight-text) loads.
MAX_DECODER_ORDER = 6
Units = Literal["word", "char", "tokens"]


@dataclass
class LMInfo:
    """What a built LM holds; saved as ``<lm>.json`` beside it."""

    units: str
    order: int
    sentences: int
    words: int
    vocabulary: int
    prune: list[int] = field(default_factory=list)
    lowercase: bool = True
    numbers_to_words: bool = True
    characters: list[str] | None = None
    tokenizer: dict[str, Any] | None = None
    tokens_sha256: str | None = None
    seconds: float = 0.0

    def save(self, path: Path) -> None:
        _write_atomic(path, json.dumps(asdict(self), indent=2).encode())


def read_lm_info(lm_path: str | os.PathLike[str]) -> LMInfo | None:
    """The ``<lm>.json`` written by :func:`build_lm`, or None for an LM built elsewhere."""
    sidecar = Path(f"{lm_path}.json")
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        return LMInfo(**data)
    except (ValueError, TypeError) as err:
        raise ConvaiError(
            f"{sidecar} is not a convai LM description ({err}); delete it to use {lm_path} as "
            "a word LM, or build the LM again with convai lm build"
        ) from err


def tokens_digest(tokenizer: Tokenizer) -> str:
    """A fingerprint of a tokenizer's pieces, in id order (token LMs must match their model)."""
    return hashlib.sha256("\n".join(tokenizer.tokens).encode("utf-8")).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def lm_corpus_lines(
    lines: Iterable[str],
    *,
    units: Units,
    normalizer: TextNormalizer | None,
    tokenizer: Tokenizer | None = None,
) -> Iterable[str]:
    """The LM's training lines: normalized, then split into the LM's units (blank lines dropped)."""
    for line in lines:
        text = normalizer(line) if normalizer is not None else " ".join(line.split())
        if not text:
            continue
        if units == "word":
            yield text
        elif units == "char":
            yield " ".join(
                WORD_SEPARATOR if ch == " " else ch for ch in text if not ch.isspace() or ch == " "
            )
        else:
            assert tokenizer is not None
            pieces = tokenizer.tokens
            yield " ".join(pieces[i] for i in tokenizer.encode(text))


def build_lm(
    texts: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    order: int = 3,
    units: Units = "word",
    prune: Sequence[int] = (),
    normalizer: TextNormalizer | None = None,
    tokenizer: Tokenizer | None = None,
    memory: str = "20%",
    progress: Callable[[str], None] | None = None,
) -> LMInfo:
    """Train an n-gram LM with KenLM's ``lmplz`` and write it (binary unless ``.arpa``).

    Args:
        texts: UTF-8 text files, one sentence (or paragraph) per line.
        output: ``*.arpa`` for an ARPA file, anything else for a KenLM binary (probing).
        order: the n of the n-grams (2..6: the decoder's KenLM reads up to 6).
        units: ``word``, ``char`` or ``tokens`` (see the module docstring).
        prune: lmplz's ``--prune``: for each order, drop n-grams seen at most that many times
            (``[0, 0, 1]`` prunes trigram singletons); empty keeps everything.
        normalizer: the transcript normalizer (``TextNormalizer`` of an English character set by
            default); ``None`` is replaced by that default, pass ``TextNormalizer(None,
            lowercase=False, numbers_to_words=False)`` to keep the text as it is.
        tokenizer: the acoustic model's tokenizer, needed for ``units="tokens"``.
        memory: lmplz's ``-S`` (memory for sorting).
        progress: called with one line per step (default: print to standard error).

    Returns:
        What was built (also saved as ``<output>.json``).

    Raises:
        ConfigError: an argument is out of range or a text file is missing or empty.
        ConvaiError: KenLM failed (its last output lines are in the message).
    """
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    if units not in ("word", "char", "tokens"):
        raise ConfigError(f"units must be word, char or tokens; got {units!r}")
    if not 2 <= order <= MAX_DECODER_ORDER:
        raise ConfigError(
            f"order must be between 2 and {MAX_DECODER_ORDER} (the most flashlight's KenLM loads "
            f"for decoding); got {order}"
        )
    if units == "tokens" and tokenizer is None:
        raise ConfigError("units='tokens' needs the acoustic model's tokenizer (--model M.convai)")
    if units == "tokens" and tokenizer is not None and " " in tokenizer.tokens:
        raise ConfigError(
            "this model's tokens are characters with a space: build a character LM (--units "
            "char), whose word separator the decoder understands"
        )
    if prune and (len(prune) > order or any(p < 0 for p in prune) or list(prune) != sorted(prune)):
        raise ConfigError(
            f"prune takes at most {order} non-negative, non-decreasing counts (one per order); "
            f"got {list(prune)}"
        )
    if not texts:
        raise ConfigError("give at least one text file")
    for text in texts:
        if not Path(text).is_file():
            raise ConfigError(f"text file {text} does not exist")
    if normalizer is None:
        from convai_asr.text.tokenizers import CharTokenizer

        normalizer = TextNormalizer(CharTokenizer.english().tokens)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tools = kenlm_tools(progress=say)
    started = time.perf_counter()
    counts: Counter[str] = Counter()
    sentences = 0
    with tempfile.TemporaryDirectory(prefix="convai-lm-", dir=output.parent) as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "corpus.txt"
        with open(corpus, "w", encoding="utf-8") as out:
            for path in texts:
                with open(path, encoding="utf-8", errors="strict") as fh:
                    try:
                        for line in lm_corpus_lines(
                            fh, units=units, normalizer=normalizer, tokenizer=tokenizer
                        ):
                            out.write(line + "\n")
                            counts.update(line.split())
                            sentences += 1
                    except UnicodeDecodeError as err:
                        raise ConfigError(f"{path} is not UTF-8 text ({err})") from err
        if sentences == 0:
            raise ConfigError(
                f"no text left in {', '.join(map(str, texts))} after normalization; check the "
                "files hold sentences in the model's language"
            )
        total = sum(counts.values())
        say(
            f"lm: {sentences:,} lines, {total:,} {units} units, {len(counts):,} distinct; "
            f"estimating a {order}-gram with lmplz"
        )
        arpa = tmp / "lm.arpa"
        command = [
            str(tools.lmplz), "-o", str(order), "--text", str(corpus), "--arpa", str(arpa),
            "-S", memory, "-T", str(tmp), "--discount_fallback",
        ]  # fmt: skip
        if prune:
            command += ["--prune", *map(str, prune)]
        _run_kenlm(command, "lmplz")
        staged = tmp / "lm.out"
        if output.suffix == ".arpa":
            arpa.replace(staged)
        else:
            say("lm: writing the KenLM binary with build_binary")
            _run_kenlm([str(tools.build_binary), str(arpa), str(staged)], "build_binary")
        info = LMInfo(
            units=units,
            order=order,
            sentences=sentences,
            words=total,
            vocabulary=len(counts),
            prune=list(prune),
            lowercase=normalizer.lowercase,
            numbers_to_words=normalizer.numbers_to_words,
            characters=None if normalizer.vocabulary is None else sorted(normalizer.vocabulary),
            tokenizer=tokenizer.to_config() if units == "tokens" and tokenizer else None,
            tokens_sha256=tokens_digest(tokenizer) if units == "tokens" and tokenizer else None,
            seconds=round(time.perf_counter() - started, 2),
        )
        vocab = "".join(f"{w}\t{n}\n" for w, n in sorted(counts.items(), key=lambda x: -x[1]))
        # the description goes last: the decoder trusts it, so it must not describe an old LM
        Path(f"{output}.json").unlink(missing_ok=True)
        _write_atomic(Path(f"{output}.vocab.txt"), vocab.encode("utf-8"))
        staged.replace(output)
        info.save(Path(f"{output}.json"))
    say(f"lm: wrote {output} ({output.stat().st_size / 1e6:.2f} MB) in {info.seconds:.1f} s")
    return info


def _run_kenlm(command: list[str], name: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-12:])
        raise ConvaiError(f"KenLM's {name} failed (exit {result.returncode}):\n{tail}")
