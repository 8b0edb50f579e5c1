"""A model's transcripts matched to a manifest's utterances, and the errors they make.

Predictions are JSON lines as ``convai transcribe --output`` writes them
(``{"audio_filepath": ..., "text": ..., "words": [...]}``); a NeMo-style manifest whose lines carry
``pred_text`` works too (``pred_text`` is taken over ``text``). A line names its utterance by
``audio_filepath`` (a relative path resolves against the predictions file's folder, then against
the current folder) and, when the manifest has several segments of one file, by ``offset``.
Without ``offset``, the predictions of one file fill that file's utterances in manifest order.
Lines that match no utterance, and malformed lines, are counted and reported, never dropped
silently.

Every rate comes from :mod:`convai_asr.metrics.wer` (jiwer's edit counts): corpus WER and CER
sum the edits of all matched utterances; the word match rate (WMR) is the share of reference
words the hypothesis got right, ``hits / reference words``; the mean word accuracy averages,
over the distinct reference words, the share of each word's occurrences that were recognized.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from convai_asr.explorer.dataset import (
    CACHE_VERSION,
    Dataset,
    file_fingerprint,
    read_cache,
    write_cache,
)
from convai_asr.metrics.wer import EditCounts, align

__all__ = [
    "DiffSpan",
    "ErrorAnalysis",
    "PredictionLine",
    "analyse_errors",
    "load_error_analysis",
    "match_predictions",
    "read_predictions",
    "word_diff",
]

# Offsets of the same segment written by two tools may differ in the last digits.
_OFFSET_TOLERANCE_S = 1e-3
_SHOWN_PROBLEMS = 10


@dataclass(frozen=True)
class PredictionLine:
    """One line of a predictions file.

    Attributes:
        audio_filepath: the path as written in the file.
        text: the hypothesis (``pred_text`` when the line has it, else ``text``).
        offset: the segment's start in seconds, when the line gives one.
        line: 1-based line number in the predictions file.
    """

    audio_filepath: str
    text: str
    offset: float | None
    line: int


@dataclass
class ErrorAnalysis:
    """Errors of the predictions against the manifest's transcripts.

    Rates are fractions (0.25 = 25 %). Per-row lists are aligned with :attr:`Dataset.rows`;
    rows without a prediction hold None.

    Attributes:
        predictions: the predictions file, as given.
        hypotheses: the matched hypothesis of each row.
        wer: each row's word error rate.
        cer: each row's character error rate.
        word_counts: corpus word edits ``[substitutions, deletions, insertions, reference words]``.
        char_counts: corpus character edits, in the same order.
        wer_total: corpus word error rate.
        cer_total: corpus character error rate.
        word_match_rate: reference words recognized / reference words.
        mean_word_accuracy: mean over distinct reference words of their recognized share.
        word_accuracy: each reference word's recognized share (most frequent words first).
        matched: rows that got a prediction.
        unmatched_lines: prediction lines that matched no utterance.
        unmatched_examples: ``"line N: path"`` of the first few of them.
        malformed_lines: prediction lines that could not be read.
        malformed_examples: ``"line N: problem"`` of the first few of them.
    """

    predictions: str
    hypotheses: list[str | None]
    wer: list[float | None]
    cer: list[float | None]
    word_counts: list[int]
    char_counts: list[int]
    wer_total: float
    cer_total: float
    word_match_rate: float
    mean_word_accuracy: float
    word_accuracy: dict[str, float]
    matched: int
    unmatched_lines: int = 0
    unmatched_examples: list[str] = field(default_factory=list)
    malformed_lines: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    from_cache: bool = False

    @property
    def rows_without_prediction(self) -> int:
        return len(self.hypotheses) - self.matched


# ---------------------------------------------------------------------------------------------
# reading and matching
# ---------------------------------------------------------------------------------------------


def _parse_prediction(raw: bytes, line: int) -> PredictionLine:
    """One predictions line; ValueError says what is wrong with it."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason}); re-save the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    path = record.get("audio_filepath")
    if not isinstance(path, str) or not path.strip():
        raise ValueError("no audio_filepath (a non-empty string) to match an utterance by")
    text = record.get("pred_text", record.get("text"))
    if not isinstance(text, str):
        raise ValueError("no hypothesis: expected a string 'text' (or 'pred_text')")
    offset = record.get("offset")
    if offset is not None and (not isinstance(offset, (int, float)) or isinstance(offset, bool)):
        raise ValueError(f"offset must be a number of seconds, got {offset!r}")
    return PredictionLine(
        audio_filepath=path,
        text=text,
        offset=None if offset is None else float(offset),
        line=line,
    )


