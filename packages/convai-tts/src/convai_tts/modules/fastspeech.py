"""Layers of the non-autoregressive acoustic model: feed-forward Transformer blocks, a duration
predictor, and the length regulator that repeats each symbol's vector for its frames.

The blocks follow FastSpeech / FastPitch: self-attention then a two-layer 1-D convolution,
each with a residual and LayerNorm, padding masked. The length regulator is written with a
cumulative sum and a gather (no Python loop over the batch), so it exports to ONNX with dynamic
lengths.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["DurationPredictor", "FFTStack", "regulate_length"]


class _FFTBlock(nn.Module):
    def __init__(self, d_model: int, heads: int, ff_dim: int, kernel: int, dropout: float):
        super().__init__()
        # no dropout on the attention weights: drawing a mask for every (frame, frame) pair costs
        # a quarter of a training step on a CPU; the residual branches keep their dropout
        self.attention = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.conv1 = nn.Conv1d(d_model, ff_dim, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(ff_dim, d_model, 1)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        attended, _ = self.attention(x, x, x, key_padding_mask=pad, need_weights=False)
        x = self.norm1(x + self.dropout(attended)) * keep
        hidden = torch.relu(self.conv1(x.transpose(1, 2)))
        hidden = self.conv2(self.dropout(hidden)).transpose(1, 2)
        return self.norm2(x + self.dropout(hidden)) * keep


def _positions(length: int, d_model: int, device: torch.device) -> torch.Tensor:
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    scale = torch.exp(
        torch.arange(0, d_model, 2, device=device, dtype=torch.float32)
        * (-math.log(10000.0) / d_model)
    )
    table = torch.zeros(length, d_model, device=device)
    table[:, 0::2] = torch.sin(position * scale)
    table[:, 1::2] = torch.cos(position * scale)
    return table


class FFTStack(nn.Module):
    """Sinusoidal positions + ``layers`` feed-forward Transformer blocks over (B, T, d_model)."""

    def __init__(
        self,
        d_model: int,
        layers: int,
        heads: int = 2,
        ff_dim: int = 768,
        kernel: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.blocks = nn.ModuleList(
            _FFTBlock(d_model, heads, ff_dim, kernel, dropout) for _ in range(layers)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x + _positions(x.shape[1], self.d_model, x.device).to(x.dtype))
        for block in self.blocks:
            x = block(x, pad)
        return x


class DurationPredictor(nn.Module):
    """Two 1-D convolutions (ReLU, LayerNorm, dropout) and a linear layer: one value per symbol
    (the log of its frame count plus one)."""

    def __init__(self, d_model: int, hidden: int = 256, kernel: int = 3, dropout: float = 0.1):
        super().__init__()
        self.conv1 = nn.Conv1d(d_model, hidden, kernel, padding=kernel // 2)
        self.norm1 = nn.LayerNorm(hidden)
        self.conv2 = nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2)
        self.norm2 = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        keep = (~pad).to(x.dtype)
        h = torch.relu(self.conv1(x.transpose(1, 2))).transpose(1, 2)
        h = self.dropout(self.norm1(h))
        h = torch.relu(self.conv2(h.transpose(1, 2))).transpose(1, 2)
        h = self.dropout(self.norm2(h))
        return self.out(h).squeeze(-1) * keep


def regulate_length(
    x: torch.Tensor, durations: torch.Tensor, max_frames: int | None = None, multiple: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat each symbol's vector ``durations`` times.

    Args:
        x: (B, T, D) symbol vectors.
        durations: (B, T) non-negative integer frame counts (0 at padding).
        max_frames: pad the output to this many frames (default: the longest utterance).
        multiple: round the padded frame count up to a multiple of this.

    Returns:
        (B, F, D) frame vectors (zeros past each utterance's end) and (B,) frame counts.
    """
    durations = durations.long()
    ends = torch.cumsum(durations, dim=1)  # (B, T)
    lengths = ends[:, -1]
    if max_frames is not None:
        frames = -(-int(max_frames) // multiple) * multiple
    else:
        # a data-dependent size: tell the exporter it is a real length of at least two frames
        # (a guard on "is it 1?" would otherwise stop the dynamo ONNX export)
        longest = torch.clamp(lengths.max(), min=2)
        if multiple > 1:
            # at least two groups; kept symbolic (no int()): the export reads a group count
            groups: Any = torch.clamp(
                torch.div(longest + multiple - 1, multiple, rounding_mode="floor"), min=2
            ).item()
            torch._check(groups >= 2)
            frames = groups * multiple
        else:
            frames = int(longest.item())
            torch._check(frames >= 2)
    grid = torch.arange(frames, device=x.device).unsqueeze(0)  # (1, F)
    # symbol index of each frame: how many symbols end at or before it
    index = (ends.unsqueeze(1) <= grid.unsqueeze(2)).sum(dim=2)  # (B, F)
    index = torch.clamp(index, max=x.shape[1] - 1)
    out = torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))
    valid = (grid < lengths.unsqueeze(1)).unsqueeze(-1).to(x.dtype)
    return out * valid, lengths
