"""WaveGlow (Prenger, Valle and Catanzaro, 2018): a normalizing flow from audio to Gaussian noise,
conditioned on a mel spectrogram; run backwards it turns noise and a mel into audio.

The audio is cut into vectors of ``n_group`` consecutive samples (the "squeeze"), and the mel,
upsampled to one vector per sample by a transposed convolution (stride = the hop), is squeezed the
same way. Each of ``n_flows`` steps is

* an invertible 1x1 convolution (a learned ``c x c`` mixing of the channels, initialized to a
  random rotation: orthogonal with determinant +1), log-determinant ``T * log|det W|``;
* an affine coupling layer: the first half of the channels ``x_a`` passes through unchanged and,
  with the mel, feeds a WaveNet-like network (:class:`WN`) that gives a log-scale ``log s`` and
  a shift ``t`` for the second half: ``x_b' = exp(log s) * x_b + t``, log-determinant
  ``sum(log s)``.

Every ``n_early_every`` steps, ``n_early_size`` channels leave the flow early (they are already
part of the output ``z``), so later steps work on fewer channels. Training maximizes the
likelihood of the audio under ``z ~ N(0, sigma^2)``; inference draws ``z`` (with a smaller
``sigma``, 0.6 in the paper) and inverts every step. The functions take the noise as an input,
so inference is deterministic and exports as one graph (with the inverse 1x1 weights computed
beforehand: ONNX has no matrix inverse).

Weight normalization (used by the original code) is left out: the coupling networks' last layers
start at zero (every coupling starts as the identity), which keeps early training stable, and the
plain convolutions export as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

__all__ = [
    "WN",
    "AffineCoupling",
    "Invertible1x1Conv",
    "WaveGlow",
    "flow_nll",
    "squeeze",
    "unsqueeze",
]


def squeeze(audio: torch.Tensor, n_group: int) -> torch.Tensor:
    """Group consecutive samples into vectors: (B, S) -> (B, n_group, S // n_group); channel
    ``j`` at step ``t`` holds sample ``t * n_group + j`` (``S`` must be a multiple of
    ``n_group``)."""
    batch = audio.shape[0]
    return audio.reshape(batch, -1, n_group).transpose(1, 2)  # (B, S/g, g) -> (B, g, S/g)


def unsqueeze(groups: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`squeeze`: (B, n_group, T) -> (B, T * n_group)."""
    batch = groups.shape[0]
    return groups.transpose(1, 2).reshape(batch, -1)  # (B, g, T) -> (B, T, g) -> (B, T*g)


def _random_rotation(channels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random orthogonal ``channels x channels`` matrix with determinant +1."""
    q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


class Invertible1x1Conv(nn.Module):
    """An invertible mixing of the channels at every time step: ``y = W x``.

    Args:
        channels: the number of channels ``c``; ``W`` starts as a random rotation.

    Shapes:
        forward: (B, c, T) -> (B, c, T), and ``log|det W|`` (a scalar: per time step).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(_random_rotation(channels))

    def log_det(self) -> torch.Tensor:
        """``log|det W|``: the log-determinant of one time step."""
        weight: torch.Tensor = self.weight
        if weight.dtype not in (torch.float32, torch.float64):  # no half-precision slogdet
            weight = weight.float()
        return torch.linalg.slogdet(weight)[1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = nn.functional.conv1d(x, self.weight.unsqueeze(-1))  # (B, c, T) -> (B, c, T)
        return y, self.log_det()

    def inverse_weight(self) -> torch.Tensor:
        """``W^-1``, computed in float64 for accuracy, in the weight's dtype."""
        return torch.linalg.inv(self.weight.double()).to(self.weight.dtype)

    def inverse(self, y: torch.Tensor, inverse_weight: torch.Tensor | None = None) -> torch.Tensor:
        """``x = W^-1 y``; pass ``inverse_weight`` (from :meth:`inverse_weight`) to skip the
        inversion (an exported graph holds it as a constant)."""
        if inverse_weight is None:
            inverse_weight = self.inverse_weight()
        return nn.functional.conv1d(y, inverse_weight.unsqueeze(-1))


class WN(nn.Module):
    """The WaveNet-like network of a coupling layer: non-causal dilated convolutions with gated
    activations (``tanh(a) * sigmoid(b)``), conditioned on the squeezed mel by 1x1 convolutions,
    with residual and summed skip connections.

    Args:
        in_channels: channels of the untouched half ``x_a``.
        cond_channels: channels of the squeezed mel (``n_mels * n_group``).
        out_channels: channels produced (``2 *`` those of the transformed half: log-scale and
            shift); the last layer starts at zero.
        n_layers: dilated layers (dilation 1, 2, 4, ...).
        n_channels: hidden channels.
        kernel_size: the dilated convolutions' kernel (odd).

    Shapes:
        forward: x (B, in_channels, T), cond (B, cond_channels, T) -> (B, out_channels, T).
    """

    def __init__(
        self,
        in_channels: int,
        cond_channels: int,
        out_channels: int,
        n_layers: int = 8,
        n_channels: int = 256,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WN kernel_size must be odd, got {kernel_size}")
        self.n_channels = n_channels
        self.start = nn.Conv1d(in_channels, n_channels, 1)
        # one 1x1 convolution conditions every layer (sliced per layer below)
        self.cond = nn.Conv1d(cond_channels, 2 * n_channels * n_layers, 1)
        self.dilated = nn.ModuleList()
        self.res_skip = nn.ModuleList()
        for i in range(n_layers):
            dilation = 2**i
            self.dilated.append(
                nn.Conv1d(
                    n_channels,
                    2 * n_channels,
                    kernel_size,
                    dilation=dilation,
                    padding=dilation * (kernel_size - 1) // 2,
                )
            )
            # the last layer has no residual output, only a skip output
            out = 2 * n_channels if i < n_layers - 1 else n_channels
            self.res_skip.append(nn.Conv1d(n_channels, out, 1))
        self.end = nn.Conv1d(n_channels, out_channels, 1)
        # zero: every coupling starts as the identity
        nn.init.zeros_(self.end.weight)
        if self.end.bias is not None:
            nn.init.zeros_(self.end.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        hidden = self.start(x)
        conditions = self.cond(cond)  # (B, 2 * n_channels * n_layers, T)
        skip = torch.zeros_like(hidden)
        c2 = 2 * self.n_channels
        last = len(self.dilated) - 1
        for i, (dilated, res_skip) in enumerate(zip(self.dilated, self.res_skip, strict=True)):
            a, b = (dilated(hidden) + conditions[:, i * c2 : (i + 1) * c2]).chunk(2, dim=1)
            out = res_skip(torch.tanh(a) * torch.sigmoid(b))
            if i < last:
                hidden = hidden + out[:, : self.n_channels]
                skip = skip + out[:, self.n_channels :]
            else:
                skip = skip + out
        return self.end(skip)


class AffineCoupling(nn.Module):
    """``x_a, x_b -> x_a, exp(log s) * x_b + t`` with ``(log s, t) = WN(x_a, mel)``.

    Args:
        channels: channels of the flow at this step; ``x_a`` is the first ``channels // 2``.
        cond_channels: channels of the squeezed mel.
        n_layers, n_channels, kernel_size: of the :class:`WN`.

    Shapes:
        forward: x (B, channels, T), cond (B, cond_channels, T) -> y (B, channels, T),
        log s (B, channels - channels // 2, T).
    """

    def __init__(
        self,
        channels: int,
        cond_channels: int,
        n_layers: int = 8,
        n_channels: int = 256,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.n_a = channels // 2
        n_b = channels - self.n_a
        self.wn = WN(self.n_a, cond_channels, 2 * n_b, n_layers, n_channels, kernel_size)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x[:, : self.n_a], x[:, self.n_a :]
        log_s, shift = self.wn(x_a, cond).chunk(2, dim=1)
        return torch.cat([x_a, torch.exp(log_s) * x_b + shift], dim=1), log_s

    def inverse(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        y_a, y_b = y[:, : self.n_a], y[:, self.n_a :]
        log_s, shift = self.wn(y_a, cond).chunk(2, dim=1)
        return torch.cat([y_a, (y_b - shift) * torch.exp(-log_s)], dim=1)


class WaveGlow(nn.Module):
    """The WaveGlow flow; see the module docstring.

    Args:
        n_mels: mel bins of the conditioning spectrogram.
        hop_length: audio samples per mel frame (the upsampler's stride); a multiple of
            ``n_group``.
        upsample_kernel: the transposed convolution's kernel (the original uses the 1024-sample
            analysis window, four hops); at least ``hop_length``.
        n_flows: flow steps.
        n_group: samples per squeezed vector.
        n_early_every: every this many steps, ``n_early_size`` channels leave the flow.
        n_early_size: channels that leave each time.
        n_layers, n_channels, kernel_size: of each coupling's :class:`WN`.

    Raises:
        ValueError: inconsistent sizes (the hop not a multiple of ``n_group``, early outputs
            that leave fewer than two channels...).
    """

    def __init__(
        self,
        n_mels: int = 80,
        hop_length: int = 256,
        upsample_kernel: int = 1024,
        n_flows: int = 12,
        n_group: int = 8,
        n_early_every: int = 4,
        n_early_size: int = 2,
        n_layers: int = 8,
        n_channels: int = 256,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        if hop_length % n_group:
            raise ValueError(f"hop_length {hop_length} must be a multiple of n_group {n_group}")
        if upsample_kernel < hop_length:
            raise ValueError(f"upsample_kernel {upsample_kernel} < hop_length {hop_length}")
        self.n_mels = n_mels
        self.hop_length = hop_length
        self.n_group = n_group
        self.n_flows = n_flows
        self.n_early_every = n_early_every
        self.n_early_size = n_early_size
        # padded so that F frames give exactly F * hop samples, frame k's kernel centred on
        # sample k * hop + hop / 2, where the analysis window of frame k is centred (the
        # original trims the extra samples from the end instead)
        overhang = upsample_kernel - hop_length
        self.upsample = nn.ConvTranspose1d(
            n_mels,
            n_mels,
            upsample_kernel,
            stride=hop_length,
            padding=overhang // 2,
            output_padding=overhang % 2,
        )
        self.convs = nn.ModuleList()
        self.couplings = nn.ModuleList()
        #: channels in the flow at each step
        self.channels: list[int] = []
        remaining = n_group
        for k in range(n_flows):
            if self._emits_early(k):
                remaining -= n_early_size
            if remaining < 2:
                raise ValueError(
                    f"n_flows {n_flows}, n_early_every {n_early_every}, n_early_size "
                    f"{n_early_size} leave {remaining} channel(s) of n_group {n_group} at flow "
                    f"{k}; a coupling needs two"
                )
            self.channels.append(remaining)
            self.convs.append(Invertible1x1Conv(remaining))
            self.couplings.append(
                AffineCoupling(remaining, n_mels * n_group, n_layers, n_channels, kernel_size)
            )

    def _emits_early(self, k: int) -> bool:
        return k > 0 and self.n_early_every > 0 and k % self.n_early_every == 0

    def condition(self, mel: torch.Tensor, samples: int | None = None) -> torch.Tensor:
        """The mel upsampled to one vector per sample and squeezed: (B, n_mels, F) ->
        (B, n_mels * n_group, S // n_group), with ``S = samples`` (at most ``F * hop``) or,
        when ``None``, ``F * hop``."""
        upsampled = self.upsample(mel)  # (B, n_mels, F * hop)
        steps = mel.shape[2] * (self.hop_length // self.n_group)
        if samples is not None and samples != upsampled.shape[2]:
            upsampled = upsampled[:, :, :samples]
            steps = samples // self.n_group
        batch = mel.shape[0]
        groups = upsampled.reshape(batch, self.n_mels, steps, self.n_group)  # (B, M, S/g, g)
        # (B, M, S/g, g) -> (B, M, g, S/g) -> (B, M*g, S/g): channel m * g + j
        return groups.transpose(2, 3).reshape(batch, self.n_mels * self.n_group, steps)

    def forward(
        self, audio: torch.Tensor, mel: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Audio -> noise (training direction).

        Returns:
            ``z`` (B, n_group, S // n_group): the early outputs in order, then the last flow's
            channels; the ``log s`` of each coupling; ``log|det W|`` of each 1x1 convolution
            (per time step).

        Shapes:
            audio (B, S) with ``S`` a multiple of ``n_group``; mel (B, n_mels, F) with
            ``F * hop >= S``.
        """
        cond = self.condition(mel, audio.shape[1])
        x = squeeze(audio, self.n_group)  # (B, g, S/g)
        early: list[torch.Tensor] = []
        log_s_all: list[torch.Tensor] = []
        log_det_all: list[torch.Tensor] = []
        for k, (conv, coupling) in enumerate(zip(self.convs, self.couplings, strict=True)):
            if self._emits_early(k):
                early.append(x[:, : self.n_early_size])
                x = x[:, self.n_early_size :]
            x, log_det = conv(x)
            x, log_s = coupling(x, cond)
            log_s_all.append(log_s)
            log_det_all.append(log_det)
        return torch.cat([*early, x], dim=1), log_s_all, log_det_all

    def inverse_weights(self) -> list[torch.Tensor]:
        """``W^-1`` of every 1x1 convolution, in flow order (for :meth:`infer`)."""
        return [cast(Invertible1x1Conv, conv).inverse_weight() for conv in self.convs]

    def infer(
        self,
        mel: torch.Tensor,
        z: torch.Tensor,
        inverse_weights: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Noise -> audio: every step inverted, in reverse order.

        Args:
            mel: (B, n_mels, F) log-mel spectrograms.
            z: (B, n_group, F * hop // n_group) the latent noise (``sigma * N(0, 1)``), laid
                out as :meth:`forward` returns it.
            inverse_weights: ``W^-1`` of each 1x1 convolution (:meth:`inverse_weights`);
                computed here when ``None``.

        Returns:
            audio (B, F * hop).
        """
        if inverse_weights is None:
            inverse_weights = self.inverse_weights()
        cond = self.condition(mel)
        start = self.n_group - self.channels[-1]
        x = z[:, start:]
        for k in range(self.n_flows - 1, -1, -1):
            x = cast(AffineCoupling, self.couplings[k]).inverse(x, cond)
            x = cast(Invertible1x1Conv, self.convs[k]).inverse(x, inverse_weights[k])
            if self._emits_early(k):
                start -= self.n_early_size
                x = torch.cat([z[:, start : start + self.n_early_size], x], dim=1)
        return unsqueeze(x)


def flow_nll(
    z: torch.Tensor,
    log_s: Sequence[torch.Tensor],
    log_det_w: Sequence[torch.Tensor],
    sigma: float = 1.0,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """WaveGlow's negative log-likelihood per audio sample (nats, the constant
    ``log(sigma * sqrt(2 pi))`` left out): ``(sum z^2 / (2 sigma^2) - sum log s - T * sum
    log|det W|) / samples``.

    Args:
        z, log_s, log_det_w: as :meth:`WaveGlow.forward` returns them.
        sigma: the standard deviation of the latent Gaussian.
        lengths: (B,) real samples per item (multiples of ``n_group``); padding beyond them
            is left out of the sums. ``None``: every sample counts.

    Shapes:
        z (B, n_group, T); each log s (B, c, T) -> a scalar.
    """
    batch, n_group, steps = z.shape
    if lengths is None:
        mask = torch.ones(batch, 1, steps, dtype=z.dtype, device=z.device)
    else:
        positions = torch.arange(steps, device=z.device)[None, None, :]
        mask = (positions < (lengths // n_group)[:, None, None]).to(z.dtype)  # (B, 1, T)
    valid_steps = mask.sum()
    squares = (z * z * mask).sum() / (2.0 * sigma * sigma)
    log_scale = sum((s * mask).sum() for s in log_s)
    log_det = valid_steps * sum(log_det_w)
    return (squares - log_scale - log_det) / (valid_steps * n_group)
