"""Greedy CTC decoding, detokenization and word timestamps with numpy (no torch)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

WORD_MARKER = "\u2581"  # SentencePiece's word-start mark
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def greedy(log_probs: np.ndarray, blank_id: int) -> tuple[list[int], list[int]]:
    """Token ids and their first frames on the best path of one utterance.

    Shapes:
        log_probs: (T, V) -> two lists of equal length.
    """
    best = log_probs.argmax(axis=-1)  # (T, V) -> (T,)
    previous = np.concatenate([[-1], best[:-1]])
    emit = (best != previous) & (best != blank_id)
    frames = np.flatnonzero(emit)
    return [int(best[t]) for t in frames], [int(t) for t in frames]


def detokenize(ids: list[int], tokens: list[str], kind: str) -> str:
    """Text of token ids: characters joined, or SentencePiece pieces with ``▁`` as spaces."""
    pieces = [tokens[i] for i in ids if 0 <= i < len(tokens)]
    if kind != "sentencepiece":
        return "".join(pieces)
    out = bytearray()
    for piece in pieces:
        match = _BYTE_PIECE.match(piece)
        if match:
            out.append(int(match[1], 16))
        elif piece in ("<unk>",):
            out += " \u2047 ".encode()
        elif piece not in ("<s>", "</s>", "<pad>"):
            out += piece.replace(WORD_MARKER, " ").encode()
    return out.decode("utf-8", errors="replace").strip()


def word_starts(ids: list[int], tokens: list[str], kind: str) -> list[bool]:
    """Whether each emitted token starts a word (as convai-asr's tokenizers decide it)."""
    if kind == "sentencepiece":
        return [tokens[i].startswith(WORD_MARKER) for i in ids]
    flags, previous_space = [], True
    for i in ids:
        is_space = tokens[i].isspace()
        flags.append(previous_space and not is_space)
        previous_space = is_space
    return flags


def words(
    ids: list[int], frames: list[int], tokens: list[str], kind: str, frame_shift_s: float
) -> list[dict[str, Any]]:
    """``[{"word", "start", "end"}]``: tokens grouped into words, times in seconds."""
    out: list[dict[str, Any]] = []
    current: list[tuple[str, int]] = []

    def close() -> None:
        if current:
            out.append(
                {
                    "word": "".join(text for text, _ in current),
                    "start": round(current[0][1] * frame_shift_s, 6),
                    "end": round((current[-1][1] + 1) * frame_shift_s, 6),
                }
            )
            current.clear()

    for token_id, starts, frame in zip(ids, word_starts(ids, tokens, kind), frames, strict=True):
        clean = tokens[token_id].replace(WORD_MARKER, "").strip()
        if not clean:
            close()
            continue
        if starts:
            close()
        current.append((clean, frame))
    close()
    return out
