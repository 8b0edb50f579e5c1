"""Mel spectrograms as TTS models predict them, and their inversion to audio.

The settings are HiFi-GAN's (22.05 kHz, 1024-point FFT, hop 256, 80 Slaney mel bands up to 8 kHz,
magnitude spectrum, natural log clamped at 1e-5, the signal padded by ``(n_fft - hop) / 2`` on each
side): a clip of ``n * hop`` samples gives exactly ``n`` frames, so per-phoneme frame counts from a
teacher sum to the spectrogram's length, and pretrained HiFi-GAN generators can read our mels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from convai_core.errors import ConfigError

__all__ = ["GriffinLim", "MelConfig", "MelSpectrogram", "pitch_track", "symbol_pitch"]

LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, path: str = "model.mel") -> MelConfig:
        values = dict(values or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def log_floor(self) -> float:
        return float(torch.log(torch.tensor(LOG_FLOOR)))


def _mel_filters(cfg: MelConfig) -> torch.Tensor:
    import torchaudio

    return torchaudio.functional.melscale_fbanks(
        cfg.n_fft // 2 + 1, cfg.f_min, cfg.f_max, cfg.n_mels, cfg.sample_rate, "slaney", "slaney"
    ).T.contiguous()  # (n_mels, n_freqs)


class MelSpectrogram(nn.Module):
    """Waveforms (B, samples) -> log-mel (B, n_mels, samples // hop)."""

    filters: torch.Tensor
    window: torch.Tensor

    def __init__(self, cfg: MelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or MelConfig()
        self.register_buffer("filters", _mel_filters(self.cfg), persistent=False)
        self.register_buffer("window", torch.hann_window(self.cfg.win_length), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        pad = (cfg.n_fft - cfg.hop_length) // 2
        mode = "reflect" if audio.shape[-1] > pad else "constant"  # reflect needs > pad samples
        padded = nn.functional.pad(audio.unsqueeze(1), (pad, pad), mode=mode).squeeze(1)
        spec = torch.stft(
            padded,
            cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window,
            center=False,
            return_complex=True,
        ).abs()
        return torch.log(torch.clamp(self.filters @ spec, min=LOG_FLOOR))

    def frames(self, samples: int) -> int:
        """How many frames a clip of ``samples`` gives."""
        cfg = self.cfg
        pad = (cfg.n_fft - cfg.hop_length) // 2
        return (samples + 2 * pad - cfg.n_fft) // cfg.hop_length + 1


class GriffinLim(nn.Module):
    """Log-mel -> waveform without a trained vocoder: the mel bands are mapped back to a linear
    magnitude spectrum by non-negative least squares (the filterbank's pseudo-inverse, clamped),
    then the phase is estimated by Griffin-Lim iterations (torchaudio's).

    Args:
        cfg: the mel settings the spectrogram was made with.
        n_iter: Griffin-Lim iterations (32 is intelligible; more is slightly cleaner and slower).
        power: the magnitude is raised to this before phase estimation (1.2-1.5 sharpens it).
    """

    inverse: torch.Tensor

    def __init__(self, cfg: MelConfig | None = None, n_iter: int = 32, power: float = 1.3):
        super().__init__()
        import torchaudio

        self.cfg = cfg or MelConfig()
        self.power = float(power)
        filters = _mel_filters(self.cfg)
        self.register_buffer("inverse", torch.linalg.pinv(filters), persistent=False)
        self.griffin_lim = torchaudio.transforms.GriffinLim(
            n_fft=self.cfg.n_fft,
            n_iter=int(n_iter),
            win_length=self.cfg.win_length,
            hop_length=self.cfg.hop_length,
            power=1.0,
        )

    @torch.no_grad()
    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) or (n_mels, T) -> (B, samples) or (samples,)."""
        squeeze = log_mel.dim() == 2
        mel = torch.exp(log_mel if not squeeze else log_mel.unsqueeze(0)).float()
        magnitude = torch.clamp(self.inverse @ mel, min=0.0) ** self.power
        audio = self.griffin_lim(magnitude)
        peak = audio.abs().amax(dim=-1, keepdim=True).clamp(min=1e-4)
        audio = audio * torch.clamp(0.95 / peak, max=1.0)
        return audio.squeeze(0) if squeeze else audio


def pitch_track(
    audio: torch.Tensor,
    cfg: MelConfig | None = None,
    *,
    f_min: float = 60.0,
    f_max: float = 500.0,
    threshold: float = 0.15,
) -> torch.Tensor:
    """Fundamental frequency (Hz) of each mel frame of ``audio`` (samples,), 0 where unvoiced.

    YIN (de Cheveigné and Kawahara, 2002) on frames of ``n_fft`` samples placed like
    :class:`MelSpectrogram`'s, so frame ``i`` of the pitch track is frame ``i`` of the mel: the
    squared-difference function over half a frame (computed with FFTs), normalized by its
    running mean; the period is the first lag between ``1 / f_max`` and ``1 / f_min`` where
    that falls under ``threshold`` and stops falling, refined by a parabola. A frame with no
    such lag, or one 40 dB quieter than the loudest frame, is unvoiced.
    """
    cfg = cfg or MelConfig()
    audio = audio.float().reshape(-1)
    size, hop = cfg.n_fft, cfg.hop_length
    pad = (size - hop) // 2
    mode = "reflect" if audio.numel() > pad else "constant"
    padded = nn.functional.pad(audio[None, None], (pad, pad), mode=mode)[0, 0]
    if padded.numel() < size:
        padded = nn.functional.pad(padded, (0, size - padded.numel()))
    frames = padded.unfold(0, size, hop)  # (F, size)
    window = size // 2
    lag_max = int(cfg.sample_rate / f_min)
    lag_min = max(int(cfg.sample_rate / f_max), 2)
    if lag_max > window - 2 or lag_min >= lag_max:
        raise ConfigError(
            f"pitch_track: frames of n_fft={size} samples at {cfg.sample_rate} Hz are too short "
            f"for pitch down to f_min={f_min:g} Hz (or f_min >= f_max); use n_fft >= "
            f"{2 * (lag_max + 2)} or a higher f_min"
        )
    head = frames[:, :window]
    # r(tau) = sum_j x_j x_{j+tau} for j < window, by FFT
    length = 2 * size
    spectrum = torch.fft.rfft(frames, length) * torch.conj(torch.fft.rfft(head, length))
    r = torch.fft.irfft(spectrum, length)[:, :window]
    energy = torch.cumsum(nn.functional.pad(frames**2, (1, 0)), dim=1)  # prefix sums
    lags = torch.arange(window)
    e_tau = energy[:, lags + window] - energy[:, lags]  # sum of x_{j+tau}^2, j < window
    difference = (energy[:, window : window + 1] + e_tau - 2.0 * r).clamp(min=0.0)
    running = torch.cumsum(difference[:, 1:], dim=1) / torch.arange(1, window)
    normalized = torch.ones_like(difference)
    normalized[:, 1:] = difference[:, 1:] / running.clamp(min=1e-12)
    part = normalized[:, lag_min : lag_max + 2]
    dip = (part[:, :-1] < threshold) & (part[:, :-1] <= part[:, 1:])
    found = dip.any(dim=1)
    first = dip.float().argmax(dim=1)
    tau = (first + lag_min).clamp(min=1, max=window - 2)
    rows = torch.arange(frames.shape[0])
    left, centre, right = (normalized[rows, tau + k] for k in (-1, 0, 1))
    curvature = left - 2.0 * centre + right
    shift = torch.where(curvature.abs() > 1e-9, 0.5 * (left - right) / curvature, 0.0)
    period = tau.float() + shift.clamp(-1.0, 1.0)
    loudness = frames.pow(2).mean(dim=1)
    loud = loudness > loudness.max() * 1e-4
    return torch.where(found & loud, cfg.sample_rate / period, torch.zeros_like(period))


def symbol_pitch(frame_pitch: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
    """Mean pitch (Hz) of each symbol's voiced frames (0 for a symbol with none).

    Args:
        frame_pitch: (F,) pitch of each frame, 0 where unvoiced.
        durations: (T,) frames of each symbol, summing to at most F.
    """
    owner = torch.repeat_interleave(torch.arange(durations.numel()), durations.long())
    values = frame_pitch[: owner.numel()]
    if values.numel() < owner.numel():  # durations past the track's end: those frames unvoiced
        values = nn.functional.pad(values, (0, owner.numel() - values.numel()))
    voiced = (values > 0).float()
    total = torch.zeros(durations.numel()).index_add_(0, owner, values * voiced)
    count = torch.zeros(durations.numel()).index_add_(0, owner, voiced)
    return torch.where(count > 0, total / count.clamp(min=1.0), torch.zeros_like(total))
