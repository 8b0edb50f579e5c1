"""The CTC output layer: encoder features to per-frame log-probabilities over tokens + blank."""

from __future__ import annotations

import torch
from torch import nn

from convai_core.types import (
    CLASS,
    B,
    D,
    EncodedRepresentation,
    LogProbs,
    NeuralType,
    T,
    typed,
)

__all__ = ["ConvCTCDecoder"]


class ConvCTCDecoder(nn.Module):
    """A 1x1 convolution from encoder features to ``num_classes + 1`` CTC classes.

    The blank is the *last* class (``blank_id == num_classes``), as in NeMo.

    Args:
        feat_in: encoder output channels.
        num_classes: vocabulary size, without the blank.

    Shapes:
        encoded: (B, feat_in, T) -> log_probs: (B, T, num_classes + 1).
    """

    def __init__(self, feat_in: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"ConvCTCDecoder needs num_classes >= 1; got {num_classes}.")
        self.feat_in = feat_in
        self.num_classes = num_classes
        self.projection = nn.Conv1d(feat_in, num_classes + 1, kernel_size=1, bias=True)
        nn.init.xavier_uniform_(self.projection.weight)
        assert self.projection.bias is not None  # bias=True
        nn.init.zeros_(self.projection.bias)

    @property
    def blank_id(self) -> int:
        """Index of the CTC blank: the last class."""
        return self.num_classes

    @property
    def input_ports(self) -> dict[str, NeuralType]:
        """``encoded`` (B, D=feat_in, T)."""
        return {"encoded": NeuralType((B, D.sized(self.feat_in), T), EncodedRepresentation())}

    @property
    def output_ports(self) -> dict[str, NeuralType]:
        """``log_probs`` (B, T, CLASS=num_classes + 1)."""
        return {"log_probs": NeuralType((B, T, CLASS.sized(self.num_classes + 1)), LogProbs())}

    @typed
    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        """Per-frame log-probabilities.

        Args:
            encoded: encoder features.

        Returns:
            Log-softmax over the classes, blank last.

        Shapes:
            encoded: (B, D, T) -> (B, T, num_classes + 1).
        """
        logits = self.projection(encoded)  # (B, D, T) -> (B, C + 1, T)
        logits = logits.transpose(1, 2)  # (B, C + 1, T) -> (B, T, C + 1)
        return torch.log_softmax(logits.float(), dim=-1)
