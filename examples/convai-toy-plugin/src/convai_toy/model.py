"""A model and its dataset: tell a pure tone from white noise, on synthetic clips.

The model is a :class:`convai_core.models.ModelBase`; its data sections name their dataset by
registry key (``dataset: toy/tones``), built with :func:`convai_core.components.build`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from convai_core.components import build
from convai_core.config_utils import to_plain
from convai_core.models import ModelBase
from convai_core.types import AudioSignal, B, LogProbs, NeuralType, T
from convai_core.types.axes import CLASS


def tones_dataset(num_samples: int = 256, samples: int = 1600, seed: int = 0) -> TensorDataset:
    """Half the clips a sine at a random frequency, half white noise; label 1 for a tone.

    Shapes:
        audio: (N, samples) float32; labels: (N,) int64.
    """
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (num_samples,), generator=gen)
    t = torch.arange(samples) / 16000.0
    freq = 200.0 + 3000.0 * torch.rand(num_samples, 1, generator=gen)
    tones = torch.sin(2 * math.pi * freq * t)
    noise = torch.randn(num_samples, samples, generator=gen)
    audio = torch.where(labels[:, None] == 1, tones, noise) * 0.3
    return TensorDataset(audio, labels)


class ToneDetector(ModelBase):
    """Magnitude spectrum -> one linear layer -> tone / noise."""

    def __init__(self, cfg: Any, trainer: Any = None) -> None:
        super().__init__(cfg, trainer)
        self.n_fft = int(self.cfg.get("n_fft", 256))
        self.linear = nn.Linear(self.n_fft // 2 + 1, 2)

    @property
    def input_ports(self) -> dict[str, NeuralType]:
        return {"audio_signal": NeuralType((B, T), AudioSignal(sample_rate=16000))}

    @property
    def output_ports(self) -> dict[str, NeuralType]:
        return {"log_probs": NeuralType((B, CLASS.sized(2)), LogProbs())}

    def forward(self, audio_signal: torch.Tensor) -> torch.Tensor:
        frames = audio_signal.unfold(-1, self.n_fft, self.n_fft)  # (B, T) -> (B, N, n_fft)
        spectrum = torch.fft.rfft(frames, dim=-1).abs()  # (B, N, n_fft / 2 + 1)
        peakiness = spectrum.amax(dim=1) / (spectrum.mean(dim=(1, 2))[:, None] + 1e-6)
        return torch.log_softmax(self.linear(torch.log1p(peakiness)), dim=-1)

    def build_dataloader(self, data_cfg: Any, split: str) -> DataLoader[Any]:
        section = dict(to_plain(data_cfg))
        batch_size = int(section.pop("batch_size", 32))
        dataset = build(
            "datasets",
            {"name": section.pop("dataset", "toy/tones"), **section},
            path=f"model.{self.DATA_SECTIONS[split]}",
            sibling_keys=("batch_size", "dataset"),
        )
        return DataLoader(dataset, batch_size=batch_size, shuffle=split == "train")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        audio, labels = batch
        loss = nn.functional.nll_loss(self(audio), labels)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        audio, labels = batch
        log_probs = self(audio)
        self.log("val_loss", nn.functional.nll_loss(log_probs, labels), prog_bar=True)
        self.log("val_accuracy", (log_probs.argmax(-1) == labels).float().mean(), prog_bar=True)
