"""``nlp/relation_extraction``: the relation between two marked entities of a sentence.

The BioMegatron recipe (and BLUE's ChemProt task): the two entities are marked in the text
(``@CHEMICAL$`` / ``@GENE$``, or ``[E1] ... [/E1]`` / ``[E2] ... [/E2]`` from SemEval's
``<e1>`` tags; see :mod:`convai_nlp.data.relations`), and a sentence classifier names their
relation or the negative class. Scores leave the negative class out: micro-averaged over the
relation types (ChemProt's figure), and the macro average SemEval-2010 Task 8 ranks by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from convai_core.errors import ConfigError
from convai_nlp.data.datasets import infer_labels
from convai_nlp.data.relations import read_relations, relation_report
from convai_nlp.models.text_classification import TextClassificationModel

if TYPE_CHECKING:
    import pytorch_lightning as pl


class RelationExtractionModel(TextClassificationModel):
    """A pretrained encoder and a sequence head over entity-marked sentences.

    Config keys as ``nlp/text_classification``, plus ``negative_label`` (the no-relation
    class, ``false`` for ChemProt, ``Other`` for SemEval) and the data sections' ``fmt``
    (``auto``, ``chemprot`` or ``semeval``). Validation logs ``val_loss``, ``val_accuracy``,
    ``val_f1``/``val_precision``/``val_recall`` (micro-averaged over the relation types) and
    ``val_macro_f1``.
    """

    DEFAULT_DATASET = "nlp/relations"

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        self.negative_label = str(self.cfg.get("negative_label", "false"))
        if self.negative_label not in self.labels:
            raise ConfigError(
                f"model.negative_label={self.negative_label!r} is not one of the labels "
                f"{self.labels}; name the no-relation class (ChemProt: false, SemEval: Other)"
            )

    def _infer_labels(self) -> list[str]:
        train = self.cfg.get("train_ds") or {}
        rows = read_relations(self.train_file("file"), fmt=train.get("fmt", "auto"))
        return infer_labels([[row.label] for row in rows])

    def on_validation_epoch_end(self) -> None:
        pairs = self.validation_pairs()
        if not pairs:
            return
        report = relation_report(
            [self.labels[t] for t, _ in pairs],
            [self.labels[p] for _, p in pairs],
            self.negative_label,
        )
        self.log("val_accuracy", report["accuracy"])
        self.log("val_precision", report["precision"])
        self.log("val_recall", report["recall"])
        self.log("val_f1", report["f1"], prog_bar=True)
        self.log("val_macro_f1", report["macro_f1"])

    def evaluate(self, file: str, batch_size: int = 64, fmt: str = "auto") -> dict[str, Any]:
        """Micro P/R/F1 over the relation types (negative class left out), per-type scores
        and accuracy on a relation file."""
        rows = read_relations(file, fmt=fmt, labels=self.labels)  # type: ignore[arg-type]
        predicted = self.classify([row.text for row in rows], batch_size=batch_size)
        return relation_report(
            [row.label for row in rows], [p["label"] for p in predicted], self.negative_label
        )
