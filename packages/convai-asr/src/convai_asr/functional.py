"""Stateless tensor math of convai-asr: masks, features, spectrogram augmentations.

Every function is pure (no parameters, no module state); the ``nn.Module`` classes in
:mod:`convai_asr.modules` and :mod:`convai_asr.augment` hold buffers and configuration and
delegate here. Call them with keyword arguments.

Legend for the ``Shapes:`` sections: ``B`` batch, ``T`` audio samples or frames, ``F`` frequency
bins (linear or mel), ``C`` channels, ``M`` masks per item.

Nothing here branches in Python on tensor *values*, so the feature path traces with
``torch.export`` / ``torch.onnx.export(dynamo=True)`` with dynamic batch and time axes.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F

from convai_core.fast_paths import cpu_fast_path_applies

__all__ = [
    "apply_preemphasis",
    "conv_output_lengths",
    "cutout_mask",
    "frame_lengths",
    "lengths_to_mask",
    "log_compress",
    "mel_spectrogram",
    "normalize_features",
    "pad_time_to_multiple",
    "power_spectrogram",
    "slaney_mel_filterbank",
    "spec_augment_mask",
]

#: Added to the standard deviation in feature normalization, so that silent bins stay finite.
NORMALIZE_EPS = 1e-5


# -- lengths and masks -----------------------------------------------------------------------


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """A boolean mask that is True on the valid steps of each item.

    Args:
        lengths: number of valid steps per item.
        max_length: size of the time axis of the padded batch.

    Returns:
        ``mask[b, t] = t < lengths[b]``.

    Shapes:
        lengths: (B,) int -> mask: (B, T) bool with ``T = max_length``.
    """
    steps = torch.arange(max_length, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)  # (T,), (B,) -> (B, T)


def conv_output_lengths(
    lengths: torch.Tensor, *, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> torch.Tensor:
    """Valid output length of a 1-D convolution (or one axis of a 2-D one) per item.

    Args:
        lengths: valid input lengths.
        kernel_size: convolution kernel size.
        stride: convolution stride.
        padding: zero padding added on *each* side.
        dilation: convolution dilation.

    Returns:
        ``(lengths + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1``.

    Shapes:
        lengths: (B,) int -> (B,) int.
    """
    span = dilation * (kernel_size - 1) + 1
    if stride == 1 and 2 * padding == span - 1:  # "same" padding: lengths unchanged (and no
        return lengths  # arithmetic ops in exported graphs)
    return torch.div(lengths + 2 * padding - span, stride, rounding_mode="floor") + 1


# -- features --------------------------------------------------------------------------------


def apply_preemphasis(audio: torch.Tensor, *, coeff: float) -> torch.Tensor:
    """First-order pre-emphasis ``y[t] = x[t] - coeff * x[t - 1]`` (``y[0] = x[0]``).

    Args:
        audio: waveforms.
        coeff: the filter coefficient (0.97 usually); 0 returns the input unchanged.

    Shapes:
        audio: (B, T) -> (B, T).
    """
    return torch.cat([audio[:, :1], audio[:, 1:] - coeff * audio[:, :-1]], dim=1)


def frame_lengths(lengths: torch.Tensor, *, hop_length: int) -> torch.Tensor:
    """Number of STFT frames (``center=True``) that cover each item's valid samples.

    Args:
        lengths: valid samples per item.
        hop_length: samples between frames.

    Shapes:
        lengths: (B,) int -> (B,) int64.
    """
    return torch.div(lengths, hop_length, rounding_mode="floor").long() + 1


def power_spectrogram(
    audio: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int,
    window: torch.Tensor,
    mag_power: float = 2.0,
) -> torch.Tensor:
    """Magnitude spectrogram raised to ``mag_power`` (2: power, 1: magnitude).

    The STFT is centred (``center=True``) with zero padding, so a frame near the end of an item
    sees zeros past the item whether it is alone or padded inside a batch.

    Args:
        audio: waveforms.
        n_fft: FFT size.
        hop_length: samples between frames.
        win_length: window length in samples (``<= n_fft``; the window is centred in the FFT).
        window: the analysis window, ``win_length`` samples.
        mag_power: exponent applied to the magnitude.

    Shapes:
        audio: (B, T) -> (B, n_fft // 2 + 1, T // hop_length + 1).
    """
    spectrum = torch.stft(
        audio,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    parts = torch.view_as_real(spectrum)  # (B, F, T) complex -> (B, F, T, 2) real
    if cpu_fast_path_applies(parts, inference=False):
        # re * re + im * im: about 6x faster on CPU than the reduction over a size-2 axis
        real, imag = parts[..., 0], parts[..., 1]  # 2 x (B, F, T)
        power = torch.addcmul(real * real, imag, imag)
    else:  # CUDA, exported graphs (one Pow and one ReduceSum), reference paths
        power = parts.pow(2).sum(dim=-1)  # (B, F, T, 2) -> (B, F, T)
    if mag_power == 2.0:
        return power
    return power.clamp_min(1e-20).pow(mag_power / 2.0)  # clamp: finite gradient at 0


_SLANEY_LINEAR_HZ = 200.0 / 3.0  # Hz per mel below 1 kHz
_SLANEY_LOG_START_HZ = 1000.0
_SLANEY_LOG_STEP = math.log(6.4) / 27.0  # mels per log-Hz above 1 kHz


def _hz_to_slaney_mel(hz: torch.Tensor) -> torch.Tensor:
    linear = hz / _SLANEY_LINEAR_HZ
    start = _SLANEY_LOG_START_HZ / _SLANEY_LINEAR_HZ
    logarithmic = start + torch.log(hz.clamp_min(1e-10) / _SLANEY_LOG_START_HZ) / _SLANEY_LOG_STEP
    return torch.where(hz >= _SLANEY_LOG_START_HZ, logarithmic, linear)


def _slaney_mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    start = _SLANEY_LOG_START_HZ / _SLANEY_LINEAR_HZ
    linear = mel * _SLANEY_LINEAR_HZ
    logarithmic = _SLANEY_LOG_START_HZ * torch.exp(_SLANEY_LOG_STEP * (mel - start))
    return torch.where(mel >= start, logarithmic, linear)


def slaney_mel_filterbank(
    *, n_fft: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular mel filters on the Slaney scale with Slaney area normalization.

    The Auditory Toolbox's scale (linear below 1 kHz, logarithmic above) with each filter scaled
    by ``2 / (upper edge - lower edge)``: the filterbank librosa computes by default and NeMo
    saves in its checkpoints. Computed in float64 and rounded to float32 at the same two points
    as librosa (after the triangles, after the normalization): the values equal the filterbanks
    NeMo 3.0 saves bit for bit (checked on 64 and 80 bins; torchaudio's differ by up to 7e-8).

    Args:
        n_fft: FFT size (``n_fft // 2 + 1`` frequency bins).
        n_mels: number of filters.
        sample_rate: sample rate in Hz.
        f_min: lowest edge in Hz.
        f_max: highest edge in Hz; default ``sample_rate / 2``.

    Shapes:
        -> (n_mels, n_fft // 2 + 1) float32.
    """
    top = float(sample_rate) / 2 if f_max is None else float(f_max)
    bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (float(sample_rate) / n_fft)
    edges = torch.tensor([float(f_min), top], dtype=torch.float64)
    low_mel, high_mel = _hz_to_slaney_mel(edges).tolist()
    centres = _slaney_mel_to_hz(torch.linspace(low_mel, high_mel, n_mels + 2, dtype=torch.float64))
    widths = centres[1:] - centres[:-1]  # (n_mels + 1,)
    offsets = centres.unsqueeze(1) - bins.unsqueeze(0)  # (n_mels + 2, F)
    rising = -offsets[:-2] / widths[:-1].unsqueeze(1)  # (n_mels, F)
    falling = offsets[2:] / widths[1:].unsqueeze(1)  # (n_mels, F)
    triangles = torch.minimum(rising, falling).clamp_min(0.0).to(torch.float32)
    area = 2.0 / (centres[2:] - centres[:-2])  # (n_mels,)
    return (triangles.to(torch.float64) * area.unsqueeze(1)).to(torch.float32)


def mel_spectrogram(spectrogram: torch.Tensor, *, filterbank: torch.Tensor) -> torch.Tensor:
    """Project a linear-frequency spectrogram onto mel bins.

    Args:
        spectrogram: power or magnitude spectrogram.
        filterbank: mel filters, one row per mel bin (see :func:`slaney_mel_filterbank`).

    Shapes:
        spectrogram: (B, F, T), filterbank: (n_mels, F) -> (B, n_mels, T).
    """
    return torch.matmul(filterbank, spectrogram)


def log_compress(features: torch.Tensor, *, zero_guard: float) -> torch.Tensor:
    """``log(features + zero_guard)``; the guard keeps silent bins finite.

    Shapes:
        features: any -> same.
    """
    return torch.log(features + zero_guard)


def normalize_features(
    features: torch.Tensor, *, lengths: torch.Tensor, mode: str | None
) -> torch.Tensor:
    """Normalize each utterance to zero mean and unit variance over its valid frames.

    Padding frames play no part in the statistics (they are still shifted and scaled; mask them
    afterwards). The variance is the unbiased one, and ``NORMALIZE_EPS`` is added to the standard
    deviation.

    Args:
        features: log-mel features.
        lengths: valid frames per item.
        mode: ``"per_feature"`` (statistics per bin and utterance), ``"all_features"`` (one mean
            and std per utterance, over every bin) or ``None`` (unchanged).

    Raises:
        ValueError: an unknown ``mode``.

    Shapes:
        features: (B, F, T), lengths: (B,) -> (B, F, T).
    """
    if mode is None:
        return features
    if mode not in ("per_feature", "all_features"):
        raise ValueError(
            f"normalize={mode!r} is not a feature normalization; use 'per_feature', "
            "'all_features' or None."
        )
    valid = lengths_to_mask(lengths, features.shape[-1]).unsqueeze(1)  # (B, T) -> (B, 1, T)
    valid = valid.to(features.dtype)
    dims = (-1,) if mode == "per_feature" else (-2, -1)
    count = valid.sum(dim=-1, keepdim=True)  # (B, 1, 1): valid frames
    if mode == "all_features":
        count = count * features.shape[-2]
    mean = (features * valid).sum(dim=dims, keepdim=True) / count.clamp_min(1.0)
    squares = ((features - mean) * valid).pow(2).sum(dim=dims, keepdim=True)
    std = torch.sqrt(squares / (count - 1.0).clamp_min(1.0)) + NORMALIZE_EPS
    return (features - mean) / std


def pad_time_to_multiple(
    features: torch.Tensor, *, multiple: int, value: float = 0.0
) -> torch.Tensor:
    """Pad the last axis with ``value`` up to a multiple of ``multiple`` (0 or 1: unchanged).

    Shapes:
        features: (..., T) -> (..., ceil(T / multiple) * multiple).
    """
    if multiple <= 1:
        return features
    missing = (-features.shape[-1]) % multiple
    return F.pad(features, (0, missing), value=value)


# -- spectrogram augmentation ----------------------------------------------------------------


def _random_ints(
    high: torch.Tensor, *, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """Uniform integers in ``[0, high]`` (inclusive), one per element of ``high``."""
    rng_device = generator.device if generator is not None else device
    draws = torch.rand(high.shape, generator=generator, device=rng_device).to(device)
    high = high.to(device)
    return torch.minimum((draws * (high + 1).to(draws.dtype)).long(), high.long())


def _band_mask(starts: torch.Tensor, widths: torch.Tensor, size: int) -> torch.Tensor:
    """True on ``[start, start + width)`` for each band, OR-ed over the bands of an item.

    Shapes:
        starts, widths: (B, M) -> (B, size) bool.
    """
    steps = torch.arange(size, device=starts.device).view(1, 1, size)  # (size,) -> (1, 1, size)
    starts = starts.unsqueeze(-1)  # (B, M) -> (B, M, 1)
    ends = starts + widths.unsqueeze(-1)  # (B, M) -> (B, M, 1)
    return ((steps >= starts) & (steps < ends)).any(dim=1)  # (B, M, size) -> (B, size)


def _random_bands(
    extent: torch.Tensor,
    max_width: torch.Tensor,
    count: int,
    *,
    generator: torch.Generator | None,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random bands per item, each inside ``[0, extent)``.

    Widths are uniform in ``[0, min(max_width, extent)]``, starts uniform where the band fits.

    Shapes:
        extent, max_width: (B,) -> starts, widths: (B, count).
    """
    batch = extent.shape[0]
    extent = extent.to(device).long().unsqueeze(1).expand(batch, count)  # (B,) -> (B, M)
    max_width = max_width.to(device).long().unsqueeze(1).expand(batch, count)  # (B,) -> (B, M)
    widths = _random_ints(torch.minimum(max_width, extent), generator=generator, device=device)
    starts = _random_ints(extent - widths, generator=generator, device=device)
    return starts, widths


def spec_augment_mask(
    spec: torch.Tensor,
    *,
    lengths: torch.Tensor,
    freq_masks: int,
    freq_width: int,
    time_masks: int,
    time_width: int | float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Where SpecAugment masks a batch: random frequency bands and time bands per item.

    Each item gets ``freq_masks`` bands of ``0..freq_width`` bins and ``time_masks`` bands of
    ``0..W`` frames, where ``W = time_width`` (an int) or ``max(1, int(time_width * length))``
    (a float fraction of the item's valid length). Time bands lie inside the valid frames, and
    the mask is False on padding frames.

    Args:
        spec: the spectrograms (only the shape and device are used).
        lengths: valid frames per item.
        freq_masks: frequency bands per item.
        freq_width: widest frequency band, in bins.
        time_masks: time bands per item.
        time_width: widest time band: frames (int) or a fraction of each item's length (float).
        generator: random source; ``None`` uses torch's global one.

    Returns:
        True where the spectrogram is to be masked.

    Shapes:
        spec: (B, F, T), lengths: (B,) -> (B, F, T) bool.
    """
    batch, n_freq, n_time = spec.shape
    device = spec.device
    lengths = lengths.to(device).long()
    valid = lengths_to_mask(lengths, n_time)  # (B, T)
    mask = torch.zeros(batch, n_freq, n_time, dtype=torch.bool, device=device)
    if freq_masks > 0:
        extent = torch.full((batch,), n_freq, dtype=torch.long, device=device)
        width = torch.full((batch,), int(freq_width), dtype=torch.long, device=device)
        starts, widths = _random_bands(
            extent, width, freq_masks, generator=generator, device=device
        )
        freq = _band_mask(starts, widths, n_freq)  # (B, F)
        mask = mask | freq.unsqueeze(-1)  # (B, F) -> (B, F, 1)
    if time_masks > 0:
        if isinstance(time_width, float):
            width = (lengths.to(torch.float32) * time_width).long().clamp_min(1)
        else:
            width = torch.full((batch,), int(time_width), dtype=torch.long, device=device)
        starts, widths = _random_bands(
            lengths, width, time_masks, generator=generator, device=device
        )
        time = _band_mask(starts, widths, n_time)  # (B, T)
        mask = mask | time.unsqueeze(1)  # (B, T) -> (B, 1, T)
    return mask & valid.unsqueeze(1)  # (B, T) -> (B, 1, T)


def cutout_mask(
    spec: torch.Tensor,
    *,
    lengths: torch.Tensor,
    rect_masks: int,
    rect_time: int,
    rect_freq: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Where SpecCutout masks a batch: random rectangles inside each item's valid frames.

    Each item gets ``rect_masks`` rectangles of ``0..rect_time`` frames by ``0..rect_freq`` bins.

    Args:
        spec: the spectrograms (only the shape and device are used).
        lengths: valid frames per item.
        rect_masks: rectangles per item.
        rect_time: widest rectangle along time, in frames.
        rect_freq: widest rectangle along frequency, in bins.
        generator: random source; ``None`` uses torch's global one.

    Returns:
        True where the spectrogram is to be masked.

    Shapes:
        spec: (B, F, T), lengths: (B,) -> (B, F, T) bool.
    """
    batch, n_freq, n_time = spec.shape
    device = spec.device
    lengths = lengths.to(device).long()
    if rect_masks <= 0:
        return torch.zeros(batch, n_freq, n_time, dtype=torch.bool, device=device)
    full_freq = torch.full((batch,), n_freq, dtype=torch.long, device=device)
    freq_width = torch.full((batch,), int(rect_freq), dtype=torch.long, device=device)
    time_width = torch.full((batch,), int(rect_time), dtype=torch.long, device=device)
    f_starts, f_widths = _random_bands(
        full_freq, freq_width, rect_masks, generator=generator, device=device
    )
    t_starts, t_widths = _random_bands(
        lengths, time_width, rect_masks, generator=generator, device=device
    )
    bins = torch.arange(n_freq, device=device).view(1, 1, n_freq)  # (F,) -> (1, 1, F)
    frames = torch.arange(n_time, device=device).view(1, 1, n_time)  # (T,) -> (1, 1, T)
    # (B, M) -> (B, M, 1) against (1, 1, F) / (1, 1, T): (B, M, F) and (B, M, T)
    in_freq = (bins >= f_starts.unsqueeze(-1)) & (bins < (f_starts + f_widths).unsqueeze(-1))
    in_time = (frames >= t_starts.unsqueeze(-1)) & (frames < (t_starts + t_widths).unsqueeze(-1))
    # (B, M, F, 1) & (B, M, 1, T) -> (B, M, F, T), any over the M rectangles -> (B, F, T)
    mask = (in_freq.unsqueeze(-1) & in_time.unsqueeze(-2)).any(dim=1)
    valid = lengths_to_mask(lengths, n_time)  # (B, T)
    return mask & valid.unsqueeze(1)  # (B, T) -> (B, 1, T)


def depthwise_conv1d_shifts(
    x: torch.Tensor,
    *,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    padding: int,
    stride: int = 1,
    dilation: int = 1,
    channels_last: bool = False,
) -> torch.Tensor:
    """Depthwise 1-D convolution as a sum of shifted, channel-scaled copies of the input.

    For the short sequences and wide kernels of speech encoders this runs a few times faster on
    CPU than the grouped convolution kernels (3-4x here for K = 33..87). It is meant for
    inference (each of the K shifts would be kept for backward); exported graphs use
    :func:`depthwise_conv1d_as_2d` instead (K slices would be K graph operations).

    Args:
        channels_last: ``x`` is (B, T, C) instead of (B, C, T), and so is the result.

    Shapes:
        x: (B, C, T) or, with ``channels_last``, (B, T, C); weight: (C, 1, K), bias: (C,)
        -> (B, C, T') or (B, T', C) with
        ``T' = (T + 2 * padding - dilation * (K - 1) - 1) // stride + 1``.
    """
    channels, kernel = weight.shape[0], weight.shape[-1]
    if channels_last:
        padded = F.pad(x, (0, 0, padding, padding))  # (B, T, C) -> (B, T + 2P, C)
        time_dim = 1
        taps = weight.view(channels, kernel).t().contiguous()  # (C, 1, K) -> (K, C)
        bias_shape: tuple[int, ...] = (1, 1, channels)
    else:
        padded = F.pad(x, (padding, padding))  # (B, C, T) -> (B, C, T + 2P)
        time_dim = 2
        taps = weight.view(1, channels, kernel, 1).movedim(2, 0)  # (C, 1, K) -> (K, 1, C, 1)
        bias_shape = (1, channels, 1)
    length = (padded.shape[time_dim] - dilation * (kernel - 1) - 1) // stride + 1
    span = (length - 1) * stride + 1
    lead = (slice(None),) * time_dim  # the axes before time

    out = padded[(*lead, slice(0, span, stride))] * taps[0]
    for k in range(1, kernel):
        start = k * dilation
        out = out.addcmul_(padded[(*lead, slice(start, start + span, stride))], taps[k])
    if bias is not None:
        out = out + bias.view(bias_shape)
    return out


def depthwise_conv1d_as_2d(x: torch.Tensor, conv: torch.nn.Conv1d) -> torch.Tensor:
    """A depthwise ``Conv1d`` run as a ``(1, K)`` 2-D convolution: the same values, and in ONNX
    runtimes (whose blocked depthwise kernels are 2-D) about twice as fast.

    Shapes:
        x: (B, C, T) -> (B, C, T')
    """
    out = F.conv2d(
        x.unsqueeze(2),  # (B, C, T) -> (B, C, 1, T)
        conv.weight.unsqueeze(2),  # (C, 1, K) -> (C, 1, 1, K)
        conv.bias,
        stride=(1, conv.stride[0]),
        padding=(0, cast("tuple[int, ...]", conv.padding)[0]),  # padding is numeric here
        dilation=(1, conv.dilation[0]),
        groups=conv.groups,
    )
    return out.squeeze(2)  # (B, C, 1, T') -> (B, C, T')
