"""An augmentation on waveforms: each utterance louder or quieter by a random gain.

Its input port is an audio signal, so an ASR model applies it before its preprocessor.
"""

from __future__ import annotations

import torch
from torch import nn

from convai_core.types import AudioSignal, B, Lengths, NeuralType, T


class RandomGain(nn.Module):
    """Scale each item by a gain drawn uniformly in [min_db, max_db] decibels (training only).

    Shapes:
        audio_signal: (B, T), length: (B,) -> (B, T).
    """

    def __init__(self, min_db: float = -6.0, max_db: float = 6.0) -> None:
        super().__init__()
        if min_db > max_db:
            raise ValueError(f"min_db ({min_db}) must not exceed max_db ({max_db})")
        self.min_db, self.max_db = min_db, max_db

    @property
    def input_ports(self) -> dict[str, NeuralType]:
        return {
            "audio_signal": NeuralType((B, T), AudioSignal()),
            "length": NeuralType((B,), Lengths()),
        }

    @property
    def output_ports(self) -> dict[str, NeuralType]:
        return {"augmented_signal": NeuralType((B, T), AudioSignal())}

    def forward(self, audio_signal: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return audio_signal
        db = torch.empty(audio_signal.shape[0], 1, device=audio_signal.device)
        db.uniform_(self.min_db, self.max_db)
        return audio_signal * torch.pow(10.0, db / 20.0)
