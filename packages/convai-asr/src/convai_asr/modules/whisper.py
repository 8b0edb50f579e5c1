"""Whisper's audio encoder and its log-mel front end, as convai modules.

``asr/whisper_mel`` computes the features Whisper was trained on: a 400-point STFT every 10 ms
(Hann window), a Slaney mel filterbank (80 bins, 128 for large-v3), ``log10`` clamped at 1e-10,
a floor 8 below the utterance's maximum, then ``(x + 4) / 4``. Whisper pads every clip with
silence to 30 s; the frames past a clip's end here take the value silence has there (the floor),
so a clip gives the same frames alone as inside a padded batch.

``asr/whisper_encoder`` is the encoder of Whisper (Radford et al., 2022): two convolutions
(the second with stride 2, so one output frame per 20 ms), a fixed sinusoidal position table,
pre-norm transformer layers and a final layer norm. Weights come from a CTranslate2 model
(``pretrained: whisper-tiny.en``, ``whisper-base``, or a folder with ``model.bin``) or start
random from the sizes (``d_model``, ``n_layers``, ``n_heads``) for tests and from-scratch runs.

Inputs shorter than Whisper's 30 s window: ``window: clip`` (default) encodes only the clip's
frames, padded batches masked so that no frame attends past its clip; ``window: full`` pads the
features to 3000 frames with silence, as Whisper itself always does, and keeps the clip's
frames of the output. benchmarks/results/asr.md has the measured comparison.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torchaudio
from torch import nn

from convai_asr import functional as AF
from convai_asr.modules.encoder_ports import (
    encoder_input_ports,
    encoder_output_ports,
    mel_output_ports,
    waveform_input_ports,
)
from convai_core.types import (
    NeuralType,
    typed,
)

__all__ = ["WhisperEncoder", "WhisperMelPreprocessor"]

#: Whisper's window: 30 s of 10 ms frames.
CHUNK_FRAMES = 3000
WINDOW_MODES = ("clip", "full")


class WhisperMelPreprocessor(nn.Module):
    """Waveforms to Whisper's log-mel features.

    Args:
        sample_rate: must be 16000 (Whisper's rate); resample before.
        n_mels: 80 (tiny to large-v2) or 128 (large-v3).
        n_fft: FFT size (400).
        hop_length: samples between frames (160).

    Shapes:
        audio_signal: (B, T_samples), length: (B,)
        -> processed_signal: (B, n_mels, T_frames), processed_length: (B,)
        with ``processed_length = length // hop_length`` (Whisper drops the STFT's last frame).
    """

    filterbank: torch.Tensor
    window: torch.Tensor

    def __init__(
        self, sample_rate: int = 16000, n_mels: int = 80, n_fft: int = 400, hop_length: int = 160
    ) -> None:
        super().__init__()
        if sample_rate != 16000:
            raise ValueError(
                f"Whisper's features are defined at 16000 Hz; sample_rate={sample_rate}. Set "
                "model.sample_rate=16000 (audio at other rates is resampled when loaded)."
            )
        self.sample_rate, self.n_mels, self.n_fft, self.hop_length = (
            sample_rate,
            n_mels,
            n_fft,
            hop_length,
        )
        filterbank = torchaudio.functional.melscale_fbanks(
            n_freqs=n_fft // 2 + 1,
            f_min=0.0,
            f_max=sample_rate / 2,
            n_mels=n_mels,
            sample_rate=sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer("filterbank", filterbank.T.contiguous(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def frame_shift_s(self) -> float:
        return self.hop_length / self.sample_rate

    @property
    def input_ports(self) -> dict[str, NeuralType]:
        """``audio_signal`` (B, T) waveforms and ``length`` (B,) valid samples."""
        return waveform_input_ports(self.sample_rate)

    @property
    def output_ports(self) -> dict[str, NeuralType]:
        """``processed_signal`` (B, MEL, T) features and ``processed_length`` (B,) frames."""
        return mel_output_ports(self.n_mels)

    @typed
    def forward(
        self, audio_signal: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        audio = audio_signal.float()
        samples = audio.shape[-1]
        audio = audio.masked_fill(~AF.lengths_to_mask(length, samples), 0.0)
        half = self.n_fft // 2
        # Whisper's centred STFT reflects the clip's start; past the end it sees its own padding
        # (silence), so the end is padded with zeros: the same frames alone or in a batch.
        left = torch.flip(audio[:, 1 : half + 1], dims=[-1])
        audio = torch.cat([left, audio, audio.new_zeros(audio.shape[0], half)], dim=-1)
        # float64 up to the log: Whisper's floor sits 8 decades below the loudest bin, where
        # float32 rounding in the STFT would make the log (and any export of it) noisy
        spectrum = torch.stft(
            audio.double(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window.double(),
            center=False,
            return_complex=True,
        )  # (B, F, samples // hop + 1)
        power = spectrum.real**2 + spectrum.imag**2
        frames = samples // self.hop_length
        power = power[..., :frames]  # Whisper drops the last frame
        # (n_mels, F) @ (B, F, T) -> (B, n_mels, T)
        mel = torch.matmul(self.filterbank.double(), power)
        log_spec = torch.clamp(mel, min=1e-10).log10().float()
        processed_length = torch.div(length, self.hop_length, rounding_mode="floor")
        valid = AF.lengths_to_mask(processed_length, frames).unsqueeze(1)  # (B, 1, T)
        peak = log_spec.masked_fill(~valid, -1e4).amax(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        floor = peak - 8.0
        log_spec = torch.maximum(log_spec, floor)
        log_spec = torch.where(valid, log_spec, floor)  # silence past the clip, as Whisper's pad
        return (log_spec + 4.0) / 4.0, processed_length


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's position table (sin then cos halves). Shapes: -> (length, channels)."""
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float64))
    scaled = torch.arange(length, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1).float()


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder on ``feat_in`` log-mel bins.

    Args:
        feat_in: mel bins (supplied by the model from its preprocessor).
        pretrained: ``whisper-tiny.en``, ``whisper-base``, a CTranslate2 model folder or
            ``model.bin``; ``None`` starts from random weights of the given sizes.
        d_model, n_layers, n_heads: sizes when not pretrained (a pretrained model's own sizes win).
        max_frames: encoder frames of the position table (1500: 30 s).
        window: ``clip`` or ``full`` (see the module docstring).
        freeze: keep every encoder weight fixed in training.
        freeze_layers: keep the convolutions and the first N layers fixed (0: none).

    Shapes:
        audio_signal: (B, feat_in, T), length: (B,) -> encoded: (B, d_model, ceil(T / 2)),
        encoded_len: (B,).
    """

    #: Output frames per input frame (the second convolution's stride).
    stride = 2
    positions: torch.Tensor  # (max_frames, d_model) buffer

    def __init__(
        self,
        feat_in: int,
        pretrained: str | list[str] | None = None,
        d_model: int = 384,
        n_layers: int = 4,
        n_heads: int = 6,
        max_frames: int = CHUNK_FRAMES // 2,
        window: str = "clip",
        freeze: bool = False,
        freeze_layers: int = 0,
    ) -> None:
        super().__init__()
        if window not in WINDOW_MODES:
            raise ValueError(f"window={window!r}: use one of {', '.join(WINDOW_MODES)}.")
        state: dict[str, torch.Tensor] | None = None
        if pretrained:
            from convai_asr.pretrained.whisper import load_whisper_encoder

            if not isinstance(pretrained, str):
                pretrained = [str(p) for p in pretrained]  # parts of a split model.bin
            dims, state = load_whisper_encoder(pretrained)
            if dims["n_mels"] != feat_in:
                raise ValueError(
                    f"{pretrained} takes {dims['n_mels']} mel bins, the preprocessor gives "
                    f"{feat_in}; set model.preprocessor.n_mels={dims['n_mels']}."
                )
            d_model, n_layers, n_heads = dims["d_model"], dims["n_layers"], dims["n_heads"]
            max_frames = dims["max_frames"]
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}.")
        self.feat_in, self.d_model, self.n_layers, self.n_heads = (
            feat_in,
            d_model,
            n_layers,
            n_heads,
        )
        self.max_frames, self.window = max_frames, window
        self.conv1 = nn.Conv1d(feat_in, d_model, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d_model, d_model, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positions", sinusoids(max_frames, d_model))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model,
                n_heads,
                dim_feedforward=4 * d_model,
                dropout=0.0,
                activation="gelu",
                # time-major: attention's input projection is then one matrix product (with
                # batch-first inputs torch multiplies a transposed view by an expanded weight,
                # which under bf16 autocast copies that weight once per frame: 0.97 s a training
                # step against 0.43 s)
                batch_first=False,
                norm_first=True,
            )
            for _ in range(n_layers)
        )
        self.ln_post = nn.LayerNorm(d_model)
        if state is not None:
            self.load_state_dict(state)
        self.freeze = bool(freeze)
        self.freeze_layers = n_layers if freeze else int(freeze_layers)
        if not 0 <= self.freeze_layers <= n_layers:
            raise ValueError(f"freeze_layers={freeze_layers}: use 0..{n_layers}.")
        self._frozen: list[nn.Module] = []
        if self.freeze_layers:
            self._frozen = [self.conv1, self.conv2, *self.layers[: self.freeze_layers]]
            if freeze:
                self._frozen.append(self.ln_post)
            for module in self._frozen:
                module.requires_grad_(False)

    def train(self, mode: bool = True) -> WhisperEncoder:
        super().train(mode)
        for module in self._frozen:  # fixed parts stay in inference behaviour
            module.train(False)
        return self

    def config_for_archive(self) -> dict[str, Any]:
        """The node that rebuilds this encoder without its source (weights come from the archive)."""
        return {
            "name": "asr/whisper_encoder",
            "pretrained": None,
            "d_model": self.d_model,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "max_frames": self.max_frames,
            "window": self.window,
            "freeze": self.freeze,
            "freeze_layers": self.freeze_layers,
        }

    @property
    def input_ports(self) -> dict[str, NeuralType]:
        return encoder_input_ports(self.feat_in)

    @property
    def output_ports(self) -> dict[str, NeuralType]:
        return encoder_output_ports(self.d_model)

    @typed
    def forward(
        self, audio_signal: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        frames = audio_signal.shape[-1]
        limit = 2 * self.max_frames
        if frames > limit:
            raise ValueError(
                f"{frames} feature frames exceed Whisper's window of {limit} "
                f"({limit // 100} s); transcribe long audio in chunks (chunk_seconds)."
            )
        x = audio_signal
        if self.window == "full" and frames < limit:
            # silence as Whisper pads it: each item's floor value
            floor = audio_signal.amin(dim=(1, 2), keepdim=True)
            pad = floor.expand(-1, audio_signal.shape[1], limit - frames)
            x = torch.cat([audio_signal, pad], dim=-1)
        encoded_len = torch.div(length + 1, 2, rounding_mode="floor")
        mask = None
        if self.window == "clip":
            # a clip sees zeros past its end in the convolutions (their own padding) and no
            # frame past its end in attention: the same output alone or inside a batch
            valid = AF.lengths_to_mask(length, frames).unsqueeze(1)  # (B, 1, T)
            x = nn.functional.gelu(self.conv1(x.masked_fill(~valid, 0.0)))
            x = nn.functional.gelu(self.conv2(x.masked_fill(~valid, 0.0)))
            mask = ~AF.lengths_to_mask(encoded_len, x.shape[-1])  # True where padded
        else:
            x = nn.functional.gelu(self.conv1(x))
            x = nn.functional.gelu(self.conv2(x))  # (B, D, ceil(T / 2))
        x = x.permute(2, 0, 1)  # (B, D, T') -> (T', B, D)
        x = x + self.positions[: x.shape[0], None]
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=mask)
        x = self.ln_post(x)
        out_frames = (frames + 1) // 2
        x = x[:out_frames]
        x = x.masked_fill(~AF.lengths_to_mask(encoded_len, out_frames).t().unsqueeze(-1), 0.0)
        return x.permute(1, 2, 0), encoded_len
