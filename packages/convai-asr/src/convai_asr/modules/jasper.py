"""Jasper and QuartzNet convolutional CTC encoders.

A :class:`JasperEncoder` is a stack of :class:`JasperBlock`s described by plain dicts (so that
they read like the YAML configs of the papers). Every time convolution is *masked*: frames past
each item's valid length are set to zero before it runs, so an item gives the same valid
outputs alone as inside a padded batch (in eval mode, where BatchNorm uses running statistics).

Layer sizes follow the published configurations: QuartzNet BxR (Kriman et al., 2020) and Jasper
10x5 (Li et al., 2019), as in NeMo's configs. Citrinet's blocks (Majumdar et al., 2021) are
expressed with ``se`` (squeeze-and-excitation over each item's valid frames), ``stride_last``
and ``residual_stride``; ``convai import nemo`` maps NeMo's ``ConvASREncoder`` onto these blocks.
Differences from NeMo, all deliberate:

- a stride applies to one sub-block of a block, the first (default) or the last
  (``stride_last``); NeMo strides every sub-block unless ``stride_last`` (the published models
  only stride blocks of one sub-block, or with ``stride_last``, where this is the same);
- Jasper uses a plain residual per block instead of the dense residual ("DR", every earlier
  block's output feeding every later block), which adds ~1x1-conv parameters per pair of blocks;
- only odd kernel sizes, so "same" padding is symmetric.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from convai_asr import functional as AF
from convai_asr.modules.dropout import Dropout
from convai_asr.modules.encoder_ports import encoder_input_ports, encoder_output_ports
from convai_core.fast_paths import cpu_fast_path_applies, graph_capture
from convai_core.types import (
    NeuralType,
    typed,
)

__all__ = [
    "JasperBlock",
    "JasperEncoder",
    "MaskedConv1d",
    "SqueezeExcite",
    "jasper_10x5_blocks",
    "quartznet_blocks",
]

#: Keys of a block dict, with their defaults (``filters`` and ``kernel`` are required).
BLOCK_DEFAULTS: dict[str, Any] = {
    "repeat": 1,
    "stride": 1,
    "dilation": 1,
    "dropout": 0.0,
    "residual": False,
    "separable": False,
    "stride_last": False,
    "residual_stride": True,
    "se": False,
    "se_reduction_ratio": 8,
}


def _single_int(value: int | list[int] | tuple[int, ...], key: str) -> int:
    """Accept ``5`` or ``[5]`` (NeMo's YAML writes kernels and strides as one-item lists)."""
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise ValueError(f"block key {key!r} must be one int (or a one-item list); got {value}")
        value = value[0]
    return int(value)


class MaskedConv1d(nn.Module):
    """A 1-D convolution with "same" padding that ignores frames past each item's length.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size.
        stride: stride.
        dilation: dilation.
        groups: channel groups (``in_channels`` for a depthwise convolution).
        bias: whether the convolution has a bias.

    Raises:
        ValueError: an even ``kernel_size``.

    Shapes:
        x: (B, C_in, T), lengths: (B,) -> (B, C_out, T'), (B,) with ``T' = ceil(T / stride)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for symmetric padding; got {kernel_size}.")
        self.padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=self.padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output frames for ``lengths`` valid input frames.

        Shapes:
            lengths: (B,) -> (B,).
        """
        return AF.conv_output_lengths(
            lengths,
            kernel_size=self.conv.kernel_size[0],
            stride=self.conv.stride[0],
            padding=self.padding,
            dilation=self.conv.dilation[0],
        )

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero the padding frames, convolve, and return the new lengths.

        ``valid`` is the (B, 1, T) float mask of ``lengths`` when the caller has it already (a
        block computes it once for all its sub-blocks).

        Shapes:
            x: (B, C_in, T), lengths: (B,), valid: (B, 1, T) -> (B, C_out, T'), (B,).
        """
        if self.conv.kernel_size[0] > 1:
            if valid is None:
                valid = frame_mask(lengths, x)
            x = x * valid
        conv = self.conv
        if conv.groups == 1 or conv.groups != conv.in_channels:
            return conv(x), self.output_lengths(lengths)
        # depthwise: the fastest form for where it runs (the same values in each)
        if conv.out_channels == conv.in_channels and cpu_fast_path_applies(x, inference=True):
            out = AF.depthwise_conv1d_shifts(  # eager inference on CPU
                x,
                weight=conv.weight,
                bias=conv.bias,
                padding=self.padding,
                stride=conv.stride[0],
                dilation=conv.dilation[0],
            )
        elif graph_capture():  # exported and traced graphs: one (1, K) Conv op
            out = AF.depthwise_conv1d_as_2d(x, conv)
        else:  # CUDA, training, reference paths
            out = conv(x)
        return out, self.output_lengths(lengths)


def frame_mask(lengths: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """1.0 on the valid frames of ``x``, 0.0 on the padding. Shapes: (B,), (B, C, T) -> (B, 1, T)."""
    return AF.lengths_to_mask(lengths, x.shape[-1]).unsqueeze(1).to(x.dtype)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation over time: each channel scaled by a gate computed from the mean of
    the item's valid frames (Hu et al., 2018; Citrinet's global context).

    ``gate = sigmoid(W2 relu(W1 mean_t(x)))`` with bias-free ``W1`` (C -> C / r) and ``W2``
    (C / r -> C); padding frames are zero in the output.

    Args:
        channels: channels C.
        reduction_ratio: r, the bottleneck's reduction (C / r >= 1).

    Shapes:
        x: (B, C, T), lengths: (B,) -> (B, C, T).
    """

    def __init__(self, channels: int, reduction_ratio: int) -> None:
        super().__init__()
        hidden = channels // reduction_ratio
        if reduction_ratio < 1 or hidden < 1:
            raise ValueError(
                f"se_reduction_ratio={reduction_ratio} leaves no hidden units for {channels} "
                f"channels; use 1 <= se_reduction_ratio <= {channels}."
            )
        self.squeeze = nn.Linear(channels, hidden, bias=False)
        self.excite = nn.Linear(hidden, channels, bias=False)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = frame_mask(lengths, x)  # (B, 1, T)
        x = x * valid
        count = valid.sum(dim=-1).clamp_min(1.0)  # (B, 1)
        mean = x.sum(dim=-1) / count  # (B, C, T) -> (B, C)
        gate = torch.sigmoid(self.excite(torch.relu(self.squeeze(mean))))  # (B, C)
        return x * gate.unsqueeze(-1)  # (B, C) -> (B, C, 1)


class _SubBlock(nn.Module):
    """One convolution (separable or plain) + BatchNorm of a :class:`JasperBlock`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        stride: int,
        dilation: int,
        separable: bool,
    ) -> None:
        super().__init__()
        if separable:
            self.time_conv = MaskedConv1d(
                in_channels, in_channels, kernel, stride=stride, dilation=dilation,
                groups=in_channels,
            )  # fmt: skip
            self.pointwise: nn.Module = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        else:
            self.time_conv = MaskedConv1d(
                in_channels, out_channels, kernel, stride=stride, dilation=dilation
            )
            self.pointwise = nn.Identity()
        self.norm = nn.BatchNorm1d(out_channels, eps=1e-3, momentum=0.1)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, lengths = self.time_conv(x, lengths, valid)
        return self.norm(self.pointwise(x)), lengths


class JasperBlock(nn.Module):
    """R sub-blocks of conv + BatchNorm + ReLU + Dropout, with an optional residual.

    Each sub-block is a time-channel separable convolution (depthwise, kernel K, then pointwise
    1x1) when ``separable``, else a plain convolution, followed by BatchNorm. Every sub-block but
    the last then applies ReLU and Dropout; the last one applies squeeze-and-excitation (``se``)
    and adds the residual branch (1x1 conv + BatchNorm of the block input) before its ReLU and
    Dropout.

    Args:
        in_channels: input channels.
        filters: output channels of every sub-block.
        repeat: number of sub-blocks (R).
        kernel: odd kernel size (K).
        stride: stride of the first sub-block (of the last with ``stride_last``).
        dilation: dilation of every sub-block.
        dropout: dropout probability after each ReLU.
        residual: add the residual branch.
        separable: use time-channel separable convolutions.
        stride_last: the last sub-block strides instead of the first.
        residual_stride: the residual branch strides with the block (else it keeps the input's
            frame rate, which only fits a block of stride 1).
        se: squeeze-and-excitation after the last sub-block.
        se_reduction_ratio: its bottleneck reduction.

    Raises:
        ValueError: ``repeat < 1``, or a residual without stride in a strided block.

    Shapes:
        x: (B, C_in, T), lengths: (B,) -> (B, filters, ceil(T / stride)), (B,).
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        *,
        repeat: int = 1,
        kernel: int = 11,
        stride: int = 1,
        dilation: int = 1,
        dropout: float = 0.0,
        residual: bool = False,
        separable: bool = False,
        stride_last: bool = False,
        residual_stride: bool = True,
        se: bool = False,
        se_reduction_ratio: int = 8,
    ) -> None:
        super().__init__()
        if repeat < 1:
            raise ValueError(f"a JasperBlock needs repeat >= 1; got {repeat}.")
        if residual and stride > 1 and not residual_stride:
            raise ValueError(
                f"a block of stride {stride} with a residual needs residual_stride: true (the "
                "residual would have more frames than the block's output)."
            )
        strided = repeat - 1 if stride_last else 0
        self.sub_blocks = nn.ModuleList(
            _SubBlock(
                in_channels if index == 0 else filters,
                filters,
                kernel,
                stride=stride if index == strided else 1,
                dilation=dilation,
                separable=separable,
            )
            for index in range(repeat)
        )
        self.se = SqueezeExcite(filters, se_reduction_ratio) if se else None
        self.residual: nn.ModuleList | None = None
        if residual:
            self.residual = nn.ModuleList(
                [
                    MaskedConv1d(in_channels, filters, 1, stride=stride if residual_stride else 1),
                    nn.BatchNorm1d(filters, eps=1e-3, momentum=0.1),
                ]
            )
        self.activation = nn.ReLU()
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the sub-blocks and the residual branch.

        Shapes:
            x: (B, C_in, T), lengths: (B,) -> (B, filters, T'), (B,).
        """
        out, out_lengths = x, lengths
        last = len(self.sub_blocks) - 1
        valid: torch.Tensor | None = None  # the mask of out_lengths, once per time resolution
        for index, sub_block in enumerate(self.sub_blocks):
            if valid is None or valid.shape[-1] != out.shape[-1]:
                valid = frame_mask(out_lengths, out)
            out, new_lengths = sub_block(out, out_lengths, valid)
            if new_lengths is not out_lengths:
                valid = None
            out_lengths = new_lengths
            if index == last and self.se is not None:
                out = self.se(out, out_lengths)
            if index == last and self.residual is not None:
                res_conv, res_norm = self.residual
                shortcut, _ = res_conv(x, lengths)
                out = out + res_norm(shortcut)
            out = self.dropout(self.activation(out))
        return out, out_lengths


class JasperEncoder(nn.Module):
    """A stack of :class:`JasperBlock`s: the Jasper / QuartzNet CTC encoder.

    Args:
        feat_in: input feature bins (mel bins of the preprocessor).
        blocks: one dict per block with keys ``filters``, ``kernel`` (required), ``repeat``,
            ``stride``, ``dilation``, ``dropout``, ``residual``, ``separable``, ``stride_last``,
            ``residual_stride``, ``se``, ``se_reduction_ratio`` (see :class:`JasperBlock`;
            defaults in ``BLOCK_DEFAULTS``). Ints may be one-item lists.
            :func:`quartznet_blocks` and :func:`jasper_10x5_blocks` build the published ones.

    Raises:
        ValueError: an empty ``blocks`` list or a block with a missing or unknown key.

    Shapes:
        audio_signal: (B, feat_in, T), length: (B,)
        -> encoded: (B, D, T / S), encoded_len: (B,), with D the last block's filters and S the
        product of the strides (lengths rounded up at every stride).
    """

    def __init__(self, feat_in: int, blocks: list[dict[str, Any]]) -> None:
        super().__init__()
        if not blocks:
            raise ValueError("JasperEncoder needs at least one block dict; see quartznet_blocks().")
        self.feat_in = feat_in
        layers = []
        channels = feat_in
        for position, spec in enumerate(blocks):
            unknown = set(spec) - set(BLOCK_DEFAULTS) - {"filters", "kernel"}
            missing = {"filters", "kernel"} - set(spec)
            if unknown or missing:
                raise ValueError(
                    f"JasperEncoder block {position} ({spec}): unknown keys {sorted(unknown)}, "
                    f"missing keys {sorted(missing)}; allowed: filters, kernel, "
                    f"{', '.join(BLOCK_DEFAULTS)}."
                )
            options = {**BLOCK_DEFAULTS, **spec}
            filters = _single_int(options["filters"], "filters")
            layers.append(
                JasperBlock(
                    channels,
                    filters,
                    repeat=int(options["repeat"]),
                    kernel=_single_int(options["kernel"], "kernel"),
                    stride=_single_int(options["stride"], "stride"),
                    dilation=_single_int(options["dilation"], "dilation"),
                    dropout=float(options["dropout"]),
                    residual=bool(options["residual"]),
                    separable=bool(options["separable"]),
                    stride_last=bool(options["stride_last"]),
                    residual_stride=bool(options["residual_stride"]),
                    se=bool(options["se"]),
                    se_reduction_ratio=int(options["se_reduction_ratio"]),
                )
            )
            channels = filters
        self.blocks = nn.ModuleList(layers)
        self.d_model = channels
        self.stride = 1
        for spec in blocks:
            self.stride *= _single_int(spec.get("stride", 1), "stride")
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv1d | nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def input_ports(self) -> dict[str, NeuralType]:
        """``audio_signal`` (B, MEL=feat_in, T) spectrograms and ``length`` (B,) frames."""
        return encoder_input_ports(self.feat_in)

    @property
    def output_ports(self) -> dict[str, NeuralType]:
        """``encoded`` (B, D=d_model, T) and ``encoded_len`` (B,)."""
        return encoder_output_ports(self.d_model)

    @typed
    def forward(
        self, audio_signal: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch of spectrograms.

        Args:
            audio_signal: features, padded to the longest item.
            length: valid frames per item.

        Returns:
            ``(encoded, encoded_len)``; frames past ``encoded_len`` are zero.

        Shapes:
            audio_signal: (B, feat_in, T), length: (B,) -> (B, D, T'), (B,).
        """
        x, lengths = audio_signal, length.long()
        for block in self.blocks:
            x, lengths = block(x, lengths)
        valid = AF.lengths_to_mask(lengths, x.shape[-1]).unsqueeze(1)  # (B, T) -> (B, 1, T)
        return x * valid.to(x.dtype), lengths


def quartznet_blocks(b: int = 15, r: int = 5, *, dropout: float = 0.0) -> list[dict[str, Any]]:
    """The block list of QuartzNet BxR (Kriman et al., 2020).

    Prolog C1 (256, k33, stride 2), then B blocks in 5 groups of B/5 blocks of R sub-blocks,
    with filters/kernels 256/k33, 256/k39, 512/k51, 512/k63, 512/k75, then epilog C2 (512, k87,
    dilation 2) and C3 (1024, k1). All separable; only the B blocks have residuals.

    Args:
        b: number of blocks B (a multiple of 5).
        r: sub-blocks per block R.
        dropout: dropout of every block.

    Raises:
        ValueError: ``b`` is not a positive multiple of 5 or ``r < 1``.
    """
    if b < 5 or b % 5 or r < 1:
        raise ValueError(f"QuartzNet BxR needs B a positive multiple of 5 and R >= 1; got {b}x{r}.")
    common = {"dropout": dropout, "separable": True}
    prolog = {"filters": 256, "repeat": 1, "kernel": 33, "stride": 2, **common}
    groups = [(256, 33), (256, 39), (512, 51), (512, 63), (512, 75)]
    body = [
        {"filters": filters, "repeat": r, "kernel": kernel, "residual": True, **common}
        for filters, kernel in groups
        for _ in range(b // 5)
    ]
    epilog = [
        {"filters": 512, "repeat": 1, "kernel": 87, "dilation": 2, **common},
        {"filters": 1024, "repeat": 1, "kernel": 1, **common},
    ]
    return [prolog, *body, *epilog]


def jasper_10x5_blocks() -> list[dict[str, Any]]:
    """The block list of Jasper 10x5 (Li et al., 2019), non-separable, with its dropouts.

    Prolog (256, k11, stride 2), 10 blocks of 5 sub-blocks (two each of 256/k11, 384/k13,
    512/k17, 640/k21, 768/k25), epilog (896, k29, dilation 2) and (1024, k1). Each block has a
    plain residual, not the paper's dense residual, so the model has slightly fewer parameters
    than the published "Jasper 10x5 DR" (333M).
    """
    prolog = {"filters": 256, "repeat": 1, "kernel": 11, "stride": 2, "dropout": 0.2}
    groups = [(256, 11, 0.2), (384, 13, 0.2), (512, 17, 0.2), (640, 21, 0.3), (768, 25, 0.3)]
    body = [
        {"filters": filters, "repeat": 5, "kernel": kernel, "dropout": drop, "residual": True}
        for filters, kernel, drop in groups
        for _ in range(2)
    ]
    epilog = [
        {"filters": 896, "repeat": 1, "kernel": 29, "dilation": 2, "dropout": 0.4},
        {"filters": 1024, "repeat": 1, "kernel": 1, "dropout": 0.4},
    ]
    return [prolog, *body, *epilog]
