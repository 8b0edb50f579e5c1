"""Audio to log-mel features: the preprocessor in front of every ASR encoder."""

from __future__ import annotations

import math

import torch
from torch import nn

from convai_asr import functional as AF
from convai_asr.modules.encoder_ports import mel_output_ports, waveform_input_ports
from convai_core.types import (
    NeuralType,
    typed,
)

__all__ = ["MelSpectrogramPreprocessor"]

_NORMALIZE_MODES = ("per_feature", "all_features", None)


class MelSpectrogramPreprocessor(nn.Module):
    """Waveforms to (normalized) log-mel spectrograms, with lengths, the way NeMo's
    ``AudioToMelSpectrogramPreprocessor`` computes them.

    Steps: dither (training only) -> pre-emphasis -> zero the samples past each item's length ->
    centred STFT with a Hann window (zero padded) -> ``|X| ** mag_power`` -> mel filterbank
    (slaney scale and norm, like librosa's default) -> ``log(x + log_zero_guard)`` ->
    normalization over each item's valid frames -> frames past each item's length set to 0 ->
    time padded with zeros to a multiple of ``pad_to``.

    Because samples past each length are zeroed before the STFT, and the STFT pads with zeros,
    an item gives the same valid frames alone as inside a padded batch. In eval mode the output
    is deterministic. The window and the filterbank are non-persistent buffers: they follow
    from the arguments and are not saved in the state dict.

    Args:
        sample_rate: audio sample rate in Hz.
        window_size: analysis window length in seconds.
        window_stride: hop between frames in seconds.
        n_fft: FFT size; default the next power of two of the window length.
        n_mels: mel bins.
        dither: standard deviation of the Gaussian noise added in training (0: none).
        preemph: pre-emphasis coefficient (``None`` or 0: none).
        log: take the log of the mel energies.
        log_zero_guard: added before the log.
        normalize: ``"per_feature"``, ``"all_features"`` or ``None``.
        pad_to: pad the time axis to a multiple of this (0 or 1: no padding).
        mag_power: exponent of the STFT magnitude (2: power spectrum).
        f_min: lowest filterbank frequency in Hz.
        f_max: highest filterbank frequency in Hz; default ``sample_rate / 2``.
        count_last_frame: count the frame centred on the end of the audio as valid
            (``length // hop + 1`` frames, the default); False counts ``length // hop``, as
            NeMo 3's featurizer does (``convai import nemo`` sets it), which leaves that frame
            out of the normalization statistics and zeroes it.

    Raises:
        ValueError: an argument out of range.

    Shapes:
        audio_signal: (B, T_samples) float, length: (B,) int
        -> processed_signal: (B, n_mels, T_frames) float, processed_length: (B,) int64,
        with ``processed_length = length // hop + 1`` (``length // hop`` without
        ``count_last_frame``) and ``T_frames`` the padded
        ``T_samples // hop + 1``.
    """

    filterbank: torch.Tensor  # (n_mels, F) buffer
    window: torch.Tensor  # (win_length,) buffer

    def __init__(
        self,
        sample_rate: int = 16000,
        window_size: float = 0.025,
        window_stride: float = 0.01,
        n_fft: int | None = None,
        n_mels: int = 64,
        dither: float = 1e-5,
        preemph: float | None = 0.97,
        log: bool = True,
        log_zero_guard: float = 2**-24,
        normalize: str | None = "per_feature",
        pad_to: int = 16,
        mag_power: float = 2.0,
        f_min: float = 0.0,
        f_max: float | None = None,
        count_last_frame: bool = True,
    ) -> None:
        super().__init__()
        if normalize not in _NORMALIZE_MODES:
            raise ValueError(
                f"normalize={normalize!r} is not a feature normalization; use 'per_feature', "
                "'all_features' or None."
            )
        win_length = round(window_size * sample_rate)
        hop_length = round(window_stride * sample_rate)
        if win_length < 1 or hop_length < 1:
            raise ValueError(
                f"window_size={window_size} s and window_stride={window_stride} s give "
                f"{win_length} and {hop_length} samples at {sample_rate} Hz; both must be >= 1."
            )
        if n_fft is None:
            n_fft = 2 ** math.ceil(math.log2(win_length))
        if n_fft < win_length:
            raise ValueError(
                f"n_fft={n_fft} is shorter than the window ({win_length} samples); use "
                f"n_fft >= {win_length} or leave it None."
            )
        if n_mels < 1 or pad_to < 0 or mag_power <= 0:
            raise ValueError(
                f"need n_mels >= 1, pad_to >= 0 and mag_power > 0; got n_mels={n_mels}, "
                f"pad_to={pad_to}, mag_power={mag_power}."
            )
        self.sample_rate = sample_rate
        self.win_length = win_length
        self.hop_length = hop_length
        self.n_fft = n_fft
        self.n_mels = n_mels
        self.dither = dither
        self.preemph = preemph
        self.log = log
        self.log_zero_guard = log_zero_guard
        self.normalize = normalize
        self.pad_to = pad_to
        self.mag_power = mag_power
        self.count_last_frame = count_last_frame
        filterbank = AF.slaney_mel_filterbank(
            n_fft=n_fft,
            n_mels=n_mels,
            sample_rate=sample_rate,
            f_min=f_min,
            f_max=f_max,
        )
        self.register_buffer("filterbank", filterbank, persistent=False)  # (n_mels, F)
        window = torch.hann_window(win_length, periodic=False)
        self.register_buffer("window", window, persistent=False)

    @property
    def frame_shift_s(self) -> float:
        """Seconds between two output frames."""
        return self.hop_length / self.sample_rate

    @property
    def input_ports(self) -> dict[str, NeuralType]:
        """``audio_signal`` (B, T) waveforms and ``length`` (B,) valid samples."""
        return waveform_input_ports(self.sample_rate)

    @property
    def output_ports(self) -> dict[str, NeuralType]:
        """``processed_signal`` (B, MEL, T) features and ``processed_length`` (B,) frames."""
        return mel_output_ports(self.n_mels)

    def get_output_lengths(self, length: torch.Tensor) -> torch.Tensor:
        """Valid frames for ``length`` valid samples.

        Shapes:
            length: (B,) -> (B,) int64.
        """
        frames = AF.frame_lengths(length, hop_length=self.hop_length)
        return frames if self.count_last_frame else frames - 1

    @typed
    def forward(
        self, audio_signal: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute the features of a padded batch of waveforms.

        Args:
            audio_signal: waveforms, padded to the longest item.
            length: valid samples per item.

        Returns:
            ``(processed_signal, processed_length)``.

        Shapes:
            audio_signal: (B, T_samples), length: (B,)
            -> processed_signal: (B, n_mels, T_frames), processed_length: (B,).
        """
        audio = audio_signal.float()
        if self.training and self.dither > 0:
            audio = audio + self.dither * torch.randn_like(audio)
        if self.preemph:
            audio = AF.apply_preemphasis(audio, coeff=self.preemph)
        sample_mask = AF.lengths_to_mask(length, audio.shape[-1])  # (B, T_samples)
        audio = audio.masked_fill(~sample_mask, 0.0)
        spec = AF.power_spectrogram(
            audio,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            mag_power=self.mag_power,
        )
        features = AF.mel_spectrogram(spec, filterbank=self.filterbank)
        if self.log:
            features = AF.log_compress(features, zero_guard=self.log_zero_guard)
        processed_length = self.get_output_lengths(length)
        features = AF.normalize_features(features, lengths=processed_length, mode=self.normalize)
        frame_mask = AF.lengths_to_mask(processed_length, features.shape[-1])  # (B, T_frames)
        features = features.masked_fill(~frame_mask.unsqueeze(1), 0.0)  # (B, T) -> (B, 1, T)
        features = AF.pad_time_to_multiple(features, multiple=self.pad_to, value=0.0)
        return features, processed_length
