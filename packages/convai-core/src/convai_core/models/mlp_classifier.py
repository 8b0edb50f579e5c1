"""The core's smallest model: an MLP classifier, used by the demo and the trainer tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader

from convai_core.components import build
from convai_core.config_utils import to_plain
from convai_core.models.base import ModelBase
from convai_core.types import Axis, AxisKind, Embedding, Labels, LogProbs, NeuralType, typed

if TYPE_CHECKING:
    import pytorch_lightning as pl


class MLPClassifier(ModelBase):
    """A feed-forward classifier (Linear -> ReLU -> Dropout, repeated) over feature vectors.

    Config keys: ``feature_dim``, ``hidden_dim``, ``num_layers``, ``num_classes``, ``dropout``,
    ``optim``, and data sections ``train_ds`` / ``validation_ds`` holding ``dataset`` (a
    ``datasets`` registry key, default ``core/gaussian_blobs``), that builder's keys, and
    ``batch_size`` and ``shuffle``.
    """

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        c = self.cfg
        layers: list[nn.Module] = []
        width = int(c.feature_dim)
        for _ in range(int(c.get("num_layers", 2))):
            layers += [
                nn.Linear(width, int(c.hidden_dim)),
                nn.ReLU(),
                nn.Dropout(float(c.get("dropout", 0.0))),
            ]
            width = int(c.hidden_dim)
        self.encoder = nn.Sequential(*layers)
        self.head = nn.Linear(width, int(c.num_classes))

    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        return {
            "features": NeuralType(
                (Axis(AxisKind.BATCH), Axis(AxisKind.CHANNEL, int(self.cfg.feature_dim))),
                Embedding(),
            )
        }

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        return {
            "log_probs": NeuralType(
                (Axis(AxisKind.BATCH), Axis(AxisKind.CLASS, int(self.cfg.num_classes))), LogProbs()
            )
        }

    @property
    def label_port(self) -> NeuralType:
        return NeuralType((Axis(AxisKind.BATCH),), Labels())

    @typed
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Shapes: features (B, F) -> log-probabilities (B, C)."""
        return torch.log_softmax(self.head(self.encoder(features)), dim=-1)

    def build_dataloader(self, data_cfg: DictConfig, split: str) -> DataLoader[Any]:
        plain = dict(to_plain(data_cfg))
        batch_size = int(plain.pop("batch_size", 32))
        shuffle = bool(plain.pop("shuffle", split == "train"))
        dataset = build(
            "datasets",
            {"name": plain.pop("dataset", "core/gaussian_blobs"), **plain},
            path=f"model.{self.DATA_SECTIONS[split]}",
            sibling_keys=("batch_size", "shuffle", "dataset"),
        )
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=False)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        features, labels = batch
        loss = nn.functional.nll_loss(self(features), labels)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        features, labels = batch
        log_probs = self(features)
        loss = nn.functional.nll_loss(log_probs, labels)
        accuracy = (log_probs.argmax(dim=-1) == labels).float().mean()
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)
        self.log("val_accuracy", accuracy, prog_bar=True, sync_dist=True)
