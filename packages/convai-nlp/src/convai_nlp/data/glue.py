"""GLUE and SuperGLUE BoolQ in their distribution formats: the task table, readers and writers.

Every GLUE task ships as tab-separated files read with quoting off (the files hold stray
``"`` characters that belong to the text), one example a line. All but CoLA's train and dev files
start with a header, and columns are found by header name, since one task's files differ (MNLI's
train has one annotator label column, its dev files five). BoolQ ships as SuperGLUE's JSON lines
(``question``, ``passage``, ``label`` true/false, ``idx``).

==========  ==========================  ===================  =====================  =============
task        text columns                label column         labels                 metrics
==========  ==========================  ===================  =====================  =============
``cola``    sentence (4th, no header)   2nd column           0 / 1                  mcc
``sst-2``   sentence                    label                0 / 1                  accuracy
``mrpc``    #1 String, #2 String        Quality              0 / 1                  accuracy, f1
``sts-b``   sentence1, sentence2        score                a number, 0 to 5       pearson, spearman
``qqp``     question1, question2        is_duplicate         0 / 1                  accuracy, f1
``mnli``    sentence1, sentence2        gold_label           entailment, neutral,   accuracy
                                                             contradiction
``qnli``    question, sentence          label                (not_)entailment       accuracy
``rte``     sentence1, sentence2        label                (not_)entailment       accuracy
``wnli``    sentence1, sentence2        label                0 / 1                  accuracy
``boolq``   question, passage           label (JSON bool)    false / true           accuracy
==========  ==========================  ===================  =====================  =============

A test file without labels (GLUE's ``test.tsv``, whose header lacks the label column, or JSON
lines without ``label``) reads with ``label=None``. A malformed line raises
:class:`~convai_nlp.errors.DataError` naming the file and line, or with ``skip_bad=True`` is
skipped and counted in a warning.

QNLI can be rebuilt from SQuAD v1.1 as GLUE built it (:func:`rebuild_qnli`): each question is
paired with the sentence of its paragraph that holds the answer (``entailment``) and with another
sentence of that paragraph (``not_entailment``).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convai_core.errors import ConfigError
from convai_nlp.data.readers import Skipped, _lines
from convai_nlp.errors import DataError

if TYPE_CHECKING:
    from convai_nlp.tokenizers import Encoded, HFTokenizer

__all__ = [
    "TASKS",
    "GlueExample",
    "GlueTask",
    "encode_examples",
    "glue_dataset",
    "glue_files",
    "glue_task",
    "read_glue",
    "rebuild_qnli",
    "sentence_spans",
    "write_glue_tsv",
]


@dataclass(frozen=True)
class GlueTask:
    """How one GLUE/SuperGLUE task is distributed and scored.

    Attributes:
        name: the task's key in :data:`TASKS`.
        folder: the task's folder in the GLUE download (``CoLA``, ``SST-2``...).
        text_columns: the one or two columns holding the texts.
        label_column: the column (JSON key) holding the label.
        labels: the label set, as written in the files; None for regression (STS-B).
        metrics: the official metrics; the headline score is their mean.
        files: split -> file names to look for, the first that exists wins; a split whose
            name starts with ``test`` is optional.
        header: whether the train and dev files start with a header line.
        columns: every column of a train file, in order (the names of a headerless file's
            columns); empty for JSON lines.
        test_columns: every column of a test file (which has a header and no label).
        jsonl: JSON lines instead of tab-separated values.
    """

    name: str
    folder: str
    text_columns: tuple[str, ...]
    label_column: str
    labels: tuple[str, ...] | None
    metrics: tuple[str, ...]
    files: Mapping[str, tuple[str, ...]]
    header: bool = True
    columns: tuple[str, ...] = ()
    test_columns: tuple[str, ...] = ()
    jsonl: bool = False

    @property
    def pair(self) -> bool:
        """Whether an example is a pair of texts."""
        return len(self.text_columns) == 2


@dataclass(frozen=True)
class GlueExample:
    """One example of a GLUE file.

    Attributes:
        text_a: the first (or only) text.
        text_b: the second text of a pair task, else None.
        label: a label of the task's set, the score of a regression task, or None in a test file.
        line: the line of the file it was read from (1-based).
    """

    text_a: str
    text_b: str | None
    label: str | float | None
    line: int = field(default=0, compare=False)


_SPLITS = {"train": ("train.tsv",), "dev": ("dev.tsv",), "test": ("test.tsv",)}
_BINARY = ("0", "1")
_ENTAILMENT = ("entailment", "not_entailment")
_INDEXED_PAIR = ("index", "sentence1", "sentence2", "label")

TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask(
            name="cola",
            folder="CoLA",
            text_columns=("sentence",),
            label_column="label",
            labels=_BINARY,
            metrics=("mcc",),
            files=_SPLITS,
            header=False,
            columns=("source", "label", "original_label", "sentence"),
            test_columns=("index", "sentence"),
        ),
        GlueTask(
            name="sst-2",
            folder="SST-2",
            text_columns=("sentence",),
            label_column="label",
            labels=_BINARY,
            metrics=("accuracy",),
            files=_SPLITS,
            columns=("sentence", "label"),
            test_columns=("index", "sentence"),
        ),
        GlueTask(
            name="mrpc",
            folder="MRPC",
            text_columns=("#1 String", "#2 String"),
            label_column="Quality",
            labels=_BINARY,
            metrics=("accuracy", "f1"),
            files=_SPLITS,
            columns=("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
            test_columns=("index", "#1 ID", "#2 ID", "#1 String", "#2 String"),
        ),
        GlueTask(
            name="sts-b",
            folder="STS-B",
            text_columns=("sentence1", "sentence2"),
            label_column="score",
            labels=None,
            metrics=("pearson", "spearman"),
            files=_SPLITS,
            columns=(
                *("index", "genre", "filename", "year", "old_index", "source1", "source2"),
                *("sentence1", "sentence2", "score"),
            ),
            test_columns=(
                *("index", "genre", "filename", "year", "old_index", "source1", "source2"),
                *("sentence1", "sentence2"),
            ),
        ),
        GlueTask(
            name="qqp",
            folder="QQP",
            text_columns=("question1", "question2"),
            label_column="is_duplicate",
            labels=_BINARY,
            metrics=("accuracy", "f1"),
            files=_SPLITS,
            columns=("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
            test_columns=("id", "question1", "question2"),
        ),
        GlueTask(
            name="mnli",
            folder="MNLI",
            text_columns=("sentence1", "sentence2"),
            label_column="gold_label",
            labels=("entailment", "neutral", "contradiction"),
            metrics=("accuracy",),
            files={
                "train": ("train.tsv",),
                "dev_matched": ("dev_matched.tsv",),
                "dev_mismatched": ("dev_mismatched.tsv",),
                "test_matched": ("test_matched.tsv",),
                "test_mismatched": ("test_mismatched.tsv",),
            },
            columns=(
                *("index", "promptID", "pairID", "genre"),
                *("sentence1_binary_parse", "sentence2_binary_parse"),
                *("sentence1_parse", "sentence2_parse", "sentence1", "sentence2"),
                *("label1", "gold_label"),
            ),
            test_columns=(
                *("index", "promptID", "pairID", "genre"),
                *("sentence1_binary_parse", "sentence2_binary_parse"),
                *("sentence1_parse", "sentence2_parse", "sentence1", "sentence2"),
            ),
        ),
        GlueTask(
            name="qnli",
            folder="QNLI",
            text_columns=("question", "sentence"),
            label_column="label",
            labels=_ENTAILMENT,
            metrics=("accuracy",),
            files=_SPLITS,
            columns=("index", "question", "sentence", "label"),
            test_columns=("index", "question", "sentence"),
        ),
        GlueTask(
            name="rte",
            folder="RTE",
            text_columns=("sentence1", "sentence2"),
            label_column="label",
            labels=_ENTAILMENT,
            metrics=("accuracy",),
            files=_SPLITS,
            columns=_INDEXED_PAIR,
            test_columns=_INDEXED_PAIR[:3],
        ),
        GlueTask(
            name="wnli",
            folder="WNLI",
            text_columns=("sentence1", "sentence2"),
            label_column="label",
            labels=_BINARY,
            metrics=("accuracy",),
            files=_SPLITS,
            columns=_INDEXED_PAIR,
            test_columns=_INDEXED_PAIR[:3],
        ),
        GlueTask(
            name="boolq",
            folder="BoolQ",
            text_columns=("question", "passage"),
            label_column="label",
            labels=("false", "true"),
            metrics=("accuracy",),
            # SuperGLUE names the dev split val.jsonl; convai's boolq corpus writes dev.jsonl
            files={
                "train": ("train.jsonl",),
                "dev": ("val.jsonl", "dev.jsonl"),
                "test": ("test.jsonl",),
            },
            jsonl=True,
        ),
    )
}


def glue_task(task: str) -> GlueTask:
    """The :class:`GlueTask` called ``task`` (any case; ``sst2`` and ``stsb`` also work).

    Raises:
        ConfigError: an unknown task, listing the known ones.
    """
    key = task.strip().lower()
    aliases = {name.replace("-", ""): name for name in TASKS}
    found = TASKS.get(key) or TASKS.get(aliases.get(key.replace("-", "").replace("_", ""), ""))
    if found is None:
        raise ConfigError(f"unknown GLUE task {task!r}; known tasks: {', '.join(TASKS)}")
    return found


# --------------------------------------------------------------------------------------------
# Finding and reading files
# --------------------------------------------------------------------------------------------


def glue_files(task: str, data_dir: str | Path) -> dict[str, Path]:
    """The split files of ``task`` in ``data_dir`` (or in its GLUE sub-folder, e.g. ``CoLA``).

    Returns:
        split -> file, for every split found; the train and dev splits are required, test
        splits are optional.

    Raises:
        ConfigError: an unknown task.
        DataError: a required file is missing; the message names the folder and the file names
            looked for.
    """
    spec = glue_task(task)
    base = Path(data_dir).expanduser()
    folders = [base, base / spec.folder]
    for folder in folders:
        found = {
            split: folder / name
            for split, names in spec.files.items()
            for name in reversed(names)  # the first name listed wins
            if (folder / name).is_file()
        }
        required = [s for s in spec.files if not s.startswith("test")]
        if all(split in found for split in required):
            return found
    expected = "; ".join(f"{split}: {' or '.join(names)}" for split, names in spec.files.items())
    raise DataError(
        f"{base} (nor {base / spec.folder}) does not hold the {spec.name} files; expected "
        f"{expected} (test files are optional). Point data_dir at the task's folder."
    )


def _label_problem(spec: GlueTask, raw: str) -> tuple[str | float | None, str | None]:
    """The label parsed from ``raw``, or the problem with it."""
    value = raw.strip()
    if spec.labels is None:
        try:
            score = float(value)
        except ValueError:
            return None, f"score {value!r} is not a number"
        if not math.isfinite(score):
            return None, f"score {value!r} is not a finite number"
        return score, None
    if value not in spec.labels:
        return None, f"unknown label {value!r}; {spec.name} labels are {', '.join(spec.labels)}"
    return value, None


def _header_positions(spec: GlueTask, cells: list[str]) -> dict[str, int] | None:
    """Column name -> position when ``cells`` is a header line of ``spec``'s files, else None."""
    names = [cell.strip().lstrip("\ufeff") for cell in cells]
    if not all(column in names for column in spec.text_columns):
        return None
    return {name: i for i, name in enumerate(names)}


