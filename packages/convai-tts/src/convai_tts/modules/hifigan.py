"""HiFi-GAN's networks (Kong et al., 2020): the generator that turns a log-mel spectrogram into a
waveform, and the two critics it is trained against.

Generator: a 7-tap convolution to ``upsample_initial_channel`` channels, then for each upsampling
rate a leaky ReLU (slope 0.1), a transposed convolution that multiplies the time axis by the rate
and halves the channels, and the average of several multi-receptive-field residual blocks (one
per kernel size, each a stack of dilated convolutions); at the end a leaky ReLU, a 7-tap
convolution to one channel and ``tanh``. The product of the rates is the mel hop (256 for
22.05 kHz). Every convolution carries weight normalization while training;
:meth:`HifiGanGenerator.remove_weight_norm` folds it into plain weights for inference and export.

The parameter names follow the layout of the released V1 generators (``conv_pre``, ``ups.N``,
``resblocks.N.convs1.M`` / ``convs2.M``, ``conv_post``), so :func:`load_generator_state` can read
their checkpoints after renaming the weight-norm tensors (``weight_g`` / ``weight_v``).

Critics: the multi-period discriminator looks at the waveform folded into 2-D with periods 2, 3,
5, 7 and 11; the multi-scale discriminator at the waveform and two average-pooled versions of it.
Each returns its scores and the feature maps of every layer (for the feature-matching loss).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

__all__ = [
    "HifiGanGenerator",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "discriminator_loss",
    "feature_loss",
    "generator_adversarial_loss",
    "load_generator_state",
]

SLOPE = 0.1


def _same_padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


def _normal_init(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Conv1d | nn.ConvTranspose1d):
            nn.init.normal_(layer.weight, 0.0, 0.01)


class _ResidualBlock(nn.Module):
    """Pairs of (dilated conv, conv) with leaky ReLUs, each pair a residual step."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same_padding(kernel, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=_same_padding(kernel)) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2, strict=True):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, SLOPE)), SLOPE))
        return x


class HifiGanGenerator(nn.Module):
    """Log-mel (B, n_mels, F) -> waveform (B, 1, F * prod(upsample_rates)) in [-1, 1].

    The defaults are the V1 generator (13.9M parameters).
    """

    def __init__(
        self,
        n_mels: int = 80,
        upsample_rates: Sequence[int] = (8, 8, 2, 2),
        upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4),
        upsample_initial_channel: int = 512,
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    ) -> None:
        super().__init__()
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes must have the same length")
        if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        self.settings = {
            "n_mels": n_mels,
            "upsample_rates": tuple(upsample_rates),
            "upsample_kernel_sizes": tuple(upsample_kernel_sizes),
            "upsample_initial_channel": upsample_initial_channel,
            "resblock_kernel_sizes": tuple(resblock_kernel_sizes),
            "resblock_dilation_sizes": tuple(tuple(d) for d in resblock_dilation_sizes),
        }
        self.hop = 1
        for rate in upsample_rates:
            self.hop *= int(rate)
        self.kernels = len(resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(n_mels, upsample_initial_channel, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes, strict=True):
            self.ups.append(
                nn.ConvTranspose1d(
                    channels, channels // 2, kernel, stride=rate, padding=(kernel - rate) // 2
                )
            )
            channels //= 2
            for size, dilations in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(_ResidualBlock(channels, size, dilations))
        self.conv_post = nn.Conv1d(channels, 1, 7, padding=3)
        _normal_init(self.ups)
        _normal_init(self.resblocks)
        _normal_init(self.conv_post)
        self._weight_norm = False

    def _convolutions(self) -> list[nn.Module]:
        layers: list[nn.Module] = [self.conv_pre, *self.ups, self.conv_post]
        for block in self.resblocks:
            assert isinstance(block, _ResidualBlock)
            layers += [*block.convs1, *block.convs2]
        return layers

    def apply_weight_norm(self) -> HifiGanGenerator:
        """Put weight normalization on every convolution (for training)."""
        if not self._weight_norm:
            for layer in self._convolutions():
                weight_norm(layer)
            self._weight_norm = True
        return self

    def remove_weight_norm(self) -> HifiGanGenerator:
        """Fold weight normalization into the weights (for inference and export)."""
        if self._weight_norm:
            for layer in self._convolutions():
                parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
            self._weight_norm = False
        return self

    def folded_copy(self) -> HifiGanGenerator:
        """A new generator without weight normalization computing the same function (this one
        is left as it is; removing a parametrization from a deep copy would also strip the
        shared parametrized class of this one's weights)."""
        plain = HifiGanGenerator(**self.settings)  # type: ignore[arg-type]
        with torch.no_grad():
            for source, target in zip(self._convolutions(), plain._convolutions(), strict=True):
                assert isinstance(source, nn.Conv1d | nn.ConvTranspose1d)
                assert isinstance(target, nn.Conv1d | nn.ConvTranspose1d)
                target.weight.copy_(source.weight)
                if source.bias is not None and target.bias is not None:
                    target.bias.copy_(source.bias)
        return plain.to(next(self.parameters()).device)

    @property
    def has_weight_norm(self) -> bool:
        return self._weight_norm

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for level, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, SLOPE))
            blocks = self.resblocks[level * self.kernels : (level + 1) * self.kernels]
            total = blocks[0](x)
            for block in blocks[1:]:
                total = total + block(x)
            x = total / self.kernels
        # the released generators use leaky ReLU's default slope (0.01) before the last layer
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


