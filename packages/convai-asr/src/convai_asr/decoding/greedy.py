"""Greedy (best-path) CTC decoding, with token frames and word timestamps."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from convai_core.interfaces import Hypothesis

__all__ = ["GreedyCTCDecoder", "GreedyHypothesis", "ctc_greedy_decode", "word_timestamps"]

#: SentencePiece's word-start marker; stripped from token texts when building words.
WORD_MARKER = "\u2581"


@dataclass
class GreedyHypothesis:
    """The best path of one utterance.

    Attributes:
        token_ids: emitted tokens, repeats collapsed and blanks dropped.
        token_frames: for each emitted token, the frame where its run of frames starts.
        score: log-probability of the best frame path (sum of each valid frame's best score).
    """

    token_ids: list[int] = field(default_factory=list)
    token_frames: list[int] = field(default_factory=list)
    score: float = 0.0


def ctc_greedy_decode(
    log_probs: torch.Tensor, lengths: torch.Tensor, blank_id: int
) -> list[GreedyHypothesis]:
    """Decode a batch by taking the best class of every frame.

    A token is emitted at the first frame of each run of equal best classes, unless the class is
    the blank; frames past each item's length are ignored. The argmax and the collapse run on the
    whole batch at once; only the final lists are built per item.

    Args:
        log_probs: per-frame log-probabilities (any scores work; ``score`` then sums them).
        lengths: valid frames per item.
        blank_id: index of the blank class.

    Returns:
        One :class:`GreedyHypothesis` per item, in batch order.

    Raises:
        ValueError: ``log_probs`` is not 3-D or ``blank_id`` is out of range.

    Shapes:
        log_probs: (B, T, V), lengths: (B,) -> B hypotheses.
    """
    if log_probs.dim() != 3:
        raise ValueError(
            f"log_probs must be (B, T, V); got shape {tuple(log_probs.shape)}. Add the batch "
            "axis with log_probs.unsqueeze(0)."
        )
    if not 0 <= blank_id < log_probs.shape[-1]:
        raise ValueError(f"blank_id={blank_id} is outside the {log_probs.shape[-1]} classes.")
    batch, time, _ = log_probs.shape
    with torch.no_grad():
        best_scores, best_ids = log_probs.detach().max(dim=-1)  # (B, T, V) -> (B, T), (B, T)
        lengths = lengths.to(best_ids.device).long()
        steps = torch.arange(time, device=best_ids.device)
        valid = steps.unsqueeze(0) < lengths.unsqueeze(1)  # (1, T) < (B, 1) -> (B, T)
        previous = torch.cat(  # the class of frame t - 1 (-1 before the first frame)
            [torch.full_like(best_ids[:, :1], -1), best_ids[:, :-1]], dim=1
        )
        emit = valid & (best_ids != previous) & (best_ids != blank_id)  # (B, T)
        scores = (best_scores.float() * valid).sum(dim=1)  # (B, T) -> (B,)
    ids_rows = best_ids.cpu().tolist()
    emit_rows = emit.cpu().tolist()
    score_list = scores.cpu().tolist()
    hypotheses = []
    for item in range(batch):
        frames = [t for t, flag in enumerate(emit_rows[item]) if flag]
        hypotheses.append(
            GreedyHypothesis(
                token_ids=[ids_rows[item][t] for t in frames],
                token_frames=frames,
                score=float(score_list[item]),
            )
        )
    return hypotheses


class GreedyCTCDecoder:
    """The ``asr/ctc_greedy`` decoder: :func:`ctc_greedy_decode` as a registry component.

    Built from a model's ``decoding`` node (``{name: asr/ctc_greedy}``); the model supplies
    ``blank_id``. Implements :class:`convai_core.interfaces.Decoder`.

    Args:
        blank_id: index of the blank class.

    Shapes:
        log_probs: (B, T, V), lengths: (B,) -> B hypotheses.
    """

    def __init__(self, blank_id: int) -> None:
        self.blank_id = int(blank_id)

    def __repr__(self) -> str:
        return f"GreedyCTCDecoder(blank_id={self.blank_id})"

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[GreedyHypothesis]:
        return ctc_greedy_decode(log_probs, lengths, blank_id=self.blank_id)


def word_timestamps(
    hyp: Hypothesis,
    tokens_text: list[str],
    word_start_flags: list[bool],
    frame_shift_s: float,
) -> list[dict[str, object]]:
    """Group a hypothesis' tokens into words with start and end times.

    A token whose flag is True starts a new word (the first token always does). Tokens whose
    text is empty once the SentencePiece marker ``▁`` and whitespace are stripped (a space
    token of a character vocabulary) end the current word and belong to no word. A word starts
    at ``first token frame * frame_shift_s`` and ends at ``(last token frame + 1) *
    frame_shift_s``; since token frames strictly increase, words come in order and never
    overlap (one may end exactly where the next starts).

    Args:
        hyp: a decoded hypothesis.
        tokens_text: the text of each emitted token (``len(hyp.token_ids)`` items).
        word_start_flags: whether each emitted token starts a word.
        frame_shift_s: seconds per output frame (preprocessor hop times encoder stride).

    Returns:
        ``[{"word": str, "start": float, "end": float}, ...]`` in order, times in seconds
        rounded to microseconds.

    Raises:
        ValueError: the lists do not match the hypothesis' tokens.
    """
    count = len(hyp.token_frames)
    if len(tokens_text) != count or len(word_start_flags) != count:
        raise ValueError(
            f"the hypothesis has {count} tokens but got {len(tokens_text)} token texts and "
            f"{len(word_start_flags)} word-start flags; pass one of each per emitted token."
        )
    words: list[dict[str, object]] = []
    current: list[tuple[str, int]] = []  # (text, frame) of the word being built

    def close() -> None:
        if current:
            words.append(
                {
                    "word": "".join(text for text, _ in current),
                    "start": round(current[0][1] * frame_shift_s, 6),
                    "end": round((current[-1][1] + 1) * frame_shift_s, 6),
                }
            )
            current.clear()

    for text, starts_word, frame in zip(
        tokens_text, word_start_flags, hyp.token_frames, strict=True
    ):
        clean = text.replace(WORD_MARKER, "").strip()
        if not clean:
            close()
            continue
        if starts_word:
            close()
        current.append((clean, frame))
    close()
    return words
