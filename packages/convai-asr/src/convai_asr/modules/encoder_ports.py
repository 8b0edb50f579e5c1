"""The ports every spectrogram encoder declares (Jasper/QuartzNet, Conformer, Whisper), and
those of the waveform-to-mel preprocessors in front of them."""

from __future__ import annotations

from convai_core.types import (
    MEL,
    AudioSignal,
    B,
    D,
    EncodedRepresentation,
    Lengths,
    MelSpectrogram,
    NeuralType,
    SpectrogramType,
    T,
)


def encoder_input_ports(feat_in: int) -> dict[str, NeuralType]:
    """``audio_signal`` (B, MEL=feat_in, T) spectrograms and ``length`` (B,) frames."""
    return {
        "audio_signal": NeuralType((B, MEL.sized(feat_in), T), SpectrogramType()),
        "length": NeuralType((B,), Lengths()),
    }


def encoder_output_ports(d_model: int) -> dict[str, NeuralType]:
    """``encoded`` (B, D=d_model, T) and ``encoded_len`` (B,)."""
    return {
        "encoded": NeuralType((B, D.sized(d_model), T), EncodedRepresentation()),
        "encoded_len": NeuralType((B,), Lengths()),
    }


def waveform_input_ports(sample_rate: int) -> dict[str, NeuralType]:
    """``audio_signal`` (B, T) waveforms and ``length`` (B,) valid samples."""
    return {
        "audio_signal": NeuralType((B, T), AudioSignal(sample_rate=sample_rate)),
        "length": NeuralType((B,), Lengths()),
    }


def mel_output_ports(n_mels: int) -> dict[str, NeuralType]:
    """``processed_signal`` (B, MEL=n_mels, T) features and ``processed_length`` (B,) frames."""
    return {
        "processed_signal": NeuralType((B, MEL.sized(n_mels), T), MelSpectrogram(n_mels=n_mels)),
        "processed_length": NeuralType((B,), Lengths()),
    }
