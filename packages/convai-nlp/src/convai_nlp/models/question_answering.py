"""``nlp/question_answering``: extractive QA, the answer a span of the context (SQuAD)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from convai_core.errors import ConfigError
from convai_core.types import Axis, AxisKind, Logits, NeuralType
from convai_nlp.data.squad import (
    QAFeature,
    SquadQuestion,
    best_answers,
    qa_features,
    read_squad,
    squad_scores,
)
from convai_nlp.models.base import TransformerTaskModel

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader


class QuestionAnsweringModel(TransformerTaskModel):
    """A pretrained encoder and a span head (``nlp/span_head``) over question + context.

    Config keys: ``backbone``, ``tokenizer`` (optional), ``head``, ``max_seq_length``
    (tokens per window, question included), ``doc_stride`` (tokens between window starts in
    training and validation), ``inference_doc_stride`` (the same for :meth:`answer` and
    :meth:`evaluate`),
    ``max_query_length``, ``n_best``, ``max_answer_length`` (tokens), ``version_2`` (answer
    "" when the no-answer score beats the best span by ``null_score_diff_threshold``),
    ``optim``, and data sections ``train_ds`` / ``validation_ds`` / ``test_ds`` with ``file``
    (SQuAD JSON) and optionally ``max_questions``. Validation logs ``val_loss``,
    ``val_exact_match`` and ``val_f1`` (SQuAD's EM and F1, 0..100).
    """

    DEFAULT_DATASET = "nlp/squad"
    PAIRS = True

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        for key in ("doc_stride", "max_query_length", "n_best", "max_answer_length"):
            if int(self.cfg.get(key, 1)) < 1:
                raise ConfigError(f"model.{key} must be a positive number of tokens")
        self.doc_stride = int(self.cfg.get("doc_stride", 128))
        self.inference_doc_stride = int(self.cfg.get("inference_doc_stride") or self.doc_stride)
        if self.inference_doc_stride < 1:
            raise ConfigError("model.inference_doc_stride must be a positive number of tokens")
        self.max_query_length = int(self.cfg.get("max_query_length", 64))
        self.max_answer_length = int(self.cfg.get("max_answer_length", 30))
        if (
            self.max_query_length + self.tokenizer.pair_layout.num_special
            >= self.tokenizer.max_length
        ):
            raise ConfigError(
                f"model.max_query_length={self.max_query_length} leaves no room for the context "
                f"in {self.tokenizer.max_length}-token inputs; lower it or raise max_seq_length"
            )
        self.head = self.build_head("head", "nlp/span_head", 2)
        self._val_dataset: Any = None

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        axes = (Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN))
        return {
            "start_logits": NeuralType(axes, Logits()),
            "end_logits": NeuralType(axes, Logits()),
        }

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
        case_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shapes: input_ids, attention_mask, token_type_ids, case_ids (B, T) -> start (B, T),
        end (B, T) scores (padding at a large negative score)."""
        hidden = self.backbone(input_ids, attention_mask, case_ids, token_type_ids)
        start, end = self.head(hidden, attention_mask)
        return start, end

    # ------------------------------------------------------------------ data
    def dataset_context(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer,
            "doc_stride": self.doc_stride,
            "max_query_length": self.max_query_length,
            "max_answer_length": self.max_answer_length,
        }

    def build_dataloader(self, data_cfg: DictConfig, split: str) -> DataLoader[Any]:
        loader = super().build_dataloader(data_cfg, split)
        if split == "validation":
            self._val_dataset = loader.dataset
        return loader

    # ------------------------------------------------------------------ training
    def _loss(
        self, start: torch.Tensor, end: torch.Tensor, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        cross_entropy = torch.nn.functional.cross_entropy
        loss: torch.Tensor = (
            cross_entropy(start.float(), batch["start"]) + cross_entropy(end.float(), batch["end"])
        ) / 2
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        start, end = self(*self.inputs(batch))
        loss = self._loss(start, end, batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(start))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        start, end = self(*self.inputs(batch))
        loss = self._loss(start, end, batch)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=len(start))
        lengths = batch["attention_mask"].sum(-1).tolist()
        for row, (index, n) in enumerate(zip(batch["feature"].tolist(), lengths, strict=True)):
            self._val_outputs.append((index, start[row, :n].tolist(), end[row, :n].tolist()))

    def on_validation_epoch_end(self) -> None:
        outputs = self.gather_objects(self._val_outputs)
        dataset = self._val_dataset
        if not outputs or dataset is None:
            return
        scores = {index: (s, e) for index, s, e in outputs}
        report = self._score(dataset.questions, dataset.features, scores)
        self.log("val_exact_match", report["exact_match"], prog_bar=True)
        self.log("val_f1", report["f1"], prog_bar=True)

    # ------------------------------------------------------------------ inference
    def _predict(
        self,
        questions: Sequence[SquadQuestion],
        features: Sequence[QAFeature],
        scores: Mapping[int, tuple[Sequence[float], Sequence[float]]],
        n_best: int,
    ) -> list[dict[str, Any]]:
        by_question: dict[int, list[int]] = {}
        for i, feature in enumerate(features):
            if i in scores:
                by_question.setdefault(feature.question, []).append(i)
        version_2 = bool(self.cfg.get("version_2", False))
        threshold = float(self.cfg.get("null_score_diff_threshold", 0.0))
        results = []
        candidates = max(n_best, int(self.cfg.get("n_best", 20)))
        for q, question in enumerate(questions):
            windows = by_question.get(q, [])
            answers, null = best_answers(
                question.context,
                [features[i] for i in windows],
                [scores[i] for i in windows],
                n_best=candidates,
                max_answer_length=self.max_answer_length,
            )
            answers = answers[:n_best]
            nothing: dict[str, Any] = {"text": "", "start": -1, "end": -1, "score": null}
            best = answers[0] if answers else nothing
            if version_2 and (not answers or null - float(best["score"]) > threshold):
                best = nothing
            results.append({**best, "null_score": null, "n_best": answers})
        return results

    def _score(
        self,
        questions: Sequence[SquadQuestion],
        features: Sequence[QAFeature],
        scores: Mapping[int, tuple[Sequence[float], Sequence[float]]],
    ) -> dict[str, Any]:
        predicted = self._predict(
            questions, features, scores, n_best=int(self.cfg.get("n_best", 20))
        )
        return squad_scores(
            questions, {q.qid: p["text"] for q, p in zip(questions, predicted, strict=True)}
        )

    @torch.no_grad()
    def _window_scores(
        self, features: Sequence[QAFeature], batch_size: int
    ) -> dict[int, tuple[list[float], list[float]]]:
        from convai_nlp.tokenizers import Encoded

        self.eval()
        encoded = [
            Encoded(f.input_ids, [None] * len(f.input_ids), f.case_ids, f.token_type_ids)
            for f in features
        ]
        scores: dict[int, tuple[list[float], list[float]]] = {}
        for indices, batch in self.encoded_batches(encoded, batch_size):
            start, end = self(*self.inputs(batch))
            for row, i in enumerate(indices):
                n = len(features[i].input_ids)
                scores[i] = (start[row, :n].tolist(), end[row, :n].tolist())
        return scores

    def answer(
        self,
        questions: Sequence[str],
        contexts: Sequence[str] | str,
        *,
        n_best: int = 1,
        batch_size: int = 32,
        doc_stride: int | None = None,
    ) -> list[dict[str, Any]]:
        """Answer each question from its context (one context for all when a string is given).

        A long context is read in windows ``doc_stride`` tokens apart (default: the config's
        ``inference_doc_stride``).

        Returns:
            per question ``{"text", "start", "end", "score", "null_score", "n_best"}``: the
            answer, its character span in the context (-1 when there is none), its score, the
            no-answer score and the ``n_best`` best answers.
        """
        if isinstance(contexts, str):
            contexts = [contexts] * len(questions)
        if len(contexts) != len(questions):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
        items = []
        for i, (question, context) in enumerate(zip(questions, contexts, strict=True)):
            if not question.strip() or not context.strip():
                raise ValueError(f"question {i}: the question and its context must not be empty")
            items.append(SquadQuestion(str(i), question.strip(), context, ()))
        features = qa_features(
            self.tokenizer,
            items,
            doc_stride=doc_stride or self.inference_doc_stride,
            max_query_length=self.max_query_length,
            max_answer_length=self.max_answer_length,
        )
        return self._predict(items, features, self._window_scores(features, batch_size), n_best)

    def evaluate(
        self,
        file: str,
        batch_size: int = 32,
        max_questions: int | None = None,
        doc_stride: int | None = None,
    ) -> dict[str, Any]:
        """SQuAD's exact match and F1 (0..100) on a SQuAD-format file, read as :meth:`answer`
        reads (``doc_stride``: default the config's ``inference_doc_stride``)."""
        questions = read_squad(file)
        if max_questions is not None:
            questions = questions[:max_questions]
        features = qa_features(
            self.tokenizer,
            questions,
            doc_stride=doc_stride or self.inference_doc_stride,
            max_query_length=self.max_query_length,
            max_answer_length=self.max_answer_length,
        )
        return self._score(questions, features, self._window_scores(features, batch_size))

    def export_metadata(self) -> dict[str, Any]:
        return {
            **super().export_metadata(),
            "doc_stride": self.inference_doc_stride,
            "max_query_length": self.max_query_length,
            "max_answer_length": self.max_answer_length,
            "n_best": int(self.cfg.get("n_best", 20)),
            "version_2": bool(self.cfg.get("version_2", False)),
            "null_score_diff_threshold": float(self.cfg.get("null_score_diff_threshold", 0.0)),
        }
