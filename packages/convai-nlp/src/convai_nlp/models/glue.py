"""``nlp/glue``: the GLUE and SuperGLUE sentence and sentence-pair tasks on a pretrained encoder.

One model class serves every task of :data:`convai_nlp.data.glue.TASKS`: ``model.task`` picks
the file format, the label set (or regression, STS-B), and the official metrics. Pair tasks
encode ``[CLS] A [SEP] B [SEP]`` with segment ids; single-sentence tasks ``[CLS] A [SEP]``.
The head is ``nlp/sequence_classifier`` with one output per label, or one score (trained with
mean squared error) for regression.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from convai_core.errors import ConfigError
from convai_core.types import Axis, AxisKind, Logits, NeuralType
from convai_nlp.data.glue import GlueExample, encode_examples, glue_task, read_glue
from convai_nlp.metrics import glue_scores
from convai_nlp.models.base import TransformerTaskModel

if TYPE_CHECKING:
    import pytorch_lightning as pl


class GlueModel(TransformerTaskModel):
    """A pretrained encoder and a sequence head for one GLUE/SuperGLUE task.

    Config keys: ``task`` (``cola``, ``sst-2``, ``mrpc``, ``sts-b``, ``qqp``, ``mnli``,
    ``qnli``, ``rte``, ``wnli``, ``boolq``), ``backbone``, ``tokenizer`` (optional), ``head``,
    ``max_seq_length``, ``optim``, and data sections ``train_ds`` / ``validation_ds`` with
    ``file`` (the task's file in its distributed format) and optionally ``max_examples``.
    Validation logs ``val_loss``, ``val_<metric>`` for each official metric of the task and
    ``val_score`` (their mean, GLUE's headline number for the task).
    """

    DEFAULT_DATASET = "nlp/glue"
    PAIRS = True

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        if not self.cfg.get("task"):
            raise ConfigError("model.task is missing: name a GLUE task, e.g. model.task=qnli")
        self.spec = glue_task(str(self.cfg.task))
        self.cfg.task = self.spec.name
        self.labels: list[str] = list(self.spec.labels or [])
        self.regression = self.spec.labels is None
        self.head = self.build_head(
            "head", "nlp/sequence_classifier", 1 if self.regression else len(self.labels)
        )

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        axes = (Axis(AxisKind.BATCH), Axis(AxisKind.CLASS, max(1, len(self.labels))))
        return {"logits": NeuralType(axes, Logits())}

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
        case_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Shapes: input_ids, attention_mask, token_type_ids, case_ids (B, T) -> logits (B, C)
        (C = 1 for regression)."""
        hidden = self.backbone(input_ids, attention_mask, case_ids, token_type_ids)
        logits: torch.Tensor = self.head(hidden, attention_mask)
        return logits

    def dataset_context(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer, "task": self.spec.name, "labels": self.labels}

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.regression:
            return torch.nn.functional.mse_loss(logits.float().squeeze(-1), target.float())
        return torch.nn.functional.cross_entropy(logits.float(), target)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(*self.inputs(batch))
        loss = self._loss(logits, batch["label"])
        self.log("train_loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def _decode(self, logits: torch.Tensor) -> list[str | float]:
        if self.regression:
            return [float(v) for v in logits.float().squeeze(-1).tolist()]
        return [self.labels[i] for i in logits.argmax(-1).tolist()]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(*self.inputs(batch))
        loss = self._loss(logits, batch["label"])
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=len(logits))
        truth: list[str | float] = (
            [float(v) for v in batch["label"].tolist()]
            if self.regression
            else [self.labels[i] for i in batch["label"].tolist()]
        )
        rows = zip(batch["index"].tolist(), truth, self._decode(logits), strict=True)
        self._val_outputs.extend(rows)

    def on_validation_epoch_end(self) -> None:
        # each item once: DDP ranks may repeat items to even out their batches
        unique = {index: (t, p) for index, t, p in self.gather_objects(self._val_outputs)}
        pairs = [unique[i] for i in sorted(unique)]
        if not pairs:
            return
        scores = glue_scores(self.spec.name, [t for t, _ in pairs], [p for _, p in pairs])
        for name, value in scores.items():
            self.log(f"val_{name}", value, prog_bar=name == "score")

    @torch.no_grad()
    def predict(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        batch_size: int = 64,
    ) -> list[dict[str, Any]]:
        """Label (or score, STS-B) each text, or each ``(texts[i], pairs[i])`` pair.

        Returns:
            per input ``{"label", "score", "scores"}`` (class probabilities) for classification,
            ``{"score"}`` for regression.
        """
        if self.spec.pair and pairs is None:
            raise ValueError(f"{self.spec.name} is a sentence-pair task: pass the second texts too")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} first texts but {len(pairs)} second texts")
        examples = [
            GlueExample(text, None if pairs is None else pairs[i], None)
            for i, text in enumerate(texts)
        ]
        return self._predict(examples, batch_size)

    def _predict(self, examples: Sequence[GlueExample], batch_size: int) -> list[dict[str, Any]]:
        self.eval()
        encoded = encode_examples(self.tokenizer, examples)
        results: list[dict[str, Any]] = [{}] * len(encoded)
        for indices, batch in self.encoded_batches(encoded, batch_size):
            logits = self(*self.inputs(batch)).float()
            if self.regression:
                for i, value in zip(indices, logits.squeeze(-1).tolist(), strict=True):
                    results[i] = {"score": value}
                continue
            for i, row in zip(indices, logits.softmax(-1).tolist(), strict=True):
                best = max(range(len(row)), key=row.__getitem__)
                results[i] = {
                    "label": self.labels[best],
                    "score": row[best],
                    "scores": dict(zip(self.labels, row, strict=True)),
                }
        return results

    def evaluate(
        self, file: str, batch_size: int = 64, max_examples: int | None = None
    ) -> dict[str, Any]:
        """The task's official metrics on a labelled file, with ``count``."""
        examples = read_glue(self.spec.name, file)
        if max_examples is not None:
            examples = examples[:max_examples]
        if any(e.label is None for e in examples):
            raise ConfigError(f"{file} has no labels (a GLUE test file?); evaluate on a dev file")
        predicted = self._predict(examples, batch_size)
        key = "score" if self.regression else "label"
        truth = [e.label for e in examples if e.label is not None]
        scores: dict[str, Any] = glue_scores(self.spec.name, truth, [p[key] for p in predicted])
        if not self.regression:
            counts = {label: sum(1 for t in truth if str(t) == label) for label in self.labels}
            scores["majority_baseline"] = max(counts.values()) / len(truth)
        scores["count"] = len(examples)
        return scores

    def export_metadata(self) -> dict[str, Any]:
        return {**super().export_metadata(), "glue_task": self.spec.name, "labels": self.labels}
