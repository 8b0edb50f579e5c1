"""The ports every spectrogram encoder declares (Jasper/QuartzNet and Conformer alike)."""

from __future__ import annotations

from convai_core.types import (
    MEL,
    B,
    D,
    EncodedRepresentation,
    Lengths,
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