def read_predictions(
    path: str | os.PathLike[str],
) -> tuple[list[PredictionLine], int, list[str]]:
    """Read a predictions file, skipping malformed lines.

    Returns:
        ``(predictions, malformed line count, "line N: problem" for the first few)``.

    Raises:
        FileNotFoundError: the file does not exist.
    """
    predictions: list[PredictionLine] = []
    malformed = 0
    problems: list[str] = []
    with Path(path).expanduser().open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                predictions.append(_parse_prediction(raw, line_no))
            except ValueError as exc:
                malformed += 1
                if len(problems) < _SHOWN_PROBLEMS:
                    problems.append(f"line {line_no}: {exc}")
    return predictions, malformed, problems


def match_predictions(
    rows: list[dict[str, Any]],
    predictions: list[PredictionLine],
    *,
    base_dir: str | os.PathLike[str],
) -> tuple[dict[int, str], list[PredictionLine]]:
    """Give each prediction its utterance (see the module docstring for the rules).

    Args:
        rows: the dataset's rows (``index``, ``audio_filepath``, ``offset``).
        predictions: as read by :func:`read_predictions`.
        base_dir: the folder relative paths in the predictions resolve against first.

    Returns:
        ``({row index: hypothesis}, predictions that matched no utterance)``.
    """
    by_path: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_path[row["audio_filepath"]].append(row["index"])
    taken: set[int] = set()
    hypotheses: dict[int, str] = {}
    unmatched: list[PredictionLine] = []
    base = Path(base_dir).expanduser().absolute()
    for prediction in predictions:
        written = Path(prediction.audio_filepath).expanduser()
        candidates = (
            [os.path.normpath(written)]
            if written.is_absolute()
            else [os.path.normpath(base / written), os.path.normpath(written.absolute())]
        )
        indices = next((by_path[c] for c in candidates if c in by_path), [])
        chosen = next(
            (
                i
                for i in indices
                if i not in taken
                and (
                    prediction.offset is None
                    or abs(rows[i]["offset"] - prediction.offset) <= _OFFSET_TOLERANCE_S
                )
            ),
            None,
        )
        if chosen is None:
            unmatched.append(prediction)
        else:
            taken.add(chosen)
            hypotheses[chosen] = prediction.text
    return hypotheses, unmatched


# ---------------------------------------------------------------------------------------------
# error rates
# ---------------------------------------------------------------------------------------------


def _as_list(counts: EditCounts) -> list[int]:
    return [counts.substitutions, counts.deletions, counts.insertions, counts.reference_length]


def _rate(counts: list[int]) -> float:
    return EditCounts(*counts).rate


