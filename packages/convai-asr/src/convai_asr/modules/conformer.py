"""Conformer CTC encoder (Gulati et al., 2020), sized like NeMo's Conformer-CTC configs.

Pipeline: 4x striding conv2d subsampling -> input scaling by sqrt(d_model) and positional
encoding -> N conformer layers (macaron feed-forward halves around self-attention and a
convolution module, then a LayerNorm per layer).

Positional encoding: ``"rel"`` (default) is Transformer-XL style relative attention as in the
Conformer paper and NeMo (``rel_pos``): sinusoidal embeddings of relative distances, a learned
projection and two learned biases (``u``, ``v``) per layer. ``"abs"`` adds sinusoidal absolute
positions to the input once and uses plain attention (fewer parameters, no per-layer position
terms).

Padding never leaks into valid frames: the subsampling convolutions and the depthwise
convolutions zero padded frames first, and attention masks padded keys, so in eval mode an
item gives the same valid outputs alone as inside a padded batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from convai_asr import functional as AF
from convai_asr.modules.dropout import Dropout, dropout
from convai_asr.modules.encoder_ports import encoder_input_ports, encoder_output_ports
from convai_core.fast_paths import cpu_fast_path_applies, graph_capture
from convai_core.types import (
    NeuralType,
    typed,
)

__all__ = ["ConformerEncoder", "ConformerLayer", "ConvSubsampling", "sinusoidal_embedding"]


def sinusoidal_embedding(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """Sine/cosine embeddings of (possibly negative) positions, interleaved sin, cos.

    Shapes:
        positions: (P,) float -> (P, d_model).
    """
    half = torch.arange(0, d_model, 2, device=positions.device, dtype=torch.float32)
    inv_freq = torch.exp(half * (-math.log(10000.0) / d_model))  # (d_model / 2,)
    angles = positions.float().unsqueeze(1) * inv_freq.unsqueeze(0)  # (P, 1) * (1, d/2)
    pairs = torch.stack([angles.sin(), angles.cos()], dim=-1)  # (P, d/2) -> (P, d/2, 2)
    return pairs.reshape(positions.shape[0], d_model)  # (P, d/2, 2) -> (P, d)


class ConvSubsampling(nn.Module):
    """Two 3x3 stride-2 conv2d + ReLU over (time, frequency), then a linear layer to d_model.

    Args:
        feat_in: input feature bins.
        d_model: output size.
        channels: conv2d channels.

    Shapes:
        x: (B, T, feat_in), lengths: (B,) -> (B, T', d_model), (B,) with
        ``T' = ceil(ceil(T / 2) / 2)``.
    """

    def __init__(self, feat_in: int, d_model: int, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)
        freq = feat_in
        for _ in range(2):
            freq = (freq + 2 - 3) // 2 + 1
        self.out = nn.Linear(channels * freq, d_model)

    @staticmethod
    def _stage_lengths(lengths: torch.Tensor) -> torch.Tensor:
        return AF.conv_output_lengths(lengths, kernel_size=3, stride=2, padding=1)

    # Inference runs the batch in groups whose first conv2d output stays under this many bytes:
    # the (B, C, T/2, F/2) map is the largest tensor of the model (113 MB for 8 x 10 s), and in
    # pieces it stays in cache and is reused by the allocator instead of being faulted in anew.
    chunk_bytes = 16 << 20

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Subsample time (and frequency) by 4.

        Shapes:
            x: (B, T, F), lengths: (B,) -> (B, T', d_model), (B,).
        """
        # the plain form on CUDA, in exported and traced graphs (two Conv ops and no batch
        # grouping, whose group count depends on the input's shape and would be frozen by a
        # trace) and under CONVAI_REFERENCE_PATHS
        if not cpu_fast_path_applies(x, inference=False):
            return self._forward_convs(x, lengths)
        if not cpu_fast_path_applies(x, inference=True):  # training on CPU
            return self._forward_eager(x, lengths)
        batch, time, freq = x.shape
        item_bytes = ((time + 1) // 2) * ((freq + 1) // 2) * self.conv1.out_channels
        group = max(1, self.chunk_bytes // (item_bytes * x.element_size()))
        if group >= batch:
            return self._forward_eager(x, lengths)
        parts = [
            self._forward_eager(x[start : start + group], lengths[start : start + group])
            for start in range(0, batch, group)
        ]
        return torch.cat([out for out, _ in parts]), torch.cat([length for _, length in parts])

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """The output linear layer on channels-last conv2d maps, without reordering them.

        The layer's weight is laid out for (C, F) flattened features, as in NeMo; the map's
        memory is (B, T, F, C), so the weight's columns are reordered instead (a 2.5 MB copy
        rather than one of the 28 MB activations).

        Shapes:
            x: (B, C, T, F) -> (B, T, d_model).
        """
        batch, channels, time, freq = x.shape
        x = x.permute(0, 2, 3, 1).reshape(batch, time, freq * channels)  # (B, T, F * C)
        # (D, C * F) -> (D, C, F) -> (D, F, C) -> (D, F * C)
        weight = self.out.weight.view(-1, channels, freq).transpose(1, 2)
        weight = weight.reshape(-1, freq * channels)
        return F.linear(x, weight, self.out.bias)

    def _forward_eager(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The CPU fast path: the first conv2d (one input channel) as a matmul of 3x3 patches,
        which writes its output channels-last directly and runs about twice as fast on CPU as
        the oneDNN kernel; the second conv2d then runs on channels-last maps, where oneDNN is
        also faster.

        Shapes:
            x: (B, T, F), lengths: (B,) -> (B, T', d_model), (B,).
        """
        batch, time, freq = x.shape
        valid = AF.lengths_to_mask(lengths, time)  # (B, T)
        x = x * valid.unsqueeze(-1).to(x.dtype)  # (B, T) -> (B, T, 1)
        padded = F.pad(x, (1, 1, 1, 1))  # (B, T, F) -> (B, T + 2, F + 2)
        out_time, out_freq = (time - 1) // 2 + 1, (freq - 1) // 2 + 1
        taps = [
            padded[:, row : row + 2 * out_time - 1 : 2, col : col + 2 * out_freq - 1 : 2]
            for row in range(3)
            for col in range(3)
        ]  # 9 x (B, T1, F1), in the (kh, kw) order of the conv2d weight
        patches = torch.stack(taps, dim=-1)  # (B, T1, F1, 9)
        weight = self.conv1.weight.view(self.conv1.out_channels, 9)  # (C, 1, 3, 3) -> (C, 9)
        y = torch.matmul(patches, weight.t())  # (B, T1, F1, 9) @ (9, C) -> (B, T1, F1, C)
        lengths = self._stage_lengths(lengths)
        valid = AF.lengths_to_mask(lengths, out_time)  # (B, T1)
        # bias, zeroed padding frames and ReLU in place (the matmul's backward needs neither
        # its output nor the product's)
        if self.conv1.bias is not None:
            y = y.add_(self.conv1.bias)
        y = torch.relu_(y.mul_(valid.view(batch, -1, 1, 1).to(y.dtype)))
        y = self.conv2(y.permute(0, 3, 1, 2))  # channels-last (B, C, T1, F1) -> (B, C, T2, F2)
        lengths = self._stage_lengths(lengths)
        valid = AF.lengths_to_mask(lengths, y.shape[2])  # (B, T2)
        y = torch.relu_(y.mul_(valid.view(batch, 1, -1, 1).to(y.dtype)))
        return self._project(y), lengths

    def _forward_convs(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both stages as conv2d operations: the reference form, used on CUDA, in exported
        and traced graphs and under ``CONVAI_REFERENCE_PATHS``.

        Shapes:
            x: (B, T, F), lengths: (B,) -> (B, T', d_model), (B,).
        """
        x = x.unsqueeze(1)  # (B, T, F) -> (B, 1, T, F)
        valid = AF.lengths_to_mask(lengths, x.shape[2])  # (B, T)
        x = x * valid.view(valid.shape[0], 1, -1, 1).to(x.dtype)  # (B, T) -> (B, 1, T, 1)
        for conv in (self.conv1, self.conv2):
            lengths = self._stage_lengths(lengths)
            x = conv(x)
            # zero the frames past each item's length so that padding never leaks into valid
            # frames (in place: the convolution's backward does not need its output)
            valid = AF.lengths_to_mask(lengths, x.shape[2])  # (B, T')
            x = torch.relu_(x.mul_(valid.view(valid.shape[0], 1, -1, 1).to(x.dtype)))
        return self._project(x), lengths


class _FeedForward(nn.Module):
    """LayerNorm -> Linear -> SiLU -> Dropout -> Linear (the residual is added by the layer)."""

    def __init__(self, d_model: int, expansion: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, d_model * expansion),
            nn.SiLU(),
            Dropout(dropout),
            nn.Linear(d_model * expansion, d_model),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not cpu_fast_path_applies(x, inference=True):
            return self.net(x)
        norm, expand, _, _, project = self.net  # eager inference on CPU: SiLU in place
        return project(F.silu(expand(norm(x)), inplace=True))


def _relative_to_absolute(scores: torch.Tensor) -> torch.Tensor:
    """Pick, for query i and key j, the score at distance index ``(T - 1) - i + j``.

    In eager inference on CPU this is a strided view of ``scores`` (the rows of the result are
    diagonals of the input: element (i, j) sits at offset ``(T - 1) + i * (2T - 2) + j`` of a
    row-major (T, 2T - 1) block). Elsewhere (autograd, CUDA, captured graphs, reference paths:
    see :func:`convai_core.fast_paths.cpu_fast_path_applies`) the same elements are reached
    by shape operations only: one zero column is put in front of each row, the (T, 2T) block is
    read as 2T rows of T, its first row dropped, and the rest read as (T, 2T - 1): element (i, j)
    of that, for j < T, is the input's (i, T - 1 - i + j). Copies and reshapes are cheaper than a
    gather with a (B, H, T, T) index, in backward and in ONNX runtimes.

    Shapes:
        scores: (B, H, T, 2T - 1) -> (B, H, T, T).
    """
    batch, heads, time, width = scores.shape
    if cpu_fast_path_applies(scores, inference=True):
        scores = scores.contiguous()
        return scores.as_strided(
            (batch, heads, time, time),
            (heads * time * width, time * width, width - 1, 1),
            scores.storage_offset() + time - 1,
        )
    return _shift_zero_led(F.pad(scores, (1, 0)))  # (B, H, T, 2T - 1) -> (B, H, T, 2T)


def _shift_zero_led(padded: torch.Tensor) -> torch.Tensor:
    """:func:`_relative_to_absolute` of scores that already have the zero column in front.

    Shapes:
        padded: (B, H, T, 2T) -> (B, H, T, T).
    """
    batch, heads, time, width = padded.shape
    shifted = padded.reshape(batch, heads, width, time)[:, :, 1:]  # (B, H, 2T - 1, T)
    return shifted.reshape(batch, heads, time, width - 1)[..., :time]  # (B, H, T, T)


class _SelfAttention(nn.Module):
    """Multi-head self-attention with key padding mask, relative or plain.

    Shapes:
        x: (B, T, D), key_padding: (B, T) bool (True = padding) or None (no padding),
        pos_emb: (2T - 1, D) embeddings of distances T-1 .. -(T-1), or None -> (B, T, D).
    """

    def __init__(self, d_model: int, n_heads: int, dropout_att: float, relative: bool) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}.")
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.dropout_att = dropout_att
        self.norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.relative = relative
        if relative:
            self.pos_proj = nn.Linear(d_model, d_model, bias=False)
            self.bias_u = nn.Parameter(torch.zeros(n_heads, self.d_head))
            self.bias_v = nn.Parameter(torch.zeros(n_heads, self.d_head))
            nn.init.xavier_uniform_(self.bias_u)
            nn.init.xavier_uniform_(self.bias_v)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, _ = x.shape
        # (B, T, D) -> (B, T, H, Dh) -> (B, H, T, Dh)
        return x.view(batch, time, self.n_heads, self.d_head).transpose(1, 2)

    def forward(
        self, x: torch.Tensor, key_padding: torch.Tensor | None, pos_emb: torch.Tensor | None
    ) -> torch.Tensor:
        batch, time, d_model = x.shape
        query, key, value = self.qkv(self.norm(x)).chunk(3, dim=-1)  # 3 x (B, T, D)
        query, key, value = self._heads(query), self._heads(key), self._heads(value)
        bias: torch.Tensor | None = None
        if self.relative and pos_emb is not None:
            positions = self.pos_proj(pos_emb)  # (2T - 1, D)
            # (2T - 1, D) -> (2T - 1, H, Dh) -> (H, Dh, 2T - 1)
            positions = positions.view(-1, self.n_heads, self.d_head).permute(1, 2, 0)
            # the 1/sqrt(Dh) of the scores is applied here, on (T, Dh) rather than (T, T)
            with_v = (query + self.bias_v.unsqueeze(1)) * (1.0 / math.sqrt(self.d_head))
            if cpu_fast_path_applies(query, inference=True):
                scores = torch.matmul(with_v, positions)  # (B, H, T, Dh) @ (H, Dh, 2T-1)
                shifted = _relative_to_absolute(scores)  # a strided view
            else:  # a zero position first: its zero scores column saves padding (B, H, T, 2T)
                positions = F.pad(positions, (1, 0))  # (H, Dh, 2T - 1) -> (H, Dh, 2T)
                shifted = _shift_zero_led(torch.matmul(with_v, positions))
            bias = shifted
            query = query + self.bias_u.unsqueeze(1)  # (H, Dh) -> (H, 1, Dh)
        if key_padding is not None:
            padding = key_padding.view(batch, 1, 1, time)  # (B, T) -> (B, 1, 1, T)
            if bias is None:
                bias = torch.zeros(batch, 1, 1, time, dtype=query.dtype, device=x.device)
            bias = bias.masked_fill(padding, float("-inf"))
        # written out: in captured graphs, as torch.export's decomposition of
        # scaled_dot_product_attention gives its output strides that a later view rejects; in
        # training on CPU (a fast path), where SDPA's dropout draws one Bernoulli sample per
        # score and the packed-bit dropout is four times faster
        drop = self.dropout_att if self.training else 0.0
        if graph_capture() or (drop > 0.0 and cpu_fast_path_applies(x, inference=False)):
            scores = torch.matmul(query, key.transpose(-1, -2)) * (1.0 / math.sqrt(self.d_head))
            if bias is not None:
                scores = scores + bias
            weights = dropout(torch.softmax(scores, dim=-1), drop, training=drop > 0.0)
            context = torch.matmul(weights, value)
        else:
            context = F.scaled_dot_product_attention(
                query,
                key,
                value,
                attn_mask=bias,
                dropout_p=drop,
            )
        # (B, H, T, Dh) -> (B, T, H, Dh) -> (B, T, D)
        context = context.transpose(1, 2).reshape(batch, time, d_model)
        return self.out(context)


class _ConvModule(nn.Module):
    """LayerNorm -> pointwise conv + GLU -> masked depthwise conv -> BatchNorm -> SiLU ->
    pointwise conv.

    Shapes:
        x: (B, T, D), key_padding: (B, T) bool or None -> (B, T, D).
    """

    def __init__(self, d_model: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"conv_kernel must be odd; got {kernel_size}.")
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Conv1d(d_model, 2 * d_model, kernel_size=1)
        self.depthwise = nn.Conv1d(
            d_model, d_model, kernel_size, padding=(kernel_size - 1) // 2, groups=d_model
        )
        self.batch_norm = nn.BatchNorm1d(d_model)
        self.pointwise_out = nn.Conv1d(d_model, d_model, kernel_size=1)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        # (eval BatchNorm without running statistics normalizes by the batch: not foldable)
        if (
            not self.training
            and self.batch_norm.running_var is not None
            and cpu_fast_path_applies(x, inference=True)
        ):
            return self._infer(x, key_padding)
        x = self.norm(x).transpose(1, 2)  # (B, T, D) -> (B, D, T)
        x = F.glu(self.pointwise_in(x), dim=1)  # (B, 2D, T) -> (B, D, T)
        if key_padding is not None:
            x = x.masked_fill(key_padding.unsqueeze(1), 0.0)  # (B, T) -> (B, 1, T)
        if graph_capture():  # exported and traced graphs: one (1, K) Conv op
            x = AF.depthwise_conv1d_as_2d(x, self.depthwise)
        else:
            x = self.depthwise(x)
        x = F.silu(self.batch_norm(x))
        return self.pointwise_out(x).transpose(1, 2)  # (B, D, T) -> (B, T, D)

    def _infer(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        """The CPU fast path of eager inference, in the (B, T, D) layout: the pointwise
        convolutions as linear layers, the depthwise one as shift-and-add with the BatchNorm
        folded into its taps, no transposes.

        Shapes:
            x: (B, T, D), key_padding: (B, T) bool or None -> (B, T, D).
        """
        x = F.linear(self.norm(x), self.pointwise_in.weight.squeeze(-1), self.pointwise_in.bias)
        x = F.glu(x, dim=-1)  # (B, T, 2D) -> (B, T, D)
        if key_padding is not None:
            x = x.masked_fill(key_padding.unsqueeze(-1), 0.0)  # (B, T) -> (B, T, 1)
        norm = self.batch_norm
        assert norm.running_var is not None and norm.running_mean is not None
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale
        if norm.bias is not None:
            shift = shift + norm.bias
        if self.depthwise.bias is not None:
            shift = shift + self.depthwise.bias * scale
        x = AF.depthwise_conv1d_shifts(
            x,
            weight=self.depthwise.weight * scale.view(-1, 1, 1),  # (C,) -> (C, 1, 1)
            bias=shift,
            padding=int(self.depthwise.padding[0]),
            channels_last=True,
        )
        x = F.silu(x, inplace=True)
        return F.linear(x, self.pointwise_out.weight.squeeze(-1), self.pointwise_out.bias)


class ConformerLayer(nn.Module):
    """One conformer layer: x + FF/2, + MHSA, + Conv, + FF/2, then LayerNorm.

    Args:
        d_model: model size.
        n_heads: attention heads.
        ff_expansion: feed-forward hidden size = ``ff_expansion * d_model``.
        conv_kernel: depthwise kernel size (odd).
        dropout: dropout of every residual branch and inside the feed-forwards.
        dropout_att: dropout of the attention weights.
        relative: relative (True) or plain (False) self-attention.

    Shapes:
        x: (B, T, D), key_padding: (B, T) bool or None, pos_emb: (2T - 1, D) or None
        -> (B, T, D).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        ff_expansion: int,
        conv_kernel: int,
        dropout: float,
        dropout_att: float,
        relative: bool = True,
    ) -> None:
        super().__init__()
        self.ff1 = _FeedForward(d_model, ff_expansion, dropout)
        self.attention = _SelfAttention(d_model, n_heads, dropout_att, relative)
        self.conv = _ConvModule(d_model, conv_kernel)
        self.ff2 = _FeedForward(d_model, ff_expansion, dropout)
        self.norm_out = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)

    def forward(
        self, x: torch.Tensor, key_padding: torch.Tensor | None, pos_emb: torch.Tensor | None
    ) -> torch.Tensor:
        x = torch.add(x, self.dropout(self.ff1(x)), alpha=0.5)
        x = x + self.dropout(self.attention(x, key_padding, pos_emb))
        x = x + self.dropout(self.conv(x, key_padding))
        x = torch.add(x, self.dropout(self.ff2(x)), alpha=0.5)
        return self.norm_out(x)


class ConformerEncoder(nn.Module):
    """Conformer encoder for CTC.

    Args:
        feat_in: input feature bins.
        d_model: model size.
        n_layers: conformer layers.
        n_heads: attention heads.
        ff_expansion: feed-forward expansion factor.
        conv_kernel: depthwise kernel size of the convolution modules (odd).
        subsampling_factor: time reduction of the front end; only 4 is supported.
        subsampling_conv_channels: conv2d channels of the front end.
        dropout: dropout of the input, of the residual branches and in the feed-forwards.
        dropout_att: dropout of the attention weights.
        pos_encoding: ``"rel"`` (relative, default) or ``"abs"`` (sinusoidal absolute).
        xscaling: scale the subsampled input by ``sqrt(d_model)`` (NeMo's ``xscaling``; its
            Conformer configs do, its FastConformer configs do not).

    Raises:
        ValueError: an unsupported ``subsampling_factor`` or ``pos_encoding``.

    Shapes:
        audio_signal: (B, feat_in, T), length: (B,)
        -> encoded: (B, d_model, T'), encoded_len: (B,) with ``T' = ceil(ceil(T / 2) / 2)``.
    """

    def __init__(
        self,
        feat_in: int,
        d_model: int = 176,
        n_layers: int = 16,
        n_heads: int = 4,
        ff_expansion: int = 4,
        conv_kernel: int = 31,
        subsampling_factor: int = 4,
        subsampling_conv_channels: int = 176,
        dropout: float = 0.1,
        dropout_att: float = 0.1,
        pos_encoding: str = "rel",
        xscaling: bool = True,
    ) -> None:
        super().__init__()
        if subsampling_factor != 4:
            raise ValueError(
                f"ConformerEncoder supports subsampling_factor=4 only; got {subsampling_factor}."
            )
        if pos_encoding not in ("rel", "abs"):
            raise ValueError(f"pos_encoding must be 'rel' or 'abs'; got {pos_encoding!r}.")
        self.feat_in = feat_in
        self.d_model = d_model
        self.subsampling_factor = subsampling_factor
        self.pos_encoding = pos_encoding
        self.xscaling = xscaling
        self.subsampling = ConvSubsampling(feat_in, d_model, subsampling_conv_channels)
        self.input_dropout = Dropout(dropout)
        relative = pos_encoding == "rel"
        self.layers = nn.ModuleList(
            ConformerLayer(
                d_model, n_heads, ff_expansion, conv_kernel, dropout, dropout_att, relative
            )
            for _ in range(n_layers)
        )

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
            audio_signal: (B, feat_in, T), length: (B,) -> (B, d_model, T'), (B,).
        """
        x = audio_signal.transpose(1, 2)  # (B, F, T) -> (B, T, F)
        x, lengths = self.subsampling(x, length.long())
        if self.xscaling:
            x = x * math.sqrt(self.d_model)
        time = x.shape[1]
        pos_emb: torch.Tensor | None = None
        if self.pos_encoding == "rel":
            distances = torch.arange(time - 1, -time, -1, device=x.device)  # T-1 .. -(T-1)
            pos_emb = sinusoidal_embedding(distances, self.d_model).to(x.dtype)
        else:
            positions = torch.arange(time, device=x.device)  # 0 .. T-1
            x = x + sinusoidal_embedding(positions, self.d_model).to(x.dtype)
        x = self.input_dropout(x)
        padding = ~AF.lengths_to_mask(lengths, time)  # (B, T), True on padding
        key_padding: torch.Tensor | None = padding
        # eager inference on CPU of an unpadded batch: no masking at all (not in a trace, which
        # would freeze the branch taken for its example input; not on CUDA, where any() would
        # wait for the device)
        if cpu_fast_path_applies(x, inference=True) and not padding.any():
            key_padding = None
        for layer in self.layers:
            x = layer(x, key_padding, pos_emb)
        if key_padding is not None:
            x = x.masked_fill(key_padding.unsqueeze(-1), 0.0)  # (B, T) -> (B, T, 1)
        return x.transpose(1, 2), lengths  # (B, T, D) -> (B, D, T)
