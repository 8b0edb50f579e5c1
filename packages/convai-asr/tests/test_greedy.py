"""Greedy CTC decoding and word timestamps on hand-made log-probabilities."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from convai_asr.decoding.greedy import GreedyHypothesis, ctc_greedy_decode, word_timestamps

BLANK = 3  # vocabulary: 0 "a", 1 "b", 2 " ", blank last


def _log_probs(paths: list[list[int]], vocab: int = 4) -> torch.Tensor:
    """Log-probs whose best class at each frame is the given one (p = 0.7)."""
    time = max(len(path) for path in paths)
    probs = torch.full((len(paths), time, vocab), 0.3 / (vocab - 1))
    for item, path in enumerate(paths):
        for frame, token in enumerate(path):
            probs[item, frame, token] = 0.7
    return probs.log()


def test_collapse_repeats_then_drop_blanks() -> None:
    paths = [
        [0, 0, 3, 0, 1, 1, 3, 3, 1],  # a a _ a b b _ _ b -> a a b b
        [3, 3, 1, 1, 1, 0, 0, 0, 0],  # valid for 5 frames only -> b
    ]
    hyps = ctc_greedy_decode(_log_probs(paths), torch.tensor([9, 5]), blank_id=BLANK)
    assert hyps[0].token_ids == [0, 0, 1, 1]
    assert hyps[0].token_frames == [0, 3, 4, 8]
    assert hyps[1].token_ids == [1] and hyps[1].token_frames == [2]
    assert hyps[0].score == pytest.approx(9 * math.log(0.7), rel=1e-5)
    assert hyps[1].score == pytest.approx(5 * math.log(0.7), rel=1e-5)


def test_all_blank_and_empty() -> None:
    hyps = ctc_greedy_decode(_log_probs([[3, 3, 3]]), torch.tensor([3]), blank_id=BLANK)
    assert hyps == [GreedyHypothesis([], [], pytest.approx(3 * math.log(0.7)))]
    assert (
        ctc_greedy_decode(_log_probs([[0, 1]]), torch.tensor([0]), blank_id=BLANK)[0].token_ids
        == []
    )
    with pytest.raises(ValueError, match="blank_id"):
        ctc_greedy_decode(_log_probs([[0]]), torch.tensor([1]), blank_id=4)
    with pytest.raises(ValueError, match=r"\(B, T, V\)"):
        ctc_greedy_decode(torch.zeros(3, 4), torch.tensor([3]), blank_id=BLANK)


def test_word_timestamps_from_characters() -> None:
    # "ab ba" over 12 frames: a b _ " " _ b _ a
    path = [0, 3, 1, 3, 2, 2, 3, 1, 1, 3, 0, 3]
    hyp = ctc_greedy_decode(_log_probs([path]), torch.tensor([12]), blank_id=BLANK)[0]
    assert hyp.token_ids == [0, 1, 2, 1, 0] and hyp.token_frames == [0, 2, 4, 7, 10]
    text = ["a", "b", " ", "b", "a"]
    starts = [True, False, False, True, False]
    words = word_timestamps(hyp, text, starts, frame_shift_s=0.04)
    assert words == [
        {"word": "ab", "start": 0.0, "end": 0.12},
        {"word": "ba", "start": 0.28, "end": 0.44},
    ]


def test_word_timestamps_from_word_pieces_are_ordered() -> None:
    hyp = GreedyHypothesis(token_ids=[5, 6, 7, 8], token_frames=[1, 2, 6, 7], score=0.0)
    words = word_timestamps(
        hyp, ["\u2581he", "llo", "\u2581wor", "ld"], [True, False, True, False], 0.08
    )
    assert [w["word"] for w in words] == ["hello", "world"]
    assert words[0]["start"] == pytest.approx(0.08) and words[0]["end"] == pytest.approx(0.24)
    for before, after in itertools.pairwise(words):
        assert before["start"] < before["end"] <= after["start"] < after["end"]
    with pytest.raises(ValueError, match="4 tokens"):
        word_timestamps(hyp, ["a"], [True], 0.08)