def analyse_errors(
    dataset: Dataset, hypotheses: dict[int, str], *, predictions: str = ""
) -> ErrorAnalysis:
    """Per-utterance and corpus error rates of ``hypotheses`` (row index -> text)."""
    indices = sorted(hypotheses)
    references = [dataset.rows[i]["text"] for i in indices]
    texts = [hypotheses[i] for i in indices]
    word_alignments = align(references, texts, level="word")
    char_alignments = align(references, texts, level="char")
    size = len(dataset.rows)
    wer: list[float | None] = [None] * size
    cer: list[float | None] = [None] * size
    words, chars = EditCounts(), EditCounts()
    occurrences: dict[str, int] = defaultdict(int)
    recognized: dict[str, int] = defaultdict(int)
    for i, word_alignment, char_alignment in zip(
        indices, word_alignments, char_alignments, strict=True
    ):
        word_counts, char_counts = word_alignment.counts(), char_alignment.counts()
        words += word_counts
        chars += char_counts
        wer[i], cer[i] = word_counts.rate, char_counts.rate
        for word in word_alignment.reference:
            occurrences[word] += 1
        for operation, ref_start, ref_end, _, _ in word_alignment.chunks:
            if operation == "equal":
                for word in word_alignment.reference[ref_start:ref_end]:
                    recognized[word] += 1
    accuracy = {
        word: recognized[word] / count
        for word, count in sorted(occurrences.items(), key=lambda item: (-item[1], item[0]))
    }
    hits = words.reference_length - words.substitutions - words.deletions
    all_hypotheses: list[str | None] = [None] * size
    for i in indices:
        all_hypotheses[i] = hypotheses[i]
    return ErrorAnalysis(
        predictions=predictions,
        hypotheses=all_hypotheses,
        wer=wer,
        cer=cer,
        word_counts=_as_list(words),
        char_counts=_as_list(chars),
        wer_total=words.rate,
        cer_total=chars.rate,
        word_match_rate=hits / words.reference_length if words.reference_length else 0.0,
        mean_word_accuracy=sum(accuracy.values()) / len(accuracy) if accuracy else 0.0,
        word_accuracy=accuracy,
        matched=len(indices),
    )


def load_error_analysis(
    dataset: Dataset, predictions: str | os.PathLike[str], *, use_cache: bool = True
) -> ErrorAnalysis:
    """Read, match and score a predictions file against ``dataset`` (cached like the dataset).

    Raises:
        FileNotFoundError: the predictions file does not exist.
    """
    predictions = os.fspath(predictions)
    if not Path(predictions).expanduser().is_file():
        raise FileNotFoundError(f"predictions file {predictions!r} does not exist")
    key = {
        "kind": "errors",
        "version": CACHE_VERSION,
        "manifest": file_fingerprint(dataset.manifest),
        "predictions": file_fingerprint(predictions),
    }
    payload = read_cache(key) if use_cache else None
    if payload is not None:
        analysis = ErrorAnalysis(**payload)
        analysis.predictions, analysis.from_cache = predictions, True
        return analysis
    lines, malformed, problems = read_predictions(predictions)
    hypotheses, unmatched = match_predictions(
        dataset.rows, lines, base_dir=Path(predictions).expanduser().absolute().parent
    )
    analysis = analyse_errors(dataset, hypotheses, predictions=predictions)
    analysis.unmatched_lines = len(unmatched)
    analysis.unmatched_examples = [
        f"line {p.line}: {p.audio_filepath}"
        + ("" if p.offset is None else f" (offset {p.offset:g} s)")
        for p in unmatched[:_SHOWN_PROBLEMS]
    ]
    analysis.malformed_lines = malformed
    analysis.malformed_examples = problems
    if use_cache:
        stored = asdict(analysis)
        stored.pop("from_cache")
        write_cache(key, stored)
    return analysis


# ---------------------------------------------------------------------------------------------
# word diff
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffSpan:
    """A run of words with one edit operation between reference and hypothesis.

    Attributes:
        operation: ``"equal"``, ``"substitute"``, ``"delete"`` (reference words the hypothesis
            lacks) or ``"insert"`` (hypothesis words the reference lacks).
        reference: the span's reference words ("" for an insertion).
        hypothesis: the span's hypothesis words ("" for a deletion).
    """

    operation: str
    reference: str
    hypothesis: str


def word_diff(reference: str, hypothesis: str) -> list[DiffSpan]:
    """The word-level diff of one utterance, from the same alignment the WER counts."""
    alignment = align([reference], [hypothesis], level="word")[0]
    return [
        DiffSpan(
            operation=operation,
            reference=" ".join(alignment.reference[ref_start:ref_end]),
            hypothesis=" ".join(alignment.hypothesis[hyp_start:hyp_end]),
        )
        for operation, ref_start, ref_end, hyp_start, hyp_end in alignment.chunks
    ]