def load_generator_state(
    generator: HifiGanGenerator, state: Mapping[str, torch.Tensor], source: str
) -> None:
    """Load a released HiFi-GAN generator state dict (weight-norm tensors ``weight_g`` and
    ``weight_v``, or plain ``weight``) into ``generator``, whichever form it is in.

    Raises:
        ValueError: names or shapes differ (the message names them and ``source``).
    """
    target = generator.state_dict()
    renamed: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name.endswith(".weight_g") or name.endswith(".weight_v"):
            stem, kind = name.rsplit(".", 1)
            if generator.has_weight_norm:
                index = "0" if kind == "weight_g" else "1"
                renamed[f"{stem}.parametrizations.weight.original{index}"] = tensor
            elif kind == "weight_v":
                g = state[f"{stem}.weight_g"]
                norm = tensor.flatten(1).norm(dim=1).reshape(g.shape)
                renamed[f"{stem}.weight"] = tensor * (g / norm)
        elif generator.has_weight_norm and name.endswith(".weight") and name not in target:
            stem = name[: -len(".weight")]
            weight = tensor
            norm = weight.flatten(1).norm(dim=1).reshape(-1, *([1] * (weight.dim() - 1)))
            renamed[f"{stem}.parametrizations.weight.original0"] = norm
            renamed[f"{stem}.parametrizations.weight.original1"] = weight
        else:
            renamed[name] = tensor
    missing = sorted(set(target) - set(renamed))
    unexpected = sorted(set(renamed) - set(target))
    if missing or unexpected:
        raise ValueError(
            f"{source}: not a generator of this shape (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}); check the generator settings (upsample rates, kernels, channels)"
        )
    wrong = [n for n, t in renamed.items() if tuple(t.shape) != tuple(target[n].shape)]
    if wrong:
        raise ValueError(
            f"{source}: tensor shapes differ for {wrong[:5]} (e.g. {tuple(renamed[wrong[0]].shape)}"
            f" vs {tuple(target[wrong[0]].shape)}); check n_mels and the channel settings"
        )
    generator.load_state_dict(renamed)


# ---------------------------------------------------------------------- critics
def _scaled(channels: int, width: float) -> int:
    return max(4, round(channels * width))


