"""``nlp/punctuation_capitalization``: restore punctuation and case of lower-case text.

Two token heads on one encoder: the mark that follows each word (``O``, ``,``, ``.``, ``?``...)
and whether the word starts with a capital (``U``/``O``). Data are NeMo's ``text.txt`` +
``labels.txt`` with two-character labels (``.U``: a capitalized word followed by a period).
Inference takes raw text of any length (split into overlapping windows), e.g. an ASR transcript.

Marks are rarer than "no mark", and a model trained with cross-entropy under-predicts them
(commas most). With ``calibrate: true`` each validation also chooses one logit offset per mark
that maximizes the marks' mean F1 on the validation data (:func:`fit_offsets`); the offsets are
a buffer of the model (saved with each checkpoint, added to the punctuation logits at inference
and in the exported graph) and are never used by the training loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from convai_core.types import Axis, AxisKind, Logits, NeuralType
from convai_nlp.data.batching import IGNORE_INDEX
from convai_nlp.data.datasets import infer_labels
from convai_nlp.data.readers import read_token_classification
from convai_nlp.metrics import classification_report
from convai_nlp.models.base import TransformerTaskModel
from convai_nlp.models.token_classification import word_predictions

if TYPE_CHECKING:
    import pytorch_lightning as pl

#: Marks after which the next word starts a sentence.
SENTENCE_ENDS = (".", "?", "!")
#: Characters removed from words before the model sees them (the model puts marks back).
STRIP = "\"'()[]{},.?!;:“”‘’«»"


#: Offsets tried for each mark by :func:`fit_offsets` (logit units, 0 included).
OFFSET_GRID = tuple(x / 4 for x in range(-8, 17))


def _best(probs: Sequence[float]) -> int:
    return max(range(len(probs)), key=probs.__getitem__)


def _mean_f1(predicted: torch.Tensor, truth: torch.Tensor, classes: Sequence[int]) -> float:
    scores = []
    for c in classes:
        tp = int(((predicted == c) & (truth == c)).sum())
        guessed, actual = int((predicted == c).sum()), int((truth == c).sum())
        scores.append(2 * tp / (guessed + actual) if guessed + actual else 0.0)
    return sum(scores) / max(len(scores), 1)


def fit_offsets(
    log_probs: torch.Tensor, truth: torch.Tensor, none: int = 0, rounds: int = 2
) -> tuple[torch.Tensor, float]:
    """Per-class logit offsets (class ``none``, "no mark", fixed at 0) that maximize the mean F1
    of the other classes when each token takes ``argmax(log_probs + offsets)``.

    Coordinate ascent over :data:`OFFSET_GRID`, ``rounds`` passes over the classes; an offset
    moves only when the mean F1 strictly improves (all zeros when nothing does).

    Shapes: log_probs (N, C), truth (N,) -> offsets (C,), and the mean F1 they reach.
    """
    offsets = torch.zeros(log_probs.shape[-1])
    classes = [c for c in range(log_probs.shape[-1]) if c != none]
    best = _mean_f1((log_probs + offsets).argmax(-1), truth, classes)
    for _ in range(rounds):
        for c in classes:
            for value in OFFSET_GRID:
                trial = offsets.clone()
                trial[c] = value
                score = _mean_f1((log_probs + trial).argmax(-1), truth, classes)
                if score > best + 1e-12:
                    best, offsets = score, trial
    return offsets, best


def _offsets_default(
    module: PunctuationCapitalizationModel, state: dict[str, Any], prefix: str, *args: Any
) -> None:
    """Archives written before the offsets existed load as uncalibrated (zero offsets)."""
    state.setdefault(prefix + "punct_offsets", torch.zeros(len(module.punct_labels)))


class _Shifted(torch.nn.Module):
    """A head whose logits get fixed per-class offsets (the calibrated punctuation head)."""

    def __init__(self, head: torch.nn.Module, offsets: torch.Tensor):
        super().__init__()
        self.head = head
        self.offsets = offsets

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(hidden)
        return out + self.offsets.to(out.dtype)


class PunctuationCapitalizationModel(TransformerTaskModel):
    """An encoder with a punctuation head and a capitalization head.

    Config keys: ``backbone``, ``punct_labels`` (``O`` first; read from the training labels
    when unset), ``capit_labels`` (default ``[O, U]``), ``punct_head``, ``capit_head``,
    ``calibrate`` (fit the marks' logit offsets at each validation; default true), ``optim``,
    and data sections with ``text_file`` and ``labels_file``. Validation logs ``val_loss``,
    ``val_punct_f1`` (macro-F1 of the marks, ``O`` left out, with the offsets just fitted on
    that validation data), ``val_punct_f1_raw`` (the same without offsets) and
    ``val_capit_f1`` (F1 of ``U``).
    """

    DEFAULT_DATASET = "nlp/punctuation_capitalization"
    LABEL_KEYS = ("punct_labels", "capit_labels")
    punct_offsets: torch.Tensor  # a buffer: the calibrated offsets of the punctuation logits

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        self.punct_labels = self.label_list(
            "punct_labels",
            lambda: infer_labels([[t[0] for t in tags] for _, tags in self._train_rows()], "O"),
        )
        self.capit_labels = self.label_list("capit_labels", lambda: ["O", "U"])
        self.punct_head = self.build_head(
            "punct_head", "nlp/token_classifier", len(self.punct_labels)
        )
        self.capit_head = self.build_head(
            "capit_head", "nlp/token_classifier", len(self.capit_labels)
        )
        self.calibrate = bool(self.cfg.get("calibrate", True))
        self.register_buffer("punct_offsets", torch.zeros(len(self.punct_labels)))
        self.register_load_state_dict_pre_hook(_offsets_default)

    def _train_rows(self) -> list[tuple[list[str], list[str]]]:
        return read_token_classification(
            self.train_file("text_file"), self.train_file("labels_file")
        )

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        def logits(n: int) -> NeuralType:
            return NeuralType(
                (Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN), Axis(AxisKind.CLASS, n)), Logits()
            )

        return {
            "punct_logits": logits(len(self.punct_labels)),
            "capit_logits": logits(len(self.capit_labels)),
        }

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        case_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shapes: input_ids (B, T), attention_mask (B, T), case_ids (B, T) -> (B, T, P), (B, T, 2).

        The punctuation logits include the calibrated offsets (zero until a validation fits
        them); training uses :meth:`_raw`, without them."""
        punct, capit = self._raw(input_ids, attention_mask, case_ids)
        return punct + self.punct_offsets.to(punct.dtype), capit

    def _raw(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        case_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.backbone(input_ids, attention_mask, case_ids)
        return self.punct_head(hidden), self.capit_head(hidden)

    @staticmethod
    def _ce(logits: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        # (B, T, C) -> (B * T, C)
        return torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            tags.reshape(-1),
            ignore_index=IGNORE_INDEX,
        )

    def _losses(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        punct, capit = self._raw(*self.inputs(batch))
        return self._ce(punct, batch["punct"]) + self._ce(capit, batch["capit"]), punct, capit

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._losses(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["punct"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, punct, capit = self._losses(batch)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=len(punct))
        keep = batch["punct"] != IGNORE_INDEX
        self._val_outputs.append(
            (
                batch["punct"][keep].cpu(),
                punct.float().log_softmax(-1)[keep].cpu(),  # raw: the offsets are fitted on these
                batch["capit"][keep].tolist(),
                capit.argmax(-1)[keep].tolist(),
            )
        )

    def on_validation_epoch_end(self) -> None:
        outputs = self.gather_objects(self._val_outputs)
        if not outputs:
            return
        truth = torch.cat([o[0] for o in outputs])
        log_probs = torch.cat([o[1] for o in outputs])
        raw = self._scores(
            [self.punct_labels[i] for i in truth.tolist()],
            [self.punct_labels[i] for i in log_probs.argmax(-1).tolist()],
            [self.capit_labels[i] for o in outputs for i in o[2]],
            [self.capit_labels[i] for o in outputs for i in o[3]],
        )
        punct_f1 = raw["punct_f1"]
        sanity = self._trainer is not None and self._trainer.sanity_checking
        if self.calibrate and "O" in self.punct_labels and not sanity:
            offsets, punct_f1 = fit_offsets(log_probs, truth, none=self.punct_labels.index("O"))
            self.punct_offsets.copy_(offsets)
        self.log("val_punct_f1", punct_f1, prog_bar=True)
        self.log("val_punct_f1_raw", raw["punct_f1"])
        self.log("val_capit_f1", raw["capitalization_f1"], prog_bar=True)

    def _scores(
        self,
        punct_true: Sequence[str],
        punct_pred: Sequence[str],
        capit_true: Sequence[str],
        capit_pred: Sequence[str],
    ) -> dict[str, Any]:
        punct = classification_report(punct_true, punct_pred, self.punct_labels)
        capit = classification_report(capit_true, capit_pred, self.capit_labels)
        marks = [m for m in self.punct_labels if m != "O"]
        result: dict[str, Any] = {
            "punctuation": punct,
            "capitalization": capit,
            "punct_f1": sum(punct["per_class"][m]["f1"] for m in marks) / max(len(marks), 1),
            "capitalization_f1": capit["per_class"].get("U", {}).get("f1", 0.0),
        }
        for mark, name in ((".", "period_f1"), (",", "comma_f1"), ("?", "question_f1")):
            if mark in punct["per_class"]:
                result[name] = punct["per_class"][mark]["f1"]
        return result

    def predict_labels(
        self, sentences: Sequence[Sequence[str]], batch_size: int = 64
    ) -> list[list[tuple[str, str]]]:
        """``(punctuation, capitalization)`` labels of every word of every sentence."""
        shifted = _Shifted(self.punct_head, self.punct_offsets)
        (punct, capit), _ = word_predictions(
            self, sentences, [shifted, self.capit_head], batch_size
        )
        return [
            [
                (self.punct_labels[_best(p)], self.capit_labels[_best(c)])
                for p, c in zip(ps, cs, strict=True)
            ]
            for ps, cs in zip(punct, capit, strict=True)
        ]

    def add_punctuation_capitalization(
        self, texts: Sequence[str], batch_size: int = 64
    ) -> list[str]:
        """Punctuate and case each text (marks already in the text are replaced).

        The two heads decide independently; the text is then made consistent: the first word
        and every word after a sentence end (``.``, ``?``, ``!``) start with a capital.
        """
        sentences = []
        for text in texts:
            words = [w.strip(STRIP).lower() for w in text.split()]
            sentences.append([w for w in words if w])
        labelled = self.predict_labels(sentences, batch_size=batch_size)
        results = []
        for words, labels in zip(sentences, labelled, strict=True):
            out = []
            starts_sentence = True
            for word, (mark, case) in zip(words, labels, strict=True):
                if case == "U" or starts_sentence:
                    word = word[:1].upper() + word[1:]
                out.append(word + ("" if mark == "O" else mark))
                starts_sentence = mark in SENTENCE_ENDS
            results.append(" ".join(out))
        return results

    def process_texts(self, texts: Sequence[str]) -> list[str]:
        """The text-postprocessor capability (``convai transcribe --postprocess``)."""
        return self.add_punctuation_capitalization(texts)

    def evaluate(self, text_file: str, labels_file: str, batch_size: int = 64) -> dict[str, Any]:
        """Per-label P/R/F1 of both heads and ``period_f1``, ``comma_f1``, ``question_f1``,
        ``capitalization_f1`` on NeMo-format files."""
        combined = [p + c for p in self.punct_labels for c in self.capit_labels]
        rows = read_token_classification(text_file, labels_file, labels=combined)
        predicted = self.predict_labels([words for words, _ in rows], batch_size=batch_size)
        truth = [label for _, tags in rows for label in tags]
        flat = [pair for sentence in predicted for pair in sentence]
        return self._scores(
            [t[0] for t in truth], [p for p, _ in flat], [t[1] for t in truth], [c for _, c in flat]
        )
