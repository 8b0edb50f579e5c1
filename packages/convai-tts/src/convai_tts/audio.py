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

__all__ = ["GriffinLim", "MelConfig", "MelSpectrogram"]

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
