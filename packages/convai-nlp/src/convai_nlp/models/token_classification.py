"""``nlp/token_classification``: one label per word (named entities, part of speech...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from convai_core.types import Axis, AxisKind, Logits, NeuralType
from convai_nlp.data.batching import IGNORE_INDEX
from convai_nlp.data.datasets import encode_pieces, infer_labels
from convai_nlp.data.readers import read_token_classification
from convai_nlp.metrics import entity_report
from convai_nlp.models.base import TransformerTaskModel

if TYPE_CHECKING:
    import pytorch_lightning as pl


def word_predictions(
    model: TransformerTaskModel,
    sentences: Sequence[Sequence[str]],
    heads: Sequence[torch.nn.Module],
    batch_size: int,
    sequence_heads: Sequence[torch.nn.Module] = (),
) -> tuple[list[list[list[list[float]]]], list[list[list[float]]]]:
    """Class probabilities of every word of every sentence for each token head, and of every
    sentence for each sequence head.

    Each word's prediction is read at its first sub-token. A sentence longer than the
    encoder's input is split into windows that overlap by half; a word takes the prediction of
    the window in which it lies farthest from an edge, and a sentence the mean over its windows.

    Returns:
        ``(words, sentences)``: ``words[h][s][w]`` probabilities of token head ``h`` for word
        ``w`` of sentence ``s``; ``sentences[h][s]`` those of sequence head ``h``.
    """
    pieces, done = encode_pieces(model.tokenizer, sentences, overlap=True)
    results: list[list[list[list[float]]]] = [
        [[[] for _ in words] for words in sentences] for _ in heads
    ]
    best_margin: list[list[int]] = [[-1] * len(words) for words in sentences]
    sums: list[list[list[float]]] = [[[] for _ in sentences] for _ in sequence_heads]
    windows = [0] * len(sentences)
    model.eval()
    with torch.no_grad():
        for indices, batch in model.encoded_batches(done, batch_size):
            hidden = model.encode(batch)
            probs = [head(hidden).float().softmax(-1).tolist() for head in heads]
            mask = batch["attention_mask"]
            whole = [h(hidden, mask).float().softmax(-1).tolist() for h in sequence_heads]
            for row, i in enumerate(indices):
                s, a, b = pieces[i]
                windows[s] += 1
                for h in range(len(sequence_heads)):
                    old = sums[h][s]
                    sums[h][s] = (
                        [x + y for x, y in zip(old, whole[h][row], strict=True)]
                        if old
                        else whole[h][row]
                    )
                previous = None
                for position, w in enumerate(done[i].word_ids):
                    if w is None or w == previous:
                        previous = w
                        continue
                    previous = w
                    margin = min(w, b - a - 1 - w)
                    if margin > best_margin[s][a + w]:
                        best_margin[s][a + w] = margin
                        for h in range(len(heads)):
                            results[h][s][a + w] = probs[h][row][position]
    for s, words in enumerate(sentences):  # words cut off an over-long window
        for w in range(len(words)):
            if best_margin[s][w] < 0:
                raise ValueError(f"sentence {s}: word {w} ({words[w]!r}) got no prediction")
    means = [[[x / windows[s] for x in row] for s, row in enumerate(head)] for head in sums]
    return results, means


class TokenClassificationModel(TransformerTaskModel):
    """A pretrained encoder and a token head (``nlp/token_classifier``), e.g. for NER.

    Config keys: ``backbone``, ``tokenizer`` (optional), ``labels`` (tags, ``O`` first; read
    from ``train_ds.labels_file`` when unset), ``head``, ``optim``, and data sections with
    ``text_file`` and ``labels_file`` (NeMo's format). Validation logs ``val_loss``,
    ``val_f1`` (entity level, seqeval) and ``val_token_accuracy``.
    """

    DEFAULT_DATASET = "nlp/token_classification"
    LABEL_KEYS = ("labels",)

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        self.labels = self.label_list(
            "labels",
            lambda: infer_labels(
                [
                    tags
                    for _, tags in read_token_classification(
                        self.train_file("text_file"), self.train_file("labels_file")
                    )
                ],
                first="O",
            ),
        )
        self.head = self.build_head("head", "nlp/token_classifier", len(self.labels))

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        axes = (Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN), Axis(AxisKind.CLASS, len(self.labels)))
        return {"logits": NeuralType(axes, Logits())}

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        case_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Shapes: input_ids (B, T), attention_mask (B, T), case_ids (B, T) -> logits (B, T, C)."""
        logits: torch.Tensor = self.head(self.backbone(input_ids, attention_mask, case_ids))
        return logits

    def _loss(self, logits: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        # (B, T, C) -> (B * T, C)
        return torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            tags.reshape(-1),
            ignore_index=IGNORE_INDEX,
        )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(self(*self.inputs(batch)), batch["tags"])
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["tags"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(*self.inputs(batch))
        loss = self._loss(logits, batch["tags"])
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=len(logits))
        predicted = logits.argmax(-1)
        for tags, best in zip(batch["tags"].tolist(), predicted.tolist(), strict=True):
            keep = [i for i, t in enumerate(tags) if t != IGNORE_INDEX]
            self._val_outputs.append(([tags[i] for i in keep], [best[i] for i in keep]))

    def on_validation_epoch_end(self) -> None:
        outputs = self.gather_objects(self._val_outputs)
        if not outputs:
            return
        truth = [[self.labels[t] for t in tags] for tags, _ in outputs]
        predicted = [[self.labels[p] for p in best] for _, best in outputs]
        report = entity_report(truth, predicted)
        words = sum(len(t) for t in truth)
        correct = sum(
            a == b for t, p in zip(truth, predicted, strict=True) for a, b in zip(t, p, strict=True)
        )
        self.log("val_f1", report["f1"], prog_bar=True)
        self.log("val_token_accuracy", correct / max(words, 1))

    def tag(
        self, sentences: Sequence[str | Sequence[str]], batch_size: int = 64
    ) -> list[list[tuple[str, str]]]:
        """``(word, label)`` pairs of each sentence (a string is split at whitespace)."""
        words = [s.split() if isinstance(s, str) else list(s) for s in sentences]
        (probs,), _ = word_predictions(self, words, [self.head], batch_size)
        return [
            [
                (w, self.labels[max(range(len(p)), key=p.__getitem__)])
                for w, p in zip(ws, ps, strict=True)
            ]
            for ws, ps in zip(words, probs, strict=True)
        ]

    def evaluate(self, text_file: str, labels_file: str, batch_size: int = 64) -> dict[str, Any]:
        """Entity-level P/R/F1 (overall and per type) and token accuracy on NeMo-format files."""
        rows = read_token_classification(text_file, labels_file, labels=self.labels)
        tagged = self.tag([words for words, _ in rows], batch_size=batch_size)
        truth = [tags for _, tags in rows]
        predicted = [[label for _, label in sentence] for sentence in tagged]
        report = entity_report(truth, predicted)
        words = sum(len(t) for t in truth)
        report["token_accuracy"] = sum(
            a == b for t, p in zip(truth, predicted, strict=True) for a, b in zip(t, p, strict=True)
        ) / max(words, 1)
        return report
