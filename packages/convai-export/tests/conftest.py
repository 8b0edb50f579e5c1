"""Fixtures: small domain-free models. The export formats are tested here on models of
convai-core alone; the packages of each domain test their own models with these formats."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
import torch
from torch import nn

from convai_core.errors import ExportError
from convai_core.export_spec import ExportSpec, generic_spec
from convai_core.models.base import ModelBase
from convai_core.models.mlp_classifier import MLPClassifier
from convai_core.types import Axis, AxisKind, Embedding, Lengths, LogProbs, NeuralType

CHANNELS, CLASSES = 6, 5


def _frames(channels: int) -> NeuralType:
    return NeuralType(
        (Axis(AxisKind.BATCH), Axis(AxisKind.TIME), Axis(AxisKind.CHANNEL, channels)), Embedding()
    )


def _lengths() -> NeuralType:
    return NeuralType((Axis(AxisKind.BATCH),), Lengths())


class Preprocessor(nn.Module):
    """A fixed feature map, ``log(1 + (x @ P)^2)``, zeroed past each item's length.

    Shapes:
        frames (B, T, C), length (B,) -> features (B, T, C), length (B,)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.register_buffer("projection", torch.randn(channels, channels, generator=generator))

    def forward(self, frames: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, ...]:
        valid = torch.arange(frames.shape[1])[None, :] < length[:, None]  # (B, T)
        features = torch.log1p((frames @ self.projection) ** 2)
        return features * valid[:, :, None], length


class Tagger(nn.Module):
    """Per-frame class log-probabilities: a 1-D convolution over time and a linear head.

    Shapes:
        features (B, T, C), length (B,) -> log_probs (B, T, K), length (B,)
    """

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, 16, kernel_size=3, padding=1)
        self.head = nn.Linear(16, classes)

    def forward(self, features: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = self.conv(features.transpose(1, 2)).relu()  # (B, T, C) -> (B, 16, T)
        logits = self.head(hidden.transpose(1, 2))  # (B, 16, T) -> (B, T, K)
        return torch.log_softmax(logits, dim=-1), length


class _TaggerOnly(nn.Module):
    """The tagger with the ports of the features: what is exported without the preprocessor."""

    def __init__(self, model: SequenceTagger) -> None:
        super().__init__()
        self.tagger = model.tagger
        self.cfg = {"name": f"{model.cfg.name}_features"}
        self.input_ports = {"features": _frames(CHANNELS), "length": _lengths()}
        self.output_ports = model.output_ports

    def forward(self, features: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.tagger(features, length)


class SequenceTagger(ModelBase):
    """A domain-free sequence model with a time axis, a lengths port and a preprocessor.

    Its ``export_spec`` takes ``preprocessor`` (like models whose feature extraction a serving
    engine cannot run): ``False`` exports the tagger alone, from features, and hands the
    preprocessor's projection to the target as an array.
    """

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__(cfg)
        self.preprocessor = Preprocessor(CHANNELS)
        self.tagger = Tagger(CHANNELS, CLASSES)

    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        return {"frames": _frames(CHANNELS), "length": _lengths()}

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        return {
            "log_probs": NeuralType(
                (Axis(AxisKind.BATCH), Axis(AxisKind.TIME), Axis(AxisKind.CLASS, CLASSES)),
                LogProbs(),
            ),
            "out_length": _lengths(),
        }

    def forward(self, frames: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.tagger(*self.preprocessor(frames, length))

    def export_spec(self, *, preprocessor: bool = True, **options: Any) -> ExportSpec:
        if options:
            raise ExportError(f"SequenceTagger export options are preprocessor; got {options}")
        if preprocessor:
            return generic_spec(self)
        spec = generic_spec(_TaggerOnly(self))
        return replace(spec, arrays={"projection": self.preprocessor.projection})


@pytest.fixture(scope="session")
def tagger() -> SequenceTagger:
    """An untrained :class:`SequenceTagger` (parity of exports needs no training)."""
    torch.manual_seed(0)
    return SequenceTagger({"name": "test/sequence_tagger"}).eval()


@pytest.fixture(scope="session")
def classifier() -> MLPClassifier:
    """The core's MLP classifier (registered, so it round-trips through archives)."""
    torch.manual_seed(0)
    return MLPClassifier(
        {"name": "core/mlp_classifier", "feature_dim": 6, "hidden_dim": 16, "num_classes": 3}
    ).eval()