def _read_tsv(spec: GlueTask, path: str | Path, skipped: Skipped) -> list[GlueExample]:
    rows: list[GlueExample] = []
    lines: Iterator[tuple[int, str]] = _lines(path, f"{spec.name} data")
    first = next(lines, None)
    if first is None:
        return rows
    positions = _header_positions(spec, first[1].split("\t"))
    if positions is None:
        if spec.header:
            raise DataError(
                f"{path}:1: expected a header naming the columns {', '.join(spec.columns)}; "
                f"is this a {spec.name} file?"
            )
        positions = {name: i for i, name in enumerate(spec.columns)}
        lines = _chain(first, lines)
    labelled = spec.label_column in positions
    needed = [*spec.text_columns, *([spec.label_column] if labelled else [])]
    for number, line in lines:
        where = f"{path}:{number}"
        cells = line.split("\t")  # quoting off: a " is part of the text
        problem = None
        label: str | float | None = None
        missing = [c for c in needed if positions[c] >= len(cells)]
        if not line.strip():
            problem = f"{where}: empty line; remove it"
        elif missing:
            problem = (
                f"{where}: missing column {missing[0]!r} (column {positions[missing[0]] + 1}); "
                f"the line has {len(cells)} tab-separated column(s)"
            )
        else:
            empty = [c for c in spec.text_columns if not cells[positions[c]].strip()]
            if empty:
                problem = f"{where}: empty text in column {empty[0]!r}"
            elif labelled:
                label, problem = _label_problem(spec, cells[positions[spec.label_column]])
                problem = problem and f"{where}: {problem}"
        if skipped.is_bad(problem):
            continue
        texts = [cells[positions[c]].strip() for c in spec.text_columns]
        rows.append(GlueExample(texts[0], texts[1] if spec.pair else None, label, number))
    return rows


