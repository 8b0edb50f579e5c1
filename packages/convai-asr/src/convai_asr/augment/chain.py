"""An ordered chain of augmentations built from the registry, each applied with its probability.

A model's ``augmentations`` config is a list of component nodes, each with an optional ``prob``::

    augmentations:
      - {name: asr/spec_augment, freq_masks: 2, freq_width: 27, time_masks: 10, time_width: 0.05}
      - {name: asr/spec_cutout, rect_masks: 5, prob: 0.5}

:func:`convai_core.components.build_list` builds the items; :class:`AugmentationChain` holds them
(as submodules, so ``model.train()`` / ``model.eval()`` reach them) and applies them in training
mode only. The ports of every item are checked against the signal the chain is put on when the
model composes its parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from convai_core.components import BuiltItem

__all__ = ["AugmentationChain", "skipped"]


def skipped(probability: float, generator: torch.Generator | None = None) -> bool:
    """Whether an item applied with ``probability`` sits out this draw (no draw when it is 1)."""
    return probability < 1.0 and float(torch.rand((), generator=generator)) >= probability


class _CallableModule(nn.Module):
    """Holds a plain callable augmentation (a plugin's function) as a module of the chain."""

    def __init__(self, function: Any) -> None:
        super().__init__()
        self.function = function

    @property
    def input_ports(self) -> Any:
        return getattr(self.function, "input_ports", {})

    @property
    def output_ports(self) -> Any:
        return getattr(self.function, "output_ports", {})

    def forward(self, signal: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return self.function(signal, length)


class AugmentationChain(nn.Module):
    """Apply augmentations in order during training, each with its own probability.

    The probability is drawn once per batch from torch's global random source (seeded by the
    trainer). In eval mode the chain returns its input.

    Args:
        items: built items (component, probability, registry key).

    Shapes:
        signal: (B, ..., T), length: (B,) -> (B, ..., T).
    """

    def __init__(self, items: Sequence[BuiltItem]) -> None:
        super().__init__()
        self.items = nn.ModuleList(
            item.component if isinstance(item.component, nn.Module) else _CallableModule(item.component)
            for item in items
        )
        self.probabilities = [float(item.probability) for item in items]
        self.keys = [item.key for item in items]

    def __len__(self) -> int:
        return len(self.items)

    def extra_repr(self) -> str:
        return ", ".join(f"{k} (p={p:g})" for k, p in zip(self.keys, self.probabilities, strict=True))

    def forward(self, signal: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return signal
        for augmentation, probability in zip(self.items, self.probabilities, strict=True):
            if skipped(probability):
                continue
            signal = augmentation(signal, length)
        return signal
