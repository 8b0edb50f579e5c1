"""Tests of convai_asr.metrics.wer on hand-computed examples and batch accumulation."""

from __future__ import annotations

import random

import jiwer
import pytest

from convai_asr.metrics.wer import (
    EditCounts,
    ErrorRateAccumulator,
    align,
    char_error_rate,
    edit_counts,
    word_error_rate,
)


def test_wer_hand_computed() -> None:
    # "sat" -> "sit" is one substitution, the second "the" one deletion: 2 errors / 6 words
    assert word_error_rate(["the cat sat on the mat"], ["the cat sit on mat"]) == pytest.approx(
        2 / 6
    )
    # one substitution (b -> x) and one insertion (d): 2 / 3
    assert word_error_rate(["a b c"], ["a x c d"]) == pytest.approx(2 / 3)
    # corpus level: (2 + 2) / (6 + 3), not the mean of the two rates
    corpus = word_error_rate(["the cat sat on the mat", "a b c"], ["the cat sit on mat", "a x c d"])
    assert corpus == pytest.approx(4 / 9)
    assert word_error_rate(["same  words "], [" same words"]) == 0.0


def test_cer_hand_computed() -> None:
    assert char_error_rate(["abc"], ["axc"]) == pytest.approx(1 / 3)
    assert char_error_rate(["hello"], ["helo"]) == pytest.approx(1 / 5)
    assert char_error_rate(["a b"], ["ab"]) == pytest.approx(1 / 3)  # the space is a character
    assert char_error_rate(["你好世界"], ["你好视界"]) == pytest.approx(1 / 4)


def test_empty_references_count_insertions() -> None:
    assert word_error_rate([""], [""]) == 0.0
    assert word_error_rate([""], ["a b"]) == 2.0  # no reference word: the length counts as 1
    # "x" is an inserted word; the other pair is exact: 1 error / 2 reference words
    assert word_error_rate(["", "a b"], ["x", "a b"]) == pytest.approx(1 / 2)
    counts = edit_counts(["  ", "a b"], ["x y", "a"], level="word")
    assert (counts.insertions, counts.deletions, counts.reference_length) == (2, 1, 2)
    assert char_error_rate(["", "ab"], ["xy", "ab"]) == pytest.approx(2 / 2)


def test_input_checks() -> None:
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="sequences of strings"):
        word_error_rate("a b", "a b")  # type: ignore[arg-type]


def _corpus(count: int = 60) -> tuple[list[str], list[str]]:
    rng = random.Random(0)
    words = "alpha beta gamma delta epsilon zeta eta theta".split()
    refs, hyps = [], []
    for _ in range(count):
        ref = [rng.choice(words) for _ in range(rng.randint(1, 12))]
        hyp = [w if rng.random() > 0.2 else rng.choice(words) for w in ref]
        if rng.random() < 0.3:
            hyp.insert(rng.randint(0, len(hyp)), rng.choice(words))
        if rng.random() < 0.3 and len(hyp) > 1:
            hyp.pop(rng.randrange(len(hyp)))
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))
    return refs, hyps


def test_accumulated_batches_equal_corpus_level() -> None:
    refs, hyps = _corpus()
    accumulator = ErrorRateAccumulator()
    for start in range(0, len(refs), 7):  # uneven batches
        accumulator.add(refs[start : start + 7], hyps[start : start + 7])
    result = accumulator.compute()
    assert result["wer"] == pytest.approx(word_error_rate(refs, hyps))
    assert result["cer"] == pytest.approx(char_error_rate(refs, hyps))
    assert result["wer"] == pytest.approx(jiwer.wer(refs, hyps))
    assert result["cer"] == pytest.approx(jiwer.cer(refs, hyps))
    batch_means = [word_error_rate(refs[s : s + 7], hyps[s : s + 7]) for s in range(0, 60, 7)]
    assert sum(batch_means) / len(batch_means) != pytest.approx(result["wer"])

    merged = ErrorRateAccumulator()  # what an all-reduce over ranks does
    merged.load_list(accumulator.as_list())
    assert merged.compute() == result
    accumulator.reset()
    assert accumulator.compute() == {"wer": 0.0, "cer": 0.0}


def test_ddp_validation_wer_pools_the_ranks_edit_counts() -> None:
    """With several ranks the logged WER is the corpus WER over every rank's utterances (summed
    edits over summed lengths), not the mean of the ranks' rates."""
    from types import SimpleNamespace

    import torch

    from convai_asr.metrics.wer import ErrorRateAccumulator, word_error_rate
    from convai_asr.testing import tiny_model

    rank0 = (["one two three four five six seven eight"], ["one two three four five six seven"])
    rank1 = (["hello"], ["yellow"])
    other = ErrorRateAccumulator()
    other.add(*rank1)  # what the second rank decoded

    def reduce(tensor: torch.Tensor, reduce_op: str) -> torch.Tensor:
        assert reduce_op == "sum"
        return tensor + torch.tensor(other.as_list())  # an all-reduce over two ranks

    model = tiny_model("quartznet")
    model._val_errors.add(*rank0)
    model._trainer = SimpleNamespace(world_size=2, strategy=SimpleNamespace(reduce=reduce))
    pooled = model._pooled_val_errors().compute()["wer"]
    corpus = word_error_rate(rank0[0] + rank1[0], rank0[1] + rank1[1])
    assert pooled == pytest.approx(corpus) == pytest.approx(2 / 9)
    assert pooled != pytest.approx((1 / 8 + 1 / 1) / 2)  # the mean of the ranks' WERs
    model._trainer = None
    assert model._pooled_val_errors() is model._val_errors  # one process: nothing to pool


def test_per_utterance_alignments_add_up_to_the_corpus_counts() -> None:
    rng = random.Random(3)
    words = ["a", "b", "c", "d", "e"]
    refs = [" ".join(rng.choices(words, k=rng.randint(0, 6))) for _ in range(40)]
    hyps = [" ".join(rng.choices(words, k=rng.randint(0, 6))) for _ in range(40)]
    for level in ("word", "char"):
        total = EditCounts()
        for alignment in align(refs, hyps, level=level):
            total += alignment.counts()
        assert total == edit_counts(refs, hyps, level=level)
    # two substitutions (b -> x, d -> y) and one insertion (e)
    (alignment,) = align(["a b c d"], ["a x c y e"], level="word")
    assert alignment.reference == ("a", "b", "c", "d")
    assert alignment.counts() == EditCounts(
        substitutions=2, deletions=0, insertions=1, reference_length=4
    )
    (empty,) = align([""], ["p q"], level="word")
    assert empty.chunks == (("insert", 0, 0, 0, 2),)