def _chain(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


def _read_jsonl(spec: GlueTask, path: str | Path, skipped: Skipped) -> list[GlueExample]:
    rows: list[GlueExample] = []
    for number, line in _lines(path, f"{spec.name} data"):
        where = f"{path}:{number}"
        problem = None
        label: str | float | None = None
        record: Any = None
        if not line.strip():
            problem = f"{where}: empty line; remove it"
        else:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                problem = f"{where}: not valid JSON ({exc.msg} at column {exc.colno})"
        if problem is None and not isinstance(record, dict):
            problem = f"{where}: expected a JSON object, got {type(record).__name__}"
        if problem is None:
            for key in spec.text_columns:
                value = record.get(key)
                if key not in record:
                    problem = f"{where}: missing key {key!r}"
                elif not isinstance(value, str) or not value.strip():
                    problem = f"{where}: empty text in key {key!r}"
                if problem:
                    break
        if problem is None and record.get(spec.label_column) is not None:
            raw = record[spec.label_column]
            raw = str(raw).lower() if isinstance(raw, bool | str) else repr(raw)
            label, problem = _label_problem(spec, raw)
            problem = problem and f"{where}: {problem} (JSON true/false)"
        if skipped.is_bad(problem):
            continue
        texts = [record[key].strip() for key in spec.text_columns]
        rows.append(GlueExample(texts[0], texts[1] if spec.pair else None, label, number))
    return rows


def read_glue(task: str, path: str | Path, *, skip_bad: bool = False) -> list[GlueExample]:
    """The examples of one file of ``task`` in its distribution format.

    Args:
        task: a key of :data:`TASKS` (``cola``, ``sst-2``, ``mrpc``, ``sts-b``, ``qqp``,
            ``mnli``, ``qnli``, ``rte``, ``wnli``, ``boolq``).
        path: a train, dev or test file of that task.
        skip_bad: skip malformed lines with a counted warning instead of raising.

    Returns:
        The examples in file order; ``label`` is None throughout a test file.

    Raises:
        ConfigError: an unknown task.
        DataError: naming the file and line: a missing column or key, an empty text, a label
            outside the task's set, a score that is not a number, a line that is not JSON; or a
            file that does not exist or holds no usable line.
    """
    spec = glue_task(task)
    skipped = Skipped(str(path), skip_bad)
    read = _read_jsonl if spec.jsonl else _read_tsv
    return skipped.finish(read(spec, path, skipped))


# --------------------------------------------------------------------------------------------
# Writing files
# --------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """``text`` on one line without tabs, as a TSV cell without quoting must be."""
    return " ".join(text.split())


def _score(value: str | float) -> str:
    return f"{float(value):.3f}"


def write_glue_tsv(
    task: str,
    rows: Iterable[GlueExample | Sequence[Any]],
    path: str | Path,
) -> Path:
    """Write ``rows`` as a file of ``task`` in its real column layout (atomically).

    A labelled file takes the layout of the task's train file (CoLA's without header); rows
    whose labels are all None make a test file. Columns convai does not have (ids, genres,
    parses) are left empty, and ``index``/``id`` columns count from 0; tabs and line breaks in
    the texts become spaces.

    Args:
        task: a TSV task of :data:`TASKS` (not ``boolq``).
        rows: :class:`GlueExample` or ``(text_a, text_b, label)`` tuples (``(text, label)`` for
            the one-text tasks), e.g. :func:`rebuild_qnli`'s rows.
        path: the file to write.

    Returns:
        ``path``.

    Raises:
        ConfigError: an unknown or JSON-lines task.
        ValueError: a row of the wrong length, a label outside the task's set, or a mix of
            labelled and unlabelled rows.
    """
    spec = glue_task(task)
    if spec.jsonl:
        raise ConfigError(f"{spec.name} is distributed as JSON lines, not TSV")
    examples = [_as_example(spec, row) for row in rows]
    labelled = {example.label is not None for example in examples}
    if len(labelled) > 1:
        raise ValueError("some rows have labels and some do not; write them to separate files")
    is_test = labelled == {False}
    columns = spec.test_columns if is_test else spec.columns
    lines = [] if (not is_test and not spec.header) else ["\t".join(columns)]
    for index, example in enumerate(examples):
        values = dict.fromkeys(columns, "")
        values["index"] = values["id"] = str(index)
        values[spec.text_columns[0]] = _cell(example.text_a)
        if spec.pair:
            values[spec.text_columns[1]] = _cell(example.text_b or "")
        if example.label is not None:
            label = _score(example.label) if spec.labels is None else str(example.label)
            values[spec.label_column] = values["label1"] = label
            values["original_label"] = "*" if label == "0" else ""
        lines.append("\t".join(values[c] for c in columns))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _as_example(spec: GlueTask, row: GlueExample | Sequence[Any]) -> GlueExample:
    if isinstance(row, GlueExample):
        example = row
    else:
        if len(row) != len(spec.text_columns) + 1:
            raise ValueError(
                f"a {spec.name} row is ({', '.join(spec.text_columns)}, label), got {row!r}"
            )
        example = GlueExample(row[0], row[1] if spec.pair else None, row[-1])
    if example.label is not None and spec.labels is not None and example.label not in spec.labels:
        raise ValueError(
            f"label {example.label!r} is not a {spec.name} label ({', '.join(spec.labels)})"
        )
    if spec.pair and not example.text_b:
        raise ValueError(f"{spec.name} examples are pairs; {example!r} has no second text")
    return example


# --------------------------------------------------------------------------------------------
# QNLI from SQuAD v1.1
# --------------------------------------------------------------------------------------------

#: Words that end in a period without ending a sentence (lower case, without the period).
ABBREVIATIONS = frozenset(
    """
    mr mrs ms messrs dr prof rev hon sr jr st mt ft fr gen col lt capt cmdr sgt maj adm gov
    sen rep pres supt insp no nos vol vols pp p fig figs ch chap sec art op ed eds trans
    approx ca c cf al viz vs v inc ltd co corp bros dept univ assn est jan feb mar apr jun jul
    aug sep sept oct nov dec mon tue wed thu fri sat sun ave blvd rd
    """.split()
)
# a candidate end: marks, closing quotes or brackets, Wikipedia notes ("[citation needed]",
# "[3]"), then white space and what starts a sentence
_CANDIDATE_END = re.compile(
    r"([.!?]+)[\"'”’)\]]*(?:\[[^\[\]\n]{1,40}\])*(?=\s+[\"'“‘(\[]*[A-Z0-9])"
)
_WORD_BEFORE = re.compile(r"(\S+)$")


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """Whether the candidate ``match`` ends a sentence rather than an abbreviation."""
    if match.group(1) != ".":
        return True  # ? or ! or an ellipsis
    before = _WORD_BEFORE.search(text, 0, match.start())
    word = before.group(1).lstrip("\"'“‘([") if before else ""
    if not word:
        return True
    if word.lower() in ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. R. R. Tolkien"
    if "." in word and all(part.isalpha() and len(part) <= 2 for part in word.split(".")):
        return False  # "U.S", "e.g", "Ph.D": dotted abbreviations
    return True


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the sentences of ``text`` (Wikipedia prose).

    A sentence ends at ``.``, ``!`` or ``?`` (with any closing quotes or brackets) followed by
    white space and a capital letter, a digit, or an opening quote or bracket; a period does not
    end a sentence after a known abbreviation (:data:`ABBREVIATIONS`), a single-letter initial or
    a dotted abbreviation such as ``U.S.``, and a decimal point is never followed by a space.
    Doubtful cases are left unsplit: two sentences taken for one cost less than a sentence cut
    in two. The spans exclude the white space between sentences.
    """
    spans: list[tuple[int, int]] = []
    start = len(text) - len(text.lstrip())
    for match in _CANDIDATE_END.finditer(text):
        if match.end() <= start or not _ends_sentence(text, match):
            continue
        spans.append((start, match.end()))
        rest = text[match.end() :]
        start = match.end() + len(rest) - len(rest.lstrip())
    end = len(text.rstrip())
    if start < end:
        spans.append((start, end))
    return spans


_STOP_WORDS = frozenset(
    """
    a an the of in on at to for from by with and or but is are was were be been being do does
    did what which who whom whose when where why how that this these those it its as than into
    s many much did has have had not no can could would should will may might there their they
    he she his her him i you we our your one
    """.split()
)
_WORD = re.compile(r"\w+")


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS}


def rebuild_qnli(
    squad: bytes | str | Mapping[str, Any], rng_seed: int
) -> list[tuple[str, str, str]]:
    """QNLI pairs rebuilt from SQuAD v1.1, as GLUE built QNLI.

    Each paragraph is cut into sentences (:func:`sentence_spans`). A question makes two rows:
    with the sentence that holds its (first) answer's start, ``entailment``, and with another
    sentence of the same paragraph, ``not_entailment``, so the classes are balanced. The other
    sentence is drawn among those that share a content word with the question (GLUE dropped
    pairs of low lexical overlap), or among all others when none does. Questions are skipped
    when their answer runs past the end of its sentence, when the answer text is not found at
    its offset, or when the paragraph has a single sentence.

    Args:
        squad: the SQuAD JSON (bytes or text) or its parsed dict (``{"data": [...]}``).
        rng_seed: seed of the draws (the negative sentence, and which of the two rows of a
            question comes first); the same seed gives the same rows.

    Returns:
        ``(question, sentence, label)`` rows, ``label`` ``entailment`` or ``not_entailment``,
        texts on one line.
    """
    data = squad if isinstance(squad, Mapping) else json.loads(squad)
    rng = random.Random(rng_seed)
    rows: list[tuple[str, str, str]] = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            spans = sentence_spans(context)
            if len(spans) < 2:
                continue
            sentences = [_cell(context[a:b]) for a, b in spans]
            words = [_content_words(s) for s in sentences]
            for qa in paragraph["qas"]:
                if not qa.get("answers"):
                    continue
                answer = qa["answers"][0]
                begin = int(answer["answer_start"])
                end = begin + len(answer["text"])
                if context[begin:end] != answer["text"]:
                    continue
                holder = next((i for i, (a, b) in enumerate(spans) if a <= begin < b), None)
                if holder is None or end > spans[holder][1]:
                    continue  # the answer crosses a sentence boundary
                question = _cell(qa["question"])
                asked = _content_words(question)
                others = [i for i in range(len(spans)) if i != holder]
                overlapping = [i for i in others if words[i] & asked]
                negative = rng.choice(overlapping or others)
                pair = [
                    (question, sentences[holder], "entailment"),
                    (question, sentences[negative], "not_entailment"),
                ]
                if rng.random() < 0.5:
                    pair.reverse()
                rows += pair
    return rows


# --------------------------------------------------------------------------------------------
# Encoder inputs
# --------------------------------------------------------------------------------------------


def encode_examples(
    tokenizer: HFTokenizer, examples: Sequence[GlueExample], max_first: int | None = None
) -> list[Encoded]:
    """Encoder inputs of GLUE examples: pairs with segment ids, single texts with segment 0."""
    from convai_nlp.tokenizers import Encoded

    pairs = [i for i, e in enumerate(examples) if e.text_b is not None]
    singles = [i for i, e in enumerate(examples) if e.text_b is None]
    encoded: list[Encoded | None] = [None] * len(examples)
    joined = tokenizer.encode_pairs(
        [examples[i].text_a for i in pairs],
        [examples[i].text_b or "" for i in pairs],
        max_first=max_first,
    )
    for i, e in zip(pairs, joined, strict=True):
        encoded[i] = e
    for i, e in zip(
        singles, tokenizer.encode_texts([examples[i].text_a for i in singles]), strict=True
    ):
        encoded[i] = Encoded(e.ids, e.word_ids, e.case_ids, [0] * len(e.ids))
    return [e for e in encoded if e is not None]


def glue_dataset(
    file: str,
    task: str,
    tokenizer: HFTokenizer,
    labels: Sequence[str],
    skip_bad: bool = False,
    max_examples: int | None = None,
) -> Any:
    """Items ``{input_ids, token_type_ids, case_ids, label, index}`` of a GLUE/SuperGLUE file
    (``nlp/glue``); ``label`` is a class index, or the score of a regression task."""
    from convai_nlp.data.datasets import ListDataset

    examples = read_glue(task, file, skip_bad=skip_bad)
    if max_examples is not None:
        examples = examples[: int(max_examples)]
    unlabelled = next((e for e in examples if e.label is None), None)
    if unlabelled is not None:
        raise ConfigError(
            f"{file}:{unlabelled.line}: no label (a GLUE test file?); train and validate on "
            "labelled files"
        )
    index = {label: i for i, label in enumerate(labels)}
    items: list[dict[str, Any]] = []
    for example, encoded in zip(examples, encode_examples(tokenizer, examples), strict=True):
        label: Any = float(example.label) if not labels else index[str(example.label)]  # type: ignore[arg-type]
        items.append(
            {
                "input_ids": encoded.ids,
                "token_type_ids": encoded.type_ids,
                "case_ids": encoded.case_ids,
                "label": label,
                "index": len(items),
            }
        )
    return ListDataset(items)
