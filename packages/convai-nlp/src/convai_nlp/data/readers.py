"""Readers of NeMo's NLP data formats, with file- and line-numbered errors.

* text classification: one ``sentence<TAB>label`` a line (an optional ``sentence<TAB>label``
  header is skipped); labels are class names or integers;
* token classification (NER, punctuation and capitalization): ``text.txt`` with one sentence
  of space-separated words a line, and ``labels.txt`` with one label per word on the same line.

A malformed line (no tab, no text, a label the model does not know, a line whose word and
label counts differ, a line longer than ``max_words``) raises :class:`~convai_nlp.errors.DataError`
naming the file and line, or, with ``skip_bad=True``, is skipped and counted in a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convai_nlp.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class Skipped:
    """Lines skipped while reading one file (``skip_bad=True``), with the first reasons."""

    path: str
    skip_bad: bool = False
    count: int = 0
    reasons: list[str] = field(default_factory=list)

    def is_bad(self, problem: str | None) -> bool:
        """Whether a line with ``problem`` (None: no problem) is to be skipped.

        Raises:
            DataError: the problem, when bad lines are not skipped.
        """
        if problem is None:
            return False
        if not self.skip_bad:
            raise DataError(problem + " (or set skip_bad: true to skip such lines).")
        self.count += 1
        if len(self.reasons) < 3:
            self.reasons.append(problem)
        return True

    def finish(self, rows: list[Any]) -> list[Any]:
        """Warn about what was skipped; ``rows``, which must not be empty."""
        if self.count:
            log.warning(
                "%s: skipped %d bad line(s), e.g. %s",
                self.path,
                self.count,
                "; ".join(self.reasons),
            )
        if not rows:
            raise DataError(f"{self.path}: no usable lines")
        return rows


def _lines(path: str | Path, what: str) -> Iterator[tuple[int, str]]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"{what} file {file} does not exist; fix the path in the config.")
    try:
        with open(file, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                yield number, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not UTF-8 text ({exc}); convert it to UTF-8.") from exc


def read_text_classification(
    path: str | Path,
    *,
    labels: Collection[str] | None = None,
    skip_bad: bool = False,
    max_words: int | None = None,
) -> list[tuple[str, str]]:
    """``(sentence, label)`` pairs of a ``sentence<TAB>label`` file.

    Args:
        path: the file.
        labels: the known labels; others are errors (None accepts any).
        skip_bad: skip malformed lines with a counted warning instead of raising.
        max_words: longest sentence allowed, in words (None: any).

    Raises:
        DataError: naming the file and line.
    """
    rows: list[tuple[str, str]] = []
    skipped = Skipped(str(path), skip_bad)
    known = set(labels) if labels is not None else None
    for number, line in _lines(path, "text classification"):
        where = f"{path}:{number}"
        if number == 1 and line.strip().lower() == "sentence\tlabel":
            continue
        text, tab, label = line.rpartition("\t")
        text, label = text.strip(), label.strip()
        problem = None
        if not line.strip():
            problem = f"{where}: empty line; remove it"
        elif not tab:
            problem = f"{where}: no tab; each line is `sentence<TAB>label`"
        elif not text:
            problem = f"{where}: no text before the tab"
        elif not label:
            problem = f"{where}: no label after the tab"
        elif known is not None and label not in known:
            problem = (
                f"{where}: unknown label {label!r}; the model's labels are "
                f"{', '.join(sorted(known))} (fine-tune with a new label set to add it)"
            )
        elif max_words is not None and len(text.split()) > max_words:
            problem = f"{where}: {len(text.split())} words, more than max_words={max_words}"
        if skipped.is_bad(problem):
            continue
        rows.append((text, label))
    return skipped.finish(rows)


def read_token_classification(
    text_file: str | Path,
    labels_file: str | Path,
    *,
    labels: Collection[str] | None = None,
    skip_bad: bool = False,
    max_words: int | None = None,
) -> list[tuple[list[str], list[str]]]:
    """``(words, labels)`` pairs of a NeMo ``text.txt`` + ``labels.txt`` pair of files.

    Raises:
        DataError: naming the file and line (ragged counts, an empty line, an unknown label,
            files of different line counts...).
    """
    rows: list[tuple[list[str], list[str]]] = []
    skipped = Skipped(str(text_file), skip_bad)
    known = set(labels) if labels is not None else None
    text_lines = _lines(text_file, "token classification text")
    label_lines = _lines(labels_file, "token classification labels")
    while True:
        text_item = next(text_lines, None)
        label_item = next(label_lines, None)
        if text_item is None and label_item is None:
            break
        if text_item is None or label_item is None:
            longer, shorter = (
                (labels_file, text_file) if text_item is None else (text_file, labels_file)
            )
            number = (label_item or text_item or (0, ""))[0]
            raise DataError(
                f"{longer}:{number}: {shorter} has fewer lines; the two files must have one "
                "line per sentence each."
            )
        number, text = text_item
        _, label_line = label_item
        words, tags = text.split(), label_line.split()
        where = f"{text_file}:{number}"
        problem = None
        if not words:
            problem = f"{where}: empty line; remove it from both files"
        elif len(words) != len(tags):
            problem = (
                f"{where}: {len(words)} words but {len(tags)} labels on line {number} of "
                f"{labels_file}; give one label per word"
            )
        elif known is not None and not known.issuperset(tags):
            unknown = sorted(set(tags) - known)
            problem = (
                f"{labels_file}:{number}: unknown label(s) {', '.join(unknown)}; the model's "
                f"labels are {', '.join(sorted(known))}"
            )
        elif max_words is not None and len(words) > max_words:
            problem = f"{where}: {len(words)} words, more than max_words={max_words}"
        if skipped.is_bad(problem):
            continue
        rows.append((words, tags))
    return skipped.finish(rows)


def read_label_dict(path: str | Path) -> list[str]:
    """Labels of a NeMo ``dict.intents.csv`` / ``dict.slots.csv`` (one a line, line = id)."""
    labels = [line.strip() for _, line in _lines(path, "label dictionary")]
    while labels and not labels[-1]:
        labels.pop()
    for number, label in enumerate(labels, start=1):
        if not label:
            raise DataError(f"{path}:{number}: empty label; remove the line (ids follow lines)")
    if not labels:
        raise DataError(f"{path}: no labels")
    return labels


def read_intent_slot(
    file: str | Path,
    slots_file: str | Path,
    *,
    num_intents: int,
    num_slots: int,
    skip_bad: bool = False,
    max_words: int | None = None,
) -> list[tuple[list[str], int, list[int]]]:
    """``(words, intent id, slot ids)`` of NeMo's ``<split>.tsv`` + ``<split>_slots.tsv``.

    ``<split>.tsv`` has a ``sentence<TAB>label`` header and ``words<TAB>intent id`` lines;
    ``<split>_slots.tsv`` one line of slot ids (one per word) for each sentence.

    Raises:
        DataError: naming the file and line (an id out of range, slot and word counts that
            differ, files of different line counts...).
    """
    sentences = [
        (number, line)
        for number, line in _lines(file, "intent")
        if not (number == 1 and line.strip().lower() == "sentence\tlabel")
    ]
    slot_lines = [line for _, line in _lines(slots_file, "slot")]
    if len(slot_lines) != len(sentences):
        raise DataError(
            f"{slots_file} has {len(slot_lines)} lines but {file} has {len(sentences)} "
            "sentences; give one slot line per sentence."
        )
    rows: list[tuple[list[str], int, list[int]]] = []
    skipped = Skipped(str(file), skip_bad)
    for index, ((number, line), slot_line) in enumerate(zip(sentences, slot_lines, strict=True)):
        text, tab, label = line.rpartition("\t")
        words = text.split()
        where = f"{file}:{number}"
        problem = None
        if not tab or not words:
            problem = f"{where}: each line is `words<TAB>intent id`"
        elif not label.strip().isdigit() or int(label) >= num_intents:
            problem = f"{where}: intent id {label.strip()!r} is not in 0..{num_intents - 1} (dict.intents.csv)"
        elif max_words is not None and len(words) > max_words:
            problem = f"{where}: {len(words)} words, more than max_words={max_words}"
        else:
            parts = slot_line.split()
            slot_where = f"{slots_file}:{index + 1}"
            if not all(p.isdigit() for p in parts):
                problem = f"{slot_where}: slot ids must be non-negative integers"
            elif len(parts) != len(words):
                problem = f"{slot_where}: {len(parts)} slot ids but {len(words)} words on {where}"
            elif any(int(p) >= num_slots for p in parts):
                problem = f"{slot_where}: a slot id is not in 0..{num_slots - 1} (dict.slots.csv)"
        if skipped.is_bad(problem):
            continue
        rows.append((words, int(label), [int(p) for p in slot_line.split()]))
    return skipped.finish(rows)
