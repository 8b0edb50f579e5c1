"""Word and character error rates, computed with jiwer's edit-distance counts.

A rate is ``(substitutions + deletions + insertions) / reference length``, summed over the corpus
(not averaged per utterance), so long utterances weigh more. Whitespace is collapsed and stripped
before counting; characters include the spaces between words.

Empty references: an utterance whose reference is empty (or only whitespace) contributes every
hypothesis word (or character) as an insertion and nothing to the reference length. If the whole
corpus has no reference word, the rate is the number of errors (the length is taken as 1), which is
0.0 when the hypotheses are empty too. (jiwer 3 refuses empty references; we count them ourselves.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

__all__ = [
    "Alignment",
    "EditCounts",
    "ErrorRateAccumulator",
    "align",
    "char_error_rate",
    "edit_counts",
    "word_error_rate",
]


@dataclass
class EditCounts:
    """Edit operations against the references, and the references' length."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """errors / reference length (the length counts as 1 when it is 0)."""
        return self.errors / max(self.reference_length, 1)

    def __iadd__(self, other: EditCounts) -> EditCounts:
        self.substitutions += other.substitutions
        self.deletions += other.deletions
        self.insertions += other.insertions
        self.reference_length += other.reference_length
        return self


def _check(references: Sequence[str], hypotheses: Sequence[str]) -> None:
    if isinstance(references, str) or isinstance(hypotheses, str):
        raise TypeError("references and hypotheses must be sequences of strings, not one string")
    if len(references) != len(hypotheses):
        raise ValueError(
            f"got {len(references)} references but {len(hypotheses)} hypotheses; pass one "
            "hypothesis per reference"
        )


def _units(text: str, level: str) -> int:
    words = text.split()
    return len(words) if level == "word" else len(" ".join(words))


def edit_counts(references: Sequence[str], hypotheses: Sequence[str], *, level: str) -> EditCounts:
    """Count edits at ``level`` ``"word"`` or ``"char"`` (see the module docstring)."""
    _check(references, hypotheses)
    counts = EditCounts()
    refs: list[str] = []
    hyps: list[str] = []
    for ref, hyp in zip(references, hypotheses, strict=True):
        if ref.strip():
            refs.append(ref)
            hyps.append(hyp)
        else:
            counts.insertions += _units(hyp, level)
    if refs:
        process = jiwer.process_words if level == "word" else jiwer.process_characters
        output = process(refs, hyps)
        counts.substitutions += output.substitutions
        counts.deletions += output.deletions
        counts.insertions += output.insertions
        counts.reference_length += output.hits + output.substitutions + output.deletions
    return counts


@dataclass(frozen=True)
class Alignment:
    """How one hypothesis lines up with its reference, unit by unit (words or characters).

    Attributes:
        reference: the reference's units.
        hypothesis: the hypothesis's units.
        chunks: ``(operation, ref_start, ref_end, hyp_start, hyp_end)`` spans in order, covering
            both sequences; operation is ``"equal"``, ``"substitute"``, ``"delete"`` or
            ``"insert"`` (a substitution spans as many reference units as hypothesis units).
    """

    reference: tuple[str, ...]
    hypothesis: tuple[str, ...]
    chunks: tuple[tuple[str, int, int, int, int], ...]

    def counts(self) -> EditCounts:
        """This utterance's edit counts; summed over a corpus they equal :func:`edit_counts`."""
        counts = EditCounts(reference_length=len(self.reference))
        for operation, ref_start, ref_end, hyp_start, hyp_end in self.chunks:
            if operation == "substitute":
                counts.substitutions += ref_end - ref_start
            elif operation == "delete":
                counts.deletions += ref_end - ref_start
            elif operation == "insert":
                counts.insertions += hyp_end - hyp_start
        return counts


