"""Scores of the NLP tasks: accuracy and per-class F1, and entity-level F1 (seqeval)."""

from __future__ import annotations

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
