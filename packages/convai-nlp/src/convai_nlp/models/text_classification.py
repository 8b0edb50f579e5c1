"""``nlp/text_classification``: one label per text (sentiment, topic, question type...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from convai_core.types import Axis, AxisKind, Logits, NeuralType
from convai_nlp.data.datasets import infer_labels
from convai_nlp.data.readers import read_text_classification
from convai_nlp.metrics import classification_report
from convai_nlp.models.base import TransformerTaskModel

if TYPE_CHECKING:
    import pytorch_lightning as pl


class TextClassificationModel(TransformerTaskModel):
    """A pretrained encoder and a sequence head (``nlp/sequence_classifier``).

    Config keys: ``backbone``, ``tokenizer`` (optional), ``labels`` (class names; read from
    ``train_ds.file`` when unset), ``head``, ``optim``, and data sections ``train_ds`` /
    ``validation_ds`` / ``test_ds`` with ``file`` (``sentence<TAB>label`` lines).
    Validation logs ``val_loss``, ``val_accuracy`` and ``val_macro_f1``.
    """

    DEFAULT_DATASET = "nlp/text_classification"
    LABEL_KEYS = ("labels",)

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        self.labels = self.label_list("labels", self._infer_labels)
        self.head = self.build_head("head", "nlp/sequence_classifier", len(self.labels))

    def _infer_labels(self) -> list[str]:
        """The sorted labels of the training file (when the config gives none)."""
        rows = read_text_classification(self.train_file("file"))
        return infer_labels([[label] for _, label in rows])

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        axes = (Axis(AxisKind.BATCH), Axis(AxisKind.CLASS, len(self.labels)))
        return {"logits": NeuralType(axes, Logits())}

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        case_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Shapes: input_ids (B, T), attention_mask (B, T), case_ids (B, T) -> logits (B, C)."""
        hidden = self.backbone(input_ids, attention_mask, case_ids)
        logits: torch.Tensor = self.head(hidden, attention_mask)
        return logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(*self.inputs(batch))
        loss = torch.nn.functional.cross_entropy(logits.float(), batch["label"])
        self.log("train_loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(*self.inputs(batch)).float()
        loss = torch.nn.functional.cross_entropy(logits, batch["label"])
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=len(logits))
        rows = zip(
            batch["index"].tolist(),
            batch["label"].tolist(),
            logits.argmax(-1).tolist(),
            strict=True,
        )
        self._val_outputs.extend(rows)

    def validation_pairs(self) -> list[tuple[int, int]]:
        """(true, predicted) class ids of the validation items, each once (DDP ranks may
        repeat an item to even out their batches)."""
        unique = {index: (t, p) for index, t, p in self.gather_objects(self._val_outputs)}
        return [unique[i] for i in sorted(unique)]

    def on_validation_epoch_end(self) -> None:
        pairs = self.validation_pairs()
        if not pairs:
            return
        report = classification_report(
            [self.labels[t] for t, _ in pairs], [self.labels[p] for _, p in pairs], self.labels
        )
        self.log("val_accuracy", report["accuracy"], prog_bar=True)
        self.log("val_macro_f1", report["macro_f1"])

    @torch.no_grad()
    def classify(self, texts: Sequence[str], batch_size: int = 64) -> list[dict[str, Any]]:
        """Label each text.

        Returns:
            per text ``{"label": best label, "score": its probability, "scores": {label: p}}``.
        """
        self.eval()
        encoded = self.tokenizer.encode_texts(list(texts))
        results: list[dict[str, Any]] = [{}] * len(encoded)
        for indices, batch in self.encoded_batches(encoded, batch_size):
            probs = self(*self.inputs(batch)).float().softmax(-1)
            for i, row in zip(indices, probs.tolist(), strict=True):
                best = max(range(len(row)), key=row.__getitem__)
                results[i] = {
                    "label": self.labels[best],
                    "score": row[best],
                    "scores": dict(zip(self.labels, row, strict=True)),
                }
        return results

    def evaluate(self, file: str, batch_size: int = 64) -> dict[str, Any]:
        """Accuracy, macro-F1 and the per-class report on a ``sentence<TAB>label`` file."""
        rows = read_text_classification(file, labels=self.labels)
        predicted = self.classify([text for text, _ in rows], batch_size=batch_size)
        return classification_report(
            [label for _, label in rows], [p["label"] for p in predicted], self.labels
        )
