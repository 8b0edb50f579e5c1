"""Relation extraction as sentence classification: readers of two real formats, and a scorer.

The recipe (BioMegatron's, and the BLUE benchmark's): the two entities of a candidate pair are
marked in the sentence with plain-text markers, and a sentence classifier names the relation
between them, or the negative class when there is none. This module reads the two formats such
data comes in and scores predictions the way these benchmarks do.

**ChemProt (BLUE)**: ``index<TAB>sentence<TAB>label`` a line, after an optional
``index<TAB>sentence<TAB>label`` header. The two entities are already replaced by the markers
``@CHEMICAL$`` and ``@GENE$``; where the two mentions overlap, BLUE writes one ``@CHEM-GENE$``
instead. Labels are ``CPR:3``, ``CPR:4``, ``CPR:5``, ``CPR:6``, ``CPR:9`` and ``false`` (no
relation). The index (``<PubMed id>.<T..>.<T..>``) is not kept. The text is kept as it is: an
uncased WordPiece vocabulary reads ``@CHEMICAL$`` as ``@ chemical $``.

**SemEval-2010 Task 8**: the entity mentions stay in the sentence, wrapped in
``<e1>...</e1>`` and ``<e2>...</e2>``. Two layouts are read:

* a TSV of ``sentence<TAB>label`` lines (the sentence may be wrapped in double quotes);
* the layout of the task's own ``TRAIN_FILE.TXT`` and ``TEST_FILE_FULL.TXT``: blocks of a
  ``<id><TAB>"<sentence>"`` line, a label line, a ``Comment:`` line and an empty line.

Labels are directed types such as ``Cause-Effect(e1,e2)`` and ``Other`` (no relation). The tags
become the plain-text markers :data:`E1_START` ... :data:`E2_END` (``[E1] x [/E1]``), with a space
on either side, because an encoder's tokenizer must see them as text: an uncased BERT
WordPiece vocabulary splits ``[E1]`` into the known pieces ``[ e ##1 ]`` and ``[/E1]`` into
``[ / e ##1 ]``, never into ``[UNK]``. (A tokenizer may also add the four strings as special
tokens to give each one id.)

A malformed line (a wrong number of tab-separated columns, an empty sentence, a sentence that
lacks one of its two entity markers, a label not in ``labels``) raises
:class:`~convai_nlp.errors.DataError` naming the file and line, or, with ``skip_bad=True``, is
skipped and counted in a warning.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from convai_core.errors import ConfigError
from convai_nlp.data.readers import Skipped, _lines
from convai_nlp.errors import DataError

__all__ = [
    "CHEMPROT_MARKERS",
    "CHEMPROT_OVERLAP_MARKER",
    "E1_END",
    "E1_START",
    "E2_END",
    "E2_START",
    "FORMATS",
    "RelationExample",
    "read_relations",
    "relation_dataset",
    "relation_report",
]

#: The markers BLUE puts in place of the chemical and the gene of a ChemProt pair.
CHEMPROT_MARKERS = ("@CHEMICAL$", "@GENE$")
#: The one marker BLUE writes where the chemical and the gene mentions overlap.
CHEMPROT_OVERLAP_MARKER = "@CHEM-GENE$"

#: Plain-text markers that replace SemEval's ``<e1>``, ``</e1>``, ``<e2>`` and ``</e2>``.
E1_START, E1_END, E2_START, E2_END = "[E1]", "[/E1]", "[E2]", "[/E2]"
_SEMEVAL_TAGS = {"<e1>": E1_START, "</e1>": E1_END, "<e2>": E2_START, "</e2>": E2_END}

#: Formats :func:`read_relations` knows.
FORMATS = ("chemprot", "semeval")
_HEADER = ["index", "sentence", "label"]
_SEMEVAL_BLOCK_START = re.compile(r'^\s*\d+\t\s*".*"\s*$')
#: How many non-empty lines ``fmt="auto"`` looks at.
_SNIFF_LINES = 50


@dataclass(frozen=True)
class RelationExample:
    """One candidate entity pair: its sentence with the entity markers, and its relation.

    Attributes:
        text: the sentence, entity markers included as plain text.
        label: the relation type, or the negative class (``false``, ``Other``).
        line: the line of the file the sentence is on (1-based), for messages.
    """

    text: str
    label: str
    line: int


# A parsed line: (line number, text, label, problem or None).
_Row = tuple[int, str, str, str | None]


def read_relations(
    path: str | Path,
    *,
    fmt: Literal["auto", "chemprot", "semeval"] = "auto",
    labels: Collection[str] | None = None,
    skip_bad: bool = False,
) -> list[RelationExample]:
    """The relation examples of a ChemProt (BLUE) or SemEval-2010 Task 8 file.

    Args:
        path: the file.
        fmt: ``chemprot``, ``semeval``, or ``auto`` to tell from the first lines (SemEval's
            ``<e1>`` tags or ChemProt's ``@CHEMICAL$``/``@GENE$`` markers or header).
        labels: the known relation labels, negative class included; others are errors
            (None accepts any).
        skip_bad: skip malformed lines with a counted warning instead of raising.

    Returns:
        The examples in file order; SemEval tags are turned into ``[E1] x [/E1]`` markers.

    Raises:
        DataError: naming the file and line; or the file is missing, empty, or of a format
            ``auto`` cannot tell.
        ConfigError: ``fmt`` is none of the above.
    """
    if fmt == "auto":
        fmt = _sniff_format(path)
    if fmt not in FORMATS:
        raise ConfigError(f"relation format {fmt!r}: use auto, {', '.join(FORMATS)}")
    rows = _chemprot_rows(path) if fmt == "chemprot" else _semeval_rows(path)
    known = set(labels) if labels is not None else None
    skipped = Skipped(str(path), skip_bad)
    examples: list[RelationExample] = []
    for number, text, label, problem in rows:
        if problem is None and known is not None and label not in known:
            problem = (
                f"{path}:{number}: unknown label {label!r}; the known labels are "
                f"{', '.join(sorted(known))}"
            )
        if skipped.is_bad(problem):
            continue
        examples.append(RelationExample(text, label, number))
    return skipped.finish(examples)


def _sniff_format(path: str | Path) -> Literal["chemprot", "semeval"]:
    """The format of ``path`` from its first non-empty lines."""
    seen = 0
    for number, line in _lines(path, "relation"):
        if not line.strip():
            continue
        if number == 1 and line.strip().lower().split() == _HEADER:
            return "chemprot"
        if any(tag in line for tag in _SEMEVAL_TAGS):
            return "semeval"
        if any(marker in line for marker in (*CHEMPROT_MARKERS, CHEMPROT_OVERLAP_MARKER)):
            return "chemprot"
        seen += 1
        if seen >= _SNIFF_LINES:
            break
    raise DataError(
        f"{path}: cannot tell its relation format from its first {seen} non-empty line(s) (no "
        "<e1>/<e2> tags, no @CHEMICAL$/@GENE$ markers); set the format explicitly "
        "(fmt='chemprot' or fmt='semeval')."
    )


def _chemprot_rows(path: str | Path) -> Iterator[_Row]:
    """Rows of a BLUE ChemProt TSV."""
    for number, line in _lines(path, "ChemProt relation"):
        where = f"{path}:{number}"
        if number == 1 and line.strip().lower().split() == _HEADER:
            continue
        if not line.strip():
            yield number, "", "", f"{where}: empty line; remove it"
            continue
        columns = [column.strip() for column in line.split("\t")]
        if len(columns) != 3:
            yield (
                number,
                "",
                "",
                f"{where}: {len(columns)} tab-separated column(s); a ChemProt line is "
                "`index<TAB>sentence<TAB>label`",
            )
            continue
        _, text, label = columns
        problem = None
        if not text:
            problem = f"{where}: empty sentence"
        elif not label:
            problem = f"{where}: no label in the third column"
        elif CHEMPROT_OVERLAP_MARKER not in text:
            missing = [marker for marker in CHEMPROT_MARKERS if marker not in text]
            if missing:
                problem = (
                    f"{where}: the sentence has no {' and no '.join(missing)}; each ChemProt "
                    f"sentence marks its pair with {' and '.join(CHEMPROT_MARKERS)} (or one "
                    f"{CHEMPROT_OVERLAP_MARKER} where they overlap)"
                )
        yield number, text, label, problem


def _semeval_rows(path: str | Path) -> Iterator[_Row]:
    """Rows of a SemEval-2010 Task 8 file, TSV or the task's own block layout."""
    lines = _lines(path, "SemEval relation")
    first = next(((n, line) for n, line in lines if line.strip()), None)
    if first is None:
        return
    if _SEMEVAL_BLOCK_START.match(first[1]):
        yield from _semeval_block_rows(path, first, lines)
        return
    for number, line in (first, *lines):
        where = f"{path}:{number}"
        if not line.strip():
            yield number, "", "", f"{where}: empty line; remove it"
            continue
        columns = [column.strip() for column in line.split("\t")]
        if len(columns) != 2:
            yield (
                number,
                "",
                "",
                f"{where}: {len(columns)} tab-separated column(s); a SemEval line is "
                "`sentence<TAB>label`",
            )
            continue
        sentence, label = columns
        problem = None if label else f"{where}: no label in the second column"
        text, sentence_problem = _mark_semeval(_unquote(sentence), where)
        yield number, text, label, sentence_problem or problem


def _semeval_block_rows(
    path: str | Path, first: tuple[int, str], lines: Iterator[tuple[int, str]]
) -> Iterator[_Row]:
    """Rows of the task's ``<id><TAB>"sentence"`` / label / ``Comment:`` / empty blocks."""
    pending: tuple[int, str] | None = first  # the sentence line waiting for its label
    for number, line in lines:
        stripped = line.strip()
        if pending is not None:
            start, sentence_line = pending
            pending = None
            where = f"{path}:{start}"
            if not stripped or "\t" in stripped or stripped.lower().startswith("comment:"):
                yield (
                    start,
                    "",
                    "",
                    f"{where}: no label line after the sentence; each block is "
                    '`<id><TAB>"sentence"`, the label, `Comment: ...` and an empty line',
                )
                if "\t" in stripped:
                    pending = (number, line)
                continue
            columns = sentence_line.split("\t")
            if len(columns) != 2:
                yield (
                    start,
                    "",
                    "",
                    f"{where}: {len(columns)} tab-separated column(s); a sentence line of a "
                    'block is `<id><TAB>"sentence"`',
                )
                continue
            text, problem = _mark_semeval(_unquote(columns[1].strip()), where)
            yield start, text, stripped, problem
        elif not stripped or stripped.lower().startswith("comment"):
            continue
        elif "\t" in stripped:
            pending = (number, line)
        else:
            yield (
                number,
                "",
                "",
                f"{path}:{number}: a line outside a block; each block is "
                '`<id><TAB>"sentence"`, the label, `Comment: ...` and an empty line',
            )
    if pending is not None:
        yield (
            pending[0],
            "",
            "",
            f"{path}:{pending[0]}: the file ends before the label of this sentence",
        )


def _unquote(sentence: str) -> str:
    if len(sentence) >= 2 and sentence[0] == sentence[-1] == '"':
        return sentence[1:-1].strip()
    return sentence


def _mark_semeval(sentence: str, where: str) -> tuple[str, str | None]:
    """``sentence`` with its SemEval tags turned into plain-text markers, or a problem."""
    if not sentence:
        return "", f"{where}: empty sentence"
    for entity in ("e1", "e2"):
        start, end = f"<{entity}>", f"</{entity}>"
        opened, closed = sentence.count(start), sentence.count(end)
        if opened != 1 or closed != 1 or sentence.index(start) > sentence.index(end):
            return "", (
                f"{where}: the sentence needs one {start}...{end} span (found {opened} {start} "
                f"and {closed} {end}); SemEval sentences mark both entities, <e1> and <e2>"
            )
    text = sentence
    for tag, marker in _SEMEVAL_TAGS.items():
        text = text.replace(tag, f" {marker} ")
    return " ".join(text.split()), None


def relation_report(
    truth: Sequence[str], predicted: Sequence[str], negative_label: str
) -> dict[str, Any]:
    """Precision, recall and F1 of relation predictions, micro-averaged over relation types.

    The scoring of ChemProt and SemEval-style benchmarks: the negative class is not a type.
    Predicting it is making no prediction (a missed relation counts once, as a false
    negative), and a negative item predicted as a relation is a false positive of that type. An
    item of type ``a`` predicted as ``b`` is a false negative of ``a`` and a false positive of
    ``b``. Accuracy is over all items, negatives included.

    Args:
        truth: the true label of each item.
        predicted: the predicted label of each item.
        negative_label: the no-relation class (``false`` in ChemProt, ``Other`` in SemEval).

    Returns:
        ``precision``, ``recall``, ``f1`` (micro, 0.0 where undefined; ChemProt's figure),
        ``macro_f1`` (the mean F1 of the relation types; SemEval-2010 Task 8 ranks by it),
        ``accuracy``,
        ``tp``/``fp``/``fn`` (micro counts), ``support`` (items of a relation type), and
        ``per_type``: for each relation type seen in either list, its ``precision``,
        ``recall``, ``f1`` and ``support``.

    Raises:
        ValueError: the lists differ in length or are empty.
    """
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    if not truth:
        raise ValueError("no items to score")
    types = sorted((set(truth) | set(predicted)) - {negative_label})
    per_type: dict[str, dict[str, float | int]] = {}
    total_tp = total_fp = total_fn = 0
    for kind in types:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p == kind)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if p == kind and t != kind)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == kind and p != kind)
        total_tp, total_fp, total_fn = total_tp + tp, total_fp + fp, total_fn + fn
        per_type[kind] = {**_scores(tp, fp, fn), "support": tp + fn}
    correct = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p)
    return {
        **_scores(total_tp, total_fp, total_fn),
        "macro_f1": sum(float(row["f1"]) for row in per_type.values()) / len(per_type)
        if per_type
        else 0.0,
        "accuracy": correct / len(truth),
        "tp": total_tp,
        "fp": total_fp,
        "fn": total_fn,
        "support": total_tp + total_fn,
        "per_type": per_type,
    }


def _scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 of the counts (0.0 where a ratio has no denominator)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def relation_dataset(
    file: str,
    tokenizer: Any,
    labels: Sequence[str],
    fmt: Literal["auto", "chemprot", "semeval"] = "auto",
    skip_bad: bool = False,
) -> Any:
    """Items ``{input_ids, case_ids, label}`` of a relation file (``nlp/relations``): each
    marked sentence encoded whole, ``label`` the index of its relation in ``labels``."""
    from convai_nlp.data.datasets import ListDataset

    rows = read_relations(file, fmt=fmt, labels=labels, skip_bad=skip_bad)
    index = {label: i for i, label in enumerate(labels)}
    encoded = tokenizer.encode_texts([row.text for row in rows])
    return ListDataset(
        {"input_ids": e.ids, "case_ids": e.case_ids, "label": index[row.label], "index": i}
        for i, (e, row) in enumerate(zip(encoded, rows, strict=True))
    )
