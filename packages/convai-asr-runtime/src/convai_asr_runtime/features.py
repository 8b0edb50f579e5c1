"""Log-mel features with numpy, for bundles whose graph starts from features.

The same steps as convai-asr's ``MelSpectrogramPreprocessor`` in eval mode: pre-emphasis, zeroed
padding, centred STFT (zero padded) with the bundle's window, power, mel filterbank (saved in the
bundle as ``filterbank.npy``), log, normalization over each item's valid frames, padding frames
set to zero and the time axis padded to a multiple of ``pad_to``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

NORMALIZE_EPS = 1e-5


def mel_features(
    audio: np.ndarray,
    lengths: np.ndarray,
    settings: Mapping[str, Any],
    filterbank: np.ndarray,
    window: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of a padded batch.

    Shapes:
        audio: (B, T) float32, lengths: (B,) int64, filterbank: (n_mels, n_fft // 2 + 1),
        window: (win_length,) -> features (B, n_mels, T_frames) float32, frames (B,) int64
    """
    n_fft, hop, win = settings["n_fft"], settings["hop_length"], settings["win_length"]
    x = audio.astype(np.float64)
    if settings.get("preemph"):
        x = np.concatenate([x[:, :1], x[:, 1:] - settings["preemph"] * x[:, :-1]], axis=1)
    steps = np.arange(x.shape[1])
    x = np.where(steps[None, :] < lengths[:, None], x, 0.0)
    left = (n_fft - win) // 2
    full_window = np.zeros(n_fft)
    full_window[left : left + win] = window
    x = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)))
    count = 1 + (x.shape[1] - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]  # (frames, n_fft)
    spectrum = np.fft.rfft(x[:, index] * full_window, axis=-1)  # (B, frames, F)
    power = spectrum.real**2 + spectrum.imag**2
    if settings.get("mag_power", 2.0) != 2.0:
        power = np.maximum(power, 1e-20) ** (settings["mag_power"] / 2.0)
    features = np.einsum("mf,btf->bmt", filterbank.astype(np.float64), power)
    if settings.get("log", True):
        features = np.log(features + settings["log_zero_guard"])
    frames = lengths // hop + (1 if settings.get("count_last_frame", True) else 0)
    valid = (np.arange(count)[None, :] < frames[:, None])[:, None, :]  # (B, 1, frames)
    mode = settings.get("normalize")
    if mode in ("per_feature", "all_features"):
        axes = (-1,) if mode == "per_feature" else (-2, -1)
        n = valid.sum(axis=-1, keepdims=True).astype(np.float64)
        if mode == "all_features":
            n = n * features.shape[1]
        mean = (features * valid).sum(axis=axes, keepdims=True) / np.maximum(n, 1.0)
        squares = (((features - mean) * valid) ** 2).sum(axis=axes, keepdims=True)
        std = np.sqrt(squares / np.maximum(n - 1.0, 1.0)) + NORMALIZE_EPS
        features = (features - mean) / std
    features = np.where(valid, features, 0.0)
    pad_to = settings.get("pad_to", 0)
    if pad_to and pad_to > 1:
        missing = (-features.shape[-1]) % pad_to
        features = np.pad(features, ((0, 0), (0, 0), (0, missing)))
    return features.astype(np.float32), frames.astype(np.int64)
