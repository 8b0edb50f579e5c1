"""Spectrogram augmentations: SpecAugment (frequency and time bands) and SpecCutout (rectangles).

Both act only in training mode (``module.train()``); in eval mode they return their input
unchanged. Masks are drawn per batch item and stay inside each item's valid frames, so padding
is never touched. Pass a ``torch.Generator`` to ``forward`` (or set ``module.generator``) for a
reproducible draw; by default torch's global random source is used.
"""

from __future__ import annotations

import torch
from torch import nn

from convai_asr import functional as AF
from convai_core.types import MEL, B, Lengths, NeuralType, SpectrogramType, T, typed

__all__ = ["SpecAugment", "SpecCutout"]


class _SpectrogramMasking(nn.Module):
    """Shared ports and training-only ``forward`` of the masking augmentations.

    Subclasses set ``generator`` and ``mask_value`` and implement :meth:`_mask`.
    """

    generator: torch.Generator | None
    mask_value: float = 0.0

    @property
    def input_ports(self) -> dict[str, NeuralType]:
        """``input_spec`` (B, MEL, T) spectrograms and ``length`` (B,) valid frames."""
        return {
            "input_spec": NeuralType((B, MEL, T), SpectrogramType()),
            "length": NeuralType((B,), Lengths()),
        }

    @property
    def output_ports(self) -> dict[str, NeuralType]:
        """``augmented_spec`` (B, MEL, T)."""
        return {"augmented_spec": NeuralType((B, MEL, T), SpectrogramType())}

    def _mask(
        self, input_spec: torch.Tensor, length: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Boolean mask of the cells to overwrite. Shapes: (B, F, T), (B,) -> (B, F, T)."""
        raise NotImplementedError

    @typed
    def forward(
        self,
        input_spec: torch.Tensor,
        length: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Mask random regions of each item (training mode only).

        Args:
            input_spec: spectrograms.
            length: valid frames per item.
            generator: random source for this call; default ``self.generator``.

        Returns:
            The masked spectrograms (a new tensor), or ``input_spec`` itself in eval mode.

        Shapes:
            input_spec: (B, F, T), length: (B,) -> (B, F, T).
        """
        if not self.training:
            return input_spec
        mask = self._mask(
            input_spec, length, generator if generator is not None else self.generator
        )
        return input_spec.masked_fill(mask, self.mask_value)


class SpecAugment(_SpectrogramMasking):
    """SpecAugment (Park et al., 2019) without time warping: random frequency and time bands.

    Args:
        freq_masks: frequency bands per item.
        freq_width: widest frequency band, in bins (each band is ``0..freq_width`` wide).
        time_masks: time bands per item.
        time_width: widest time band: frames (an ``int``) or a fraction of each item's valid
            length (a ``float``, e.g. 0.05 = 5%).
        mask_value: the value written into the bands.
        generator: default random source for ``forward`` (``None``: torch's global one).

    Raises:
        ValueError: a negative count or width, or a fractional ``time_width`` outside [0, 1].

    Shapes:
        input_spec: (B, F, T), length: (B,) -> augmented_spec: (B, F, T).
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 27,
        time_masks: int = 10,
        time_width: int | float = 0.05,
        mask_value: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if min(freq_masks, freq_width, time_masks) < 0 or time_width < 0:
            raise ValueError(
                "SpecAugment counts and widths must be >= 0; got "
                f"freq_masks={freq_masks}, freq_width={freq_width}, time_masks={time_masks}, "
                f"time_width={time_width}."
            )
        if isinstance(time_width, float) and time_width > 1.0:
            raise ValueError(
                f"time_width={time_width} is a float, read as a fraction of each item's length; "
                "use a value in [0, 1], or an int for a width in frames."
            )
        self.freq_masks = freq_masks
        self.freq_width = freq_width
        self.time_masks = time_masks
        self.time_width = time_width
        self.mask_value = mask_value
        self.generator = generator

    def _mask(
        self, input_spec: torch.Tensor, length: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        return AF.spec_augment_mask(
            input_spec,
            lengths=length,
            freq_masks=self.freq_masks,
            freq_width=self.freq_width,
            time_masks=self.time_masks,
            time_width=self.time_width,
            generator=generator,
        )


class SpecCutout(_SpectrogramMasking):
    """SpecCutout (DeVries and Taylor's Cutout on spectrograms): random rectangles set to 0.

    Args:
        rect_masks: rectangles per item.
        rect_time: widest rectangle along time, in frames.
        rect_freq: widest rectangle along frequency, in bins.
        generator: default random source for ``forward`` (``None``: torch's global one).

    Raises:
        ValueError: a negative argument.

    Shapes:
        input_spec: (B, F, T), length: (B,) -> augmented_spec: (B, F, T).
    """

    def __init__(
        self,
        rect_masks: int = 5,
        rect_time: int = 25,
        rect_freq: int = 15,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if min(rect_masks, rect_time, rect_freq) < 0:
            raise ValueError(
                "SpecCutout arguments must be >= 0; got "
                f"rect_masks={rect_masks}, rect_time={rect_time}, rect_freq={rect_freq}."
            )
        self.rect_masks = rect_masks
        self.rect_time = rect_time
        self.rect_freq = rect_freq
        self.generator = generator

    def _mask(
        self, input_spec: torch.Tensor, length: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        return AF.cutout_mask(
            input_spec,
            lengths=length,
            rect_masks=self.rect_masks,
            rect_time=self.rect_time,
            rect_freq=self.rect_freq,
            generator=generator,
        )
