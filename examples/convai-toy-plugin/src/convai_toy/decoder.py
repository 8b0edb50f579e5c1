"""A decoder: greedy CTC that keeps a token only when its run lasts ``min_frames`` frames."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Hypothesis:
    """What convai reads from a decoded utterance (:class:`convai_core.interfaces.Hypothesis`)."""

    token_ids: list[int] = field(default_factory=list)
    token_frames: list[int] = field(default_factory=list)
    score: float = 0.0


class MinRunCTCDecoder:
    """Best path per frame; a run of one class becomes a token if it is not the blank and lasts
    at least ``min_frames`` frames (1 gives plain greedy decoding).

    Args:
        blank_id: the blank class (the model passes it).
        min_frames: shortest run that counts.

    Shapes:
        log_probs: (B, T, V), lengths: (B,) -> B hypotheses.
    """

    def __init__(self, blank_id: int, min_frames: int = 1) -> None:
        if min_frames < 1:
            raise ValueError(f"min_frames must be >= 1; got {min_frames}")
        self.blank_id, self.min_frames = int(blank_id), int(min_frames)

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        scores, best = log_probs.detach().float().max(dim=-1)  # (B, T, V) -> (B, T)
        result = []
        for row, row_scores, length in zip(best.tolist(), scores.tolist(), lengths.tolist(), strict=True):
            hyp = Hypothesis(score=float(sum(row_scores[: int(length)])))
            start = 0
            for t in range(1, int(length) + 1):
                if t == int(length) or row[t] != row[start]:
                    if row[start] != self.blank_id and t - start >= self.min_frames:
                        hyp.token_ids.append(row[start])
                        hyp.token_frames.append(start)
                    start = t
            result.append(hyp)
        return result
