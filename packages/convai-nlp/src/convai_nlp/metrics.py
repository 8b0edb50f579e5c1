"""Scores of the NLP tasks: accuracy and per-class F1, entity-level F1 (seqeval), and the
official GLUE/SuperGLUE metrics (Matthews correlation, F1, Pearson and Spearman correlation).

Importing this module imports neither torch nor numpy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any


def classification_report(
    truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support of single-label predictions.

    Macro-F1 averages the classes that occur in ``truth`` or ``predicted``.
    """
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    per_class: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p == label)
        n_pred = sum(1 for p in predicted if p == label)
        n_true = sum(1 for t in truth if t == label)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": n_true}
    present = [c for c in labels if per_class[c]["support"] or c in set(predicted)]
    correct = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p)
    return {
        "accuracy": correct / len(truth) if truth else 0.0,
        "macro_f1": sum(per_class[c]["f1"] for c in present) / len(present) if present else 0.0,
        "per_class": per_class,
        "count": len(truth),
    }


def entity_report(
    truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """Entity-level precision, recall and F1 (CoNLL scoring, IOB/IOB2 tags) with seqeval.

    Returns:
        ``{"precision", "recall", "f1", "per_type": {type: {precision, recall, f1, support}}}``.
    """
    from seqeval.metrics import classification_report as seqeval_report

    report = seqeval_report(
        [list(t) for t in truth],
        [list(p) for p in predicted],
        output_dict=True,
        zero_division=0,
    )
    micro = report.pop("micro avg")
    per_type = {
        name: {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": int(row["support"]),
        }
        for name, row in report.items()
        if not name.endswith(" avg")
    }
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "per_type": per_type,
    }


# --------------------------------------------------------------------------------------------
# GLUE / SuperGLUE official metrics
# --------------------------------------------------------------------------------------------


def _checked_lengths(truth: Sequence[Any], predicted: Sequence[Any]) -> None:
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    if not truth:
        raise ValueError("no examples to score")


def matthews_correlation(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Matthews correlation coefficient of labels (any number of classes; 0 when undefined).

    With ``n`` examples, ``c`` of them right, ``t_k`` true and ``p_k`` predicted examples of
    class ``k``: ``(c n - sum p_k t_k) / sqrt((n² - sum p_k²)(n² - sum t_k²))``; for two
    classes it equals the usual ``(tp tn - fp fn) / sqrt(...)``. A constant prediction (or
    constant truth) has a zero denominator and scores 0.
    """
    _checked_lengths(truth, predicted)
    n = len(truth)
    correct = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p)
    true_counts = Counter(truth)
    predicted_counts = Counter(predicted)
    classes = set(true_counts) | set(predicted_counts)
    covariance = correct * n - sum(true_counts[k] * predicted_counts[k] for k in classes)
    spread_p = n * n - sum(v * v for v in predicted_counts.values())
    spread_t = n * n - sum(v * v for v in true_counts.values())
    if spread_p == 0 or spread_t == 0:
        return 0.0
    return covariance / math.sqrt(spread_p * spread_t)


def binary_f1(truth: Sequence[str], predicted: Sequence[str], positive: str = "1") -> float:
    """F1 of the ``positive`` class (0 when it is neither predicted nor true)."""
    _checked_lengths(truth, predicted)
    pairs = list(zip(truth, predicted, strict=True))
    tp = sum(1 for t, p in pairs if t == positive and p == positive)
    fp = sum(1 for t, p in pairs if t != positive and p == positive)
    fn = sum(1 for t, p in pairs if t == positive and p != positive)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def pearson_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's correlation of two equally long series (0 when one is constant)."""
    _checked_lengths(x, y)
    mean_x, mean_y = sum(x) / len(x), sum(y) / len(y)
    dx = [v - mean_x for v in x]
    dy = [v - mean_y for v in y]
    spread = math.sqrt(sum(v * v for v in dx) * sum(v * v for v in dy))
    if spread == 0:
        return 0.0
    return sum(a * b for a, b in zip(dx, dy, strict=True)) / spread


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    first = 0
    while first < len(order):
        last = first
        while last + 1 < len(order) and values[order[last + 1]] == values[order[first]]:
            last += 1
        for position in range(first, last + 1):  # positions first..last hold ranks first+1..
            ranks[order[position]] = (first + last) / 2 + 1
        first = last + 1
    return ranks


def spearman_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's of the average ranks (ties handled)."""
    _checked_lengths(x, y)
    return pearson_correlation(average_ranks(x), average_ranks(y))


def glue_scores(
    task: str, truth: Sequence[str | float], predicted: Sequence[str | float]
) -> dict[str, float]:
    """The official metrics of a GLUE/SuperGLUE task, and its headline ``score``.

    ========================================  ================================  =============
    task                                      metrics                           ``score``
    ========================================  ================================  =============
    cola                                      ``mcc`` (Matthews correlation)    mcc
    sst-2, mnli, qnli, rte, wnli, boolq       ``accuracy``                      accuracy
    mrpc, qqp                                 ``accuracy``, ``f1`` (class 1)    their mean
    sts-b                                     ``pearson``, ``spearman``         their mean
    ========================================  ================================  =============

    MNLI's matched and mismatched dev sets are scored by separate calls.

    Args:
        task: a key of :data:`convai_nlp.data.glue.TASKS`.
        truth: the labels (``str(label)`` is compared, so 0/1 and "0"/"1" agree), or the
            gold scores of STS-B.
        predicted: the predictions, in the same form.

    Raises:
        ConfigError: an unknown task.
        ValueError: the two sequences differ in length or are empty.
    """
    from convai_nlp.data.glue import glue_task

    spec = glue_task(task)
    _checked_lengths(truth, predicted)
    scores: dict[str, float] = {}
    if spec.labels is None:
        gold = [float(v) for v in truth]
        guess = [float(v) for v in predicted]
        scores["pearson"] = pearson_correlation(gold, guess)
        scores["spearman"] = spearman_correlation(gold, guess)
    else:
        gold_labels = [_label_text(v) for v in truth]
        guessed = [_label_text(v) for v in predicted]
        if "mcc" in spec.metrics:
            scores["mcc"] = matthews_correlation(gold_labels, guessed)
        if "accuracy" in spec.metrics:
            right = sum(1 for t, p in zip(gold_labels, guessed, strict=True) if t == p)
            scores["accuracy"] = right / len(gold_labels)
        if "f1" in spec.metrics:
            scores["f1"] = binary_f1(gold_labels, guessed, positive="1")
    scores["score"] = sum(scores[name] for name in spec.metrics) / len(spec.metrics)
    return scores


def _label_text(value: str | float) -> str:
    """A label as the files write it: ``True`` -> ``true`` (BoolQ), ``1`` -> ``1``."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value).strip()
