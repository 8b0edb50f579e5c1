"""``nlp/intent_slot``: joint intent classification and slot filling (NeMo's data format).

One encoder, two heads: the intent of the utterance from its ``[CLS]`` vector and a slot tag
(BIO) for every word. Labels come from NeMo's ``dict.intents.csv`` and ``dict.slots.csv``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from convai_core.errors import ConfigError
from convai_core.types import Axis, AxisKind, Logits, NeuralType
from convai_nlp.data.batching import IGNORE_INDEX
from convai_nlp.data.readers import read_intent_slot, read_label_dict
from convai_nlp.metrics import classification_report, entity_report
from convai_nlp.models.base import TransformerTaskModel
from convai_nlp.models.token_classification import word_predictions

if TYPE_CHECKING:
    import pytorch_lightning as pl


def _argmax(row: Sequence[float]) -> int:
    return max(range(len(row)), key=row.__getitem__)


class IntentSlotModel(TransformerTaskModel):
    """An encoder with an intent head (``nlp/sequence_classifier``) and a slot head
    (``nlp/token_classifier``).

    Config keys: ``backbone``, ``intent_labels`` / ``slot_labels`` (or ``intent_dict`` /
    ``slot_dict``: paths of ``dict.intents.csv`` / ``dict.slots.csv`` to read them from),
    ``intent_head``, ``slot_head``, ``slot_loss_weight`` (the loss is
    ``(1 - w) * intent + w * slot``), ``optim``, and data sections with ``file``
    (``<split>.tsv``) and ``slots_file`` (``<split>_slots.tsv``). Validation logs ``val_loss``,
    ``val_intent_accuracy`` and ``val_slot_f1`` (entity level).
    """

    DEFAULT_DATASET = "nlp/intent_slot"
    LABEL_KEYS = ("intent_labels", "slot_labels")

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        self.intent_labels = self.label_list("intent_labels", lambda: self._dict("intent_dict"))
        self.slot_labels = self.label_list("slot_labels", lambda: self._dict("slot_dict"))
        self.slot_loss_weight = float(self.cfg.get("slot_loss_weight", 0.5))
        if not 0.0 <= self.slot_loss_weight <= 1.0:
            raise ConfigError(f"model.slot_loss_weight={self.slot_loss_weight} must be in [0, 1]")
        self.intent_head = self.build_head(
            "intent_head", "nlp/sequence_classifier", len(self.intent_labels)
        )
        self.slot_head = self.build_head("slot_head", "nlp/token_classifier", len(self.slot_labels))

    def _dict(self, key: str) -> list[str]:
        path = self.cfg.get(key)
        if not path:
            raise ConfigError(
                f"model.{key} is needed (the path of NeMo's dict.{'intents' if 'intent' in key else 'slots'}.csv), "
                f"or give the labels as model.{key.replace('dict', 'labels')}."
            )
        return read_label_dict(str(path))

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        batch, token = Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN)
        return {
            "intent_logits": NeuralType(
                (batch, Axis(AxisKind.CLASS, len(self.intent_labels))), Logits()
            ),
            "slot_logits": NeuralType(
                (batch, token, Axis(AxisKind.CLASS, len(self.slot_labels))), Logits()
            ),
        }

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        case_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shapes: input_ids (B, T), attention_mask (B, T), case_ids (B, T) -> (B, I), (B, T, S)."""
        hidden = self.backbone(input_ids, attention_mask, case_ids)
        return self.intent_head(hidden, attention_mask), self.slot_head(hidden)

    def _loss(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        intent, slots = self(*self.inputs(batch))
        intent_loss = torch.nn.functional.cross_entropy(intent.float(), batch["intent"])
        # (B, T, S) -> (B * T, S)
        slot_loss = torch.nn.functional.cross_entropy(
            slots.float().reshape(-1, slots.shape[-1]),
            batch["slots"].reshape(-1),
            ignore_index=IGNORE_INDEX,
        )
        w = self.slot_loss_weight
        return (1 - w) * intent_loss + w * slot_loss, intent, slots

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["intent"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, intent, slots = self._loss(batch)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=len(intent))
        best = slots.argmax(-1).tolist()
        for row, tags in enumerate(batch["slots"].tolist()):
            keep = [i for i, t in enumerate(tags) if t != IGNORE_INDEX]
            self._val_outputs.append(
                (
                    int(batch["intent"][row]),
                    int(intent[row].argmax()),
                    [tags[i] for i in keep],
                    [best[row][i] for i in keep],
                )
            )

    def on_validation_epoch_end(self) -> None:
        outputs = self.gather_objects(self._val_outputs)
        if not outputs:
            return
        scores = self._scores(
            [self.intent_labels[o[0]] for o in outputs],
            [self.intent_labels[o[1]] for o in outputs],
            [[self.slot_labels[i] for i in o[2]] for o in outputs],
            [[self.slot_labels[i] for i in o[3]] for o in outputs],
        )
        self.log("val_intent_accuracy", scores["intent_accuracy"], prog_bar=True)
        self.log("val_slot_f1", scores["slot_f1"], prog_bar=True)

    def _scores(
        self,
        intent_true: Sequence[str],
        intent_pred: Sequence[str],
        slots_true: Sequence[Sequence[str]],
        slots_pred: Sequence[Sequence[str]],
    ) -> dict[str, Any]:
        intents = classification_report(intent_true, intent_pred, self.intent_labels)
        slots = entity_report(slots_true, slots_pred)
        return {
            "intent_accuracy": intents["accuracy"],
            "intent_macro_f1": intents["macro_f1"],
            "slot_f1": slots["f1"],
            "slot_precision": slots["precision"],
            "slot_recall": slots["recall"],
            "intents": intents,
            "slots": slots,
        }

    def predict(
        self, texts: Sequence[str | Sequence[str]], batch_size: int = 64
    ) -> list[dict[str, Any]]:
        """Intent and slots of each utterance.

        Returns:
            per utterance ``{"intent", "intent_score", "words", "slots"}`` (one BIO tag a word).
        """
        sentences = [t.split() if isinstance(t, str) else list(t) for t in texts]
        (slot_probs,), (intent_probs,) = word_predictions(
            self, sentences, [self.slot_head], batch_size, sequence_heads=[self.intent_head]
        )
        results = []
        for words, intent, slots in zip(sentences, intent_probs, slot_probs, strict=True):
            best = _argmax(intent)
            results.append(
                {
                    "intent": self.intent_labels[best],
                    "intent_score": intent[best],
                    "words": words,
                    "slots": [self.slot_labels[_argmax(p)] for p in slots],
                }
            )
        return results

    def evaluate(self, file: str, slots_file: str, batch_size: int = 64) -> dict[str, Any]:
        """Intent accuracy and slot entity P/R/F1 on NeMo-format files."""
        rows = read_intent_slot(
            file, slots_file, num_intents=len(self.intent_labels), num_slots=len(self.slot_labels)
        )
        predicted = self.predict([words for words, _, _ in rows], batch_size=batch_size)
        return self._scores(
            [self.intent_labels[i] for _, i, _ in rows],
            [p["intent"] for p in predicted],
            [[self.slot_labels[s] for s in slots] for _, _, slots in rows],
            [p["slots"] for p in predicted],
        )
