"""An encoder: strided 1-D convolution, then a bidirectional GRU (a :class:`NeuralModule`)."""

from __future__ import annotations

import torch
from torch import nn

from convai_core.types import (
    MEL,
    B,
    D,
    EncodedRepresentation,
    Lengths,
    NeuralType,
    SpectrogramType,
    T,
)


class ConvGRUEncoder(nn.Module):
    """Mel features -> encoded frames at half the frame rate.

    Args:
        feat_in: mel bins (the model passes its preprocessor's).
        hidden: output channels (the GRU runs hidden / 2 units each way).
        layers: GRU layers.

    Shapes:
        audio_signal: (B, feat_in, T), length: (B,) -> encoded: (B, hidden, ceil(T / 2)), (B,).
    """

    #: Time stride: the model turns output frames into seconds with it.
    stride = 2

    def __init__(self, feat_in: int, hidden: int = 128, layers: int = 1) -> None:
        super().__init__()
        if hidden % 2:
            raise ValueError(f"hidden must be even (two GRU directions); got {hidden}")
        self.feat_in, self.hidden = feat_in, hidden
        self.conv = nn.Conv1d(feat_in, hidden, kernel_size=5, stride=2, padding=2)
        self.gru = nn.GRU(hidden, hidden // 2, num_layers=layers, batch_first=True, bidirectional=True)

    @property
    def input_ports(self) -> dict[str, NeuralType]:
        return {
            "audio_signal": NeuralType((B, MEL.sized(self.feat_in), T), SpectrogramType()),
            "length": NeuralType((B,), Lengths()),
        }

    @property
    def output_ports(self) -> dict[str, NeuralType]:
        return {
            "encoded": NeuralType((B, D.sized(self.hidden), T), EncodedRepresentation()),
            "encoded_len": NeuralType((B,), Lengths()),
        }

    def forward(self, audio_signal: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.relu(self.conv(audio_signal))  # (B, F, T) -> (B, H, T')
        lengths = torch.div(length + 1, 2, rounding_mode="floor").clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(
            x.transpose(1, 2), lengths.cpu(), batch_first=True, enforce_sorted=False
        )  # (B, H, T') -> (B, T', H)
        out, _ = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[-1])
        return out.transpose(1, 2), lengths  # (B, T', H) -> (B, H, T')