class _PeriodCritic(nn.Module):
    def __init__(self, period: int, width: float = 1.0, kernel: int = 5, stride: int = 3):
        super().__init__()
        self.period = period
        pad = (_same_padding(kernel), 0)
        widths = (1, *(_scaled(c, width) for c in (32, 128, 512, 1024)))
        top = widths[-1]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (kernel, 1), (stride, 1), padding=pad))
            for a, b in itertools.pairwise(widths)
        )
        self.convs.append(weight_norm(nn.Conv2d(top, top, (kernel, 1), 1, padding=pad)))
        self.conv_post = weight_norm(nn.Conv2d(top, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batch, channels, length = audio.shape
        if length % self.period:
            extra = self.period - length % self.period
            audio = F.pad(audio, (0, extra), mode="reflect" if length > extra else "constant")
            length += extra
        x = audio.view(batch, channels, length // self.period, self.period)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), SLOPE)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return x.flatten(1), features


class _ScaleCritic(nn.Module):
    def __init__(self, spectral: bool = False, width: float = 1.0) -> None:
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        # (in, out, kernel, stride, groups) of the paper's critic
        layout = (
            (1, 128, 15, 1, 1),
            (128, 128, 41, 2, 4),
            (128, 256, 41, 2, 16),
            (256, 512, 41, 4, 16),
            (512, 1024, 41, 4, 16),
            (1024, 1024, 41, 1, 16),
            (1024, 1024, 5, 1, 1),
        )
        convs = []
        for a, b, k, s, g in layout:
            a, b = (a if a == 1 else _scaled(a, width)), _scaled(b, width)
            groups = math.gcd(math.gcd(a, b), g)
            convs.append(norm(nn.Conv1d(a, b, k, s, groups=groups, padding=k // 2)))
        self.convs = nn.ModuleList(convs)
        self.conv_post = norm(nn.Conv1d(_scaled(1024, width), 1, 3, 1, padding=1))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = audio
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), SLOPE)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return x.flatten(1), features


Scores = tuple[
    list[torch.Tensor], list[torch.Tensor], list[list[torch.Tensor]], list[list[torch.Tensor]]
]


class MultiPeriodDiscriminator(nn.Module):
    """Critics of the waveform folded with each period (``width`` scales their channels)."""

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), width: float = 1.0) -> None:
        super().__init__()
        self.critics = nn.ModuleList(_PeriodCritic(int(p), width) for p in periods)

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> Scores:
        """Scores and feature maps of each critic for real and generated audio (B, 1, T)."""
        return _run(self.critics, real, fake, [None] * len(self.critics))


class MultiScaleDiscriminator(nn.Module):
    """Critics of the waveform and of it average-pooled by 2 and by 4 (the first critic uses
    spectral normalization, as in the paper). ``width`` scales every layer's channels (1.0: the
    paper's; small values make tiny test configs)."""

    def __init__(self, scales: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.critics = nn.ModuleList(
            _ScaleCritic(spectral=i == 0, width=width) for i in range(scales)
        )
        self.pools = nn.ModuleList(nn.AvgPool1d(4, 2, padding=2) for _ in range(scales - 1))

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> Scores:
        return _run(self.critics, real, fake, [None, *self.pools])


def _run(
    critics: nn.ModuleList,
    real: torch.Tensor,
    fake: torch.Tensor,
    pools: Sequence[nn.Module | None],
) -> Scores:
    real_scores, fake_scores, real_features, fake_features = [], [], [], []
    for critic, pool in zip(critics, pools, strict=True):
        if pool is not None:
            real, fake = pool(real), pool(fake)
        score, features = critic(real)
        real_scores.append(score)
        real_features.append(features)
        score, features = critic(fake)
        fake_scores.append(score)
        fake_features.append(features)
    return real_scores, fake_scores, real_features, fake_features


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN loss of the critics: real scores towards 1, generated towards 0."""
    total = real[0].new_zeros(())
    for r, f in zip(real, fake, strict=True):
        total = total + torch.mean((1.0 - r) ** 2) + torch.mean(f**2)
    return total


def generator_adversarial_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN loss of the generator: its scores towards 1."""
    total = fake[0].new_zeros(())
    for f in fake:
        total = total + torch.mean((1.0 - f) ** 2)
    return total


def feature_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 distance between the critics' feature maps of real and generated audio (x 2)."""
    total = fake[0][0].new_zeros(())
    for real_maps, fake_maps in zip(real, fake, strict=True):
        for r, f in zip(real_maps, fake_maps, strict=True):
            total = total + torch.mean(torch.abs(r.detach() - f))
    return 2.0 * total