def align(references: Sequence[str], hypotheses: Sequence[str], *, level: str) -> list[Alignment]:
    """Align each hypothesis with its reference at ``level`` ``"word"`` or ``"char"``.

    The same counting as :func:`edit_counts` (one jiwer call for the corpus; an empty
    reference makes every hypothesis unit an insertion), kept per utterance, so
    ``sum(a.counts() ...)`` over the result equals ``edit_counts(references, hypotheses)``.

    Raises:
        ValueError: the two lists differ in length.
    """
    _check(references, hypotheses)
    alignments: list[Alignment | None] = [None] * len(references)
    kept: list[int] = []
    for i, (ref, hyp) in enumerate(zip(references, hypotheses, strict=True)):
        if ref.strip():
            kept.append(i)
            continue
        words = hyp.split()
        units = tuple(words) if level == "word" else tuple(" ".join(words))
        chunks = (("insert", 0, 0, 0, len(units)),) if units else ()
        alignments[i] = Alignment(reference=(), hypothesis=units, chunks=chunks)
    if kept:
        process = jiwer.process_words if level == "word" else jiwer.process_characters
        output = process([references[i] for i in kept], [hypotheses[i] for i in kept])
        for j, i in enumerate(kept):
            alignments[i] = Alignment(
                reference=tuple(output.references[j]),
                hypothesis=tuple(output.hypotheses[j]),
                chunks=tuple(
                    (c.type, c.ref_start_idx, c.ref_end_idx, c.hyp_start_idx, c.hyp_end_idx)
                    for c in output.alignments[j]
                ),
            )
    return [a for a in alignments if a is not None]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus-level word error rate.

    Example:
        >>> word_error_rate(["the cat sat"], ["the cat sat down"])
        0.3333333333333333

    Raises:
        ValueError: the two lists differ in length.
    """
    return edit_counts(references, hypotheses, level="word").rate


def char_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus-level character error rate (spaces count as characters).

    Raises:
        ValueError: the two lists differ in length.
    """
    return edit_counts(references, hypotheses, level="char").rate


class ErrorRateAccumulator:
    """Sum edit counts over batches, so the final rates equal the corpus-level ones.

    Averaging per-batch WERs would weigh short batches too much; this sums the edits and the
    reference lengths instead. For DDP, sum :attr:`words` / :attr:`chars` of every rank (e.g.
    all-reduce of ``as_list()``) before :meth:`compute`.

    Example:
        >>> acc = ErrorRateAccumulator()
        >>> acc.add(["a b"], ["a c"])
        >>> acc.compute()["wer"]
        0.5
    """

    def __init__(self) -> None:
        self.words = EditCounts()
        self.chars = EditCounts()

    def add(self, references: Sequence[str], hypotheses: Sequence[str]) -> None:
        """Add one batch of reference/hypothesis pairs."""
        self.words += edit_counts(references, hypotheses, level="word")
        self.chars += edit_counts(references, hypotheses, level="char")

    def compute(self) -> dict[str, float]:
        """``{"wer": ..., "cer": ...}`` over everything added since the last :meth:`reset`."""
        return {"wer": self.words.rate, "cer": self.chars.rate}

    def reset(self) -> None:
        """Forget everything added."""
        self.words = EditCounts()
        self.chars = EditCounts()

    def as_list(self) -> list[int]:
        """The eight counts (word S, D, I, length, then char S, D, I, length), for all-reduce."""
        return [
            *(getattr(self.words, f) for f in _FIELDS),
            *(getattr(self.chars, f) for f in _FIELDS),
        ]

    def load_list(self, counts: Sequence[int]) -> None:
        """Set the counts from :meth:`as_list` output (e.g. after summing over ranks)."""
        if len(counts) != 2 * len(_FIELDS):
            raise ValueError(f"expected {2 * len(_FIELDS)} counts, got {len(counts)}")
        self.words = EditCounts(*(int(c) for c in counts[: len(_FIELDS)]))
        self.chars = EditCounts(*(int(c) for c in counts[len(_FIELDS) :]))


_FIELDS = ("substitutions", "deletions", "insertions", "reference_length")
