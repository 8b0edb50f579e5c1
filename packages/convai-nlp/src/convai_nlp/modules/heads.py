"""Task heads on an encoder's token vectors: one class per sequence or per token, or answer spans."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from convai_core.errors import ConfigError
from convai_core.types import Axis, AxisKind, EncodedRepresentation, Logits, Mask, NeuralType

POOLING = ("cls", "mean")
#: Score of padding positions in span heads (far below any real score, finite for fp16).
MASKED_SCORE = -1.0e4


def _mlp(hidden_size: int, num_classes: int, num_layers: int, dropout: float) -> nn.Sequential:
    """``num_layers - 1`` hidden layers (Linear, GELU, dropout) and the output layer."""
    if num_layers < 1:
        raise ConfigError(f"a head needs num_layers >= 1, got {num_layers}")
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    for _ in range(num_layers - 1):
        layers += [nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.Dropout(dropout)]
    layers.append(nn.Linear(hidden_size, num_classes))
    return nn.Sequential(*layers)


def _hidden_port(hidden_size: int) -> NeuralType:
    return NeuralType(
        (Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN), Axis(AxisKind.CHANNEL, hidden_size)),
        EncodedRepresentation(),
    )


def _mask_port() -> NeuralType:
    return NeuralType((Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN)), Mask(), optional=True)


class SequenceClassifier(nn.Module):
    """One class per sequence from the ``[CLS]`` vector or the mean of the token vectors.

    Args:
        hidden_size: encoder width (given by the model).
        num_classes: number of labels (given by the model).
        num_layers: layers of the MLP (1: a linear layer).
        dropout: dropout before each layer.
        pooling: ``cls`` or ``mean``.

    Shapes:
        hidden (B, T, H), attention_mask (B, T) -> logits (B, C).
    """

    def __init__(
        self,
        hidden_size: int,
        num_classes: int,
        num_layers: int = 1,
        dropout: float = 0.1,
        pooling: str = "cls",
    ) -> None:
        super().__init__()
        if pooling not in POOLING:
            raise ConfigError(f"pooling={pooling!r}: use one of {', '.join(POOLING)}")
        self.hidden_size, self.num_classes, self.pooling = hidden_size, num_classes, pooling
        self.mlp = _mlp(hidden_size, num_classes, int(num_layers), float(dropout))

    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        return {
            "hidden": _hidden_port(self.hidden_size),
            "attention_mask": _mask_port(),
        }

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        axes = (Axis(AxisKind.BATCH), Axis(AxisKind.CLASS, self.num_classes))
        return {"logits": NeuralType(axes, Logits())}

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T) -> (B, T, 1)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        logits: torch.Tensor = self.mlp(pooled)
        return logits


class TokenClassifier(nn.Module):
    """One class per token.

    Args:
        hidden_size: encoder width (given by the model).
        num_classes: number of labels (given by the model).
        num_layers: layers of the MLP (1: a linear layer).
        dropout: dropout before each layer.

    Shapes:
        hidden (B, T, H) -> logits (B, T, C).
    """

    def __init__(
        self, hidden_size: int, num_classes: int, num_layers: int = 1, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.hidden_size, self.num_classes = hidden_size, num_classes
        self.mlp = _mlp(hidden_size, num_classes, int(num_layers), float(dropout))

    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        return {"hidden": _hidden_port(self.hidden_size)}

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        axes = (Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN), Axis(AxisKind.CLASS, self.num_classes))
        return {"logits": NeuralType(axes, Logits())}

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.mlp(hidden)
        return logits


class SpanHead(nn.Module):
    """Start and end scores of an answer span at every token (extractive QA).

    Args:
        hidden_size: encoder width (given by the model).
        num_layers: layers of the MLP (1: a linear layer to the two scores).
        dropout: dropout before each layer.

    Shapes:
        hidden (B, T, H), attention_mask (B, T) -> start_logits (B, T), end_logits (B, T);
        padding positions score :data:`MASKED_SCORE`.
    """

    def __init__(self, hidden_size: int, num_layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.mlp = _mlp(hidden_size, 2, int(num_layers), float(dropout))

    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        return {
            "hidden": _hidden_port(self.hidden_size),
            "attention_mask": _mask_port(),
        }

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        axes = (Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN))
        return {
            "start_logits": NeuralType(axes, Logits()),
            "end_logits": NeuralType(axes, Logits()),
        }

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.mlp(hidden).float()  # (B, T, H) -> (B, T, 2)
        scores = scores.masked_fill(attention_mask.unsqueeze(-1) == 0, MASKED_SCORE)
        return scores[..., 0], scores[..., 1]
