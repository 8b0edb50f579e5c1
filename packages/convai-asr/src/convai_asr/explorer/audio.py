"""One utterance's audio for the browser: samples, a plottable waveform, a spectrogram, WAV bytes.

Audio is shown at its own sample rate (TTS data at 22.05 kHz stays at 22.05 kHz); soundfile
decodes only the utterance's segment (``offset``, ``duration``). Plots are kept small enough to
send to a browser: the waveform becomes a min/max envelope of at most ``max_points`` points and
the spectrogram at most ``max_frames`` frames of at most ``max_bins`` frequency bands.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from convai_asr.errors import AudioError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["read_segment", "spectrogram", "wav_bytes", "waveform_envelope"]


def read_segment(
    path: str, *, offset: float = 0.0, duration: float | None = None
) -> tuple[NDArray[np.float32], int]:
    """Mono samples of ``[offset, offset + duration)`` seconds of ``path`` and its sample rate.

    Shapes:
        output: (T,), float32 in [-1, 1]; channels are averaged.

    Raises:
        AudioError: the file is missing or cannot be decoded.
    """
    try:
        with sf.SoundFile(path) as handle:
            rate = handle.samplerate
            start = min(round(offset * rate), handle.frames)
            frames = -1 if duration is None else max(0, round(duration * rate))
            handle.seek(start)
            samples = handle.read(frames=frames, dtype="float32", always_2d=True)
    except (OSError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"cannot read audio file {path!r}: {exc}") from None
    return samples.mean(axis=1).astype(np.float32), rate  # (T, C) -> (T,)


def waveform_envelope(
    samples: NDArray[np.float32], sample_rate: int, *, max_points: int = 4000
) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
    """Times (s) and values to plot ``samples`` with at most about ``max_points`` points.

    Short signals come back whole; longer ones as the minimum and maximum of each of
    ``max_points // 2`` blocks, so peaks stay visible.

    Shapes:
        samples: (T,); outputs: (P,) and (P,) with P <= max(T, max_points).
    """
    if len(samples) <= max_points:
        return np.arange(len(samples)) / sample_rate, samples
    blocks = max_points // 2
    size = math.ceil(len(samples) / blocks)
    padded = np.pad(samples, (0, blocks * size - len(samples)), mode="edge")
    grid = padded.reshape(blocks, size)  # (T',) -> (blocks, size)
    values = np.stack([grid.min(axis=1), grid.max(axis=1)], axis=1).reshape(-1)  # (2 * blocks,)
    starts = np.arange(blocks) * size / sample_rate
    times = np.repeat(starts, 2) + np.tile([0.0, size / 2 / sample_rate], blocks)
    return times, values


def spectrogram(
    samples: NDArray[np.float32],
    sample_rate: int,
    *,
    window_s: float = 0.025,
    hop_s: float = 0.010,
    max_frames: int = 800,
    max_bins: int = 256,
    floor_db: float = 80.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float32]]:
    """Power spectrogram in dB (Hann window), for display.

    Long signals get a larger hop so that there are at most ``max_frames`` frames; above
    ``max_bins`` frequency bins, neighbouring bins are averaged. Values below the maximum minus
    ``floor_db`` are clipped.

    Shapes:
        samples: (T,); outputs: times (N,) s, frequencies (F,) Hz, power (F, N) dB.
    """
    window = max(2, round(window_s * sample_rate))
    n_fft = 1 << (window - 1).bit_length()
    hop = max(round(hop_s * sample_rate), math.ceil(max(len(samples) - window, 0) / max_frames))
    if len(samples) < window:
        samples = np.pad(samples, (0, window - len(samples)))
    count = 1 + (len(samples) - window) // hop
    index = np.arange(window)[None, :] + hop * np.arange(count)[:, None]  # (N, window)
    frames = samples[index] * np.hanning(window).astype(np.float32)  # (N, window)
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2  # (N, n_fft // 2 + 1)
    frequencies = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate).astype(np.float64)
    if power.shape[1] > max_bins:
        group = math.ceil(power.shape[1] / max_bins)
        bands = power.shape[1] // group
        power = power[:, : bands * group].reshape(count, bands, group).mean(axis=2)
        frequencies = frequencies[: bands * group].reshape(bands, group).mean(axis=1)
    decibels = (10.0 * np.log10(power + 1e-12)).astype(np.float32)
    decibels = np.maximum(decibels, decibels.max() - floor_db)
    times = (np.arange(count) * hop + window / 2) / sample_rate
    return times, frequencies, np.ascontiguousarray(decibels.T)  # (N, F) -> (F, N)


def wav_bytes(samples: NDArray[np.float32], sample_rate: int) -> bytes:
    """``samples`` as a 16-bit PCM WAV file in memory."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
