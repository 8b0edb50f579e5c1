"""Audio reading and resampling with soundfile and numpy only (no torch).

:func:`resample` is a windowed-sinc polyphase resampler with the parameters of torchaudio's
default (Hann window, 6 zero crossings, roll-off 0.99), so the runtime feeds the graph the same
samples as the torch path does (within float rounding).
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["audio_duration", "read_audio", "resample"]


class AudioReadError(ValueError):
    """An audio file is missing, unreadable, empty or holds NaN samples."""


def _info(path: Path) -> sf._SoundFileInfo:
    if not path.is_file():
        raise AudioReadError(f"audio file {str(path)!r} does not exist or is not a file")
    try:
        return sf.info(str(path))
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AudioReadError(
            f"cannot read audio file {str(path)!r}: {exc}; re-encode it as WAV/FLAC/OGG"
        ) from exc


def audio_duration(path: str | Path) -> float:
    """Seconds of audio in the file (from its header)."""
    info = _info(Path(path))
    return float(info.frames) / float(info.samplerate)


def read_audio(
    path: str | Path, sample_rate: int, offset: float = 0.0, duration: float | None = None
) -> np.ndarray:
    """Mono float32 samples of ``path`` (or of a segment of it) at ``sample_rate``.

    Raises:
        AudioReadError: missing, unreadable, empty or non-finite audio.

    Shapes:
        output: (T,)
    """
    path = Path(path)
    info = _info(path)
    rate, frames = int(info.samplerate), int(info.frames)
    if frames <= 0:
        raise AudioReadError(f"audio file {str(path)!r} holds no samples")
    start = round(offset * rate)
    if start >= frames:
        raise AudioReadError(f"offset {offset:.3f} s lies beyond the end of {str(path)!r}")
    stop = frames if duration is None else min(frames, start + round(duration * rate))
    try:
        data = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)[0]
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AudioReadError(f"cannot decode audio file {str(path)!r}: {exc}") from exc
    if data.size == 0:
        raise AudioReadError(f"audio file {str(path)!r} gave no samples")
    if not np.isfinite(data).all():
        raise AudioReadError(f"audio file {str(path)!r} holds NaN/Inf samples")
    samples = data.mean(axis=1, dtype=np.float32)  # (T, C) -> (T,)
    if rate != sample_rate:
        if rate < sample_rate:
            warnings.warn(
                f"{str(path)!r} is sampled at {rate} Hz and is up-sampled to {sample_rate} Hz; "
                "accuracy drops",
                stacklevel=2,
            )
        samples = resample(samples, rate, sample_rate)
    return np.ascontiguousarray(samples, dtype=np.float32)


@lru_cache(maxsize=8)
def _kernels(orig: int, new: int, zero_crossings: int, rolloff: float) -> tuple[np.ndarray, int]:
    """Polyphase filters ``(new, 2 * width + orig)`` and the half width, for reduced rates."""
    cutoff = min(orig, new) * rolloff
    width = math.ceil(zero_crossings * orig / cutoff)
    taps = np.arange(-width, width + orig, dtype=np.float64) / orig  # (K,)
    phases = -np.arange(new, dtype=np.float64)[:, None] / new  # (new, 1)
    t = (phases + taps[None, :]) * cutoff  # (new, K) in units of the cutoff's period
    t = np.clip(t, -zero_crossings, zero_crossings)
    window = np.cos(t * math.pi / zero_crossings / 2) ** 2
    t = t * math.pi
    with np.errstate(divide="ignore", invalid="ignore"):
        sinc = np.where(t == 0, 1.0, np.sin(t) / t)
    return (sinc * window * (cutoff / orig)).astype(np.float32), width


def resample(
    samples: np.ndarray, orig: int, new: int, zero_crossings: int = 6, rolloff: float = 0.99
) -> np.ndarray:
    """Resample a 1-D signal from ``orig`` Hz to ``new`` Hz (windowed sinc, Hann window).

    Shapes:
        samples: (T,) -> (ceil(T * new / orig),)
    """
    if orig == new:
        return samples
    g = math.gcd(orig, new)
    orig_r, new_r = orig // g, new // g
    kernels, width = _kernels(orig_r, new_r, zero_crossings, rolloff)
    length = samples.shape[0]
    padded = np.pad(samples.astype(np.float64), (width, width + orig_r))
    size = kernels.shape[1]
    count = (padded.shape[0] - size) // orig_r + 1
    # (count, K) frames of the padded signal, hop orig_r; each gives new_r output samples
    frames = np.lib.stride_tricks.as_strided(
        padded,
        shape=(count, size),
        strides=(padded.strides[0] * orig_r, padded.strides[0]),
        writeable=False,
    )
    out = (frames @ kernels.T.astype(np.float64)).reshape(-1)  # (count, K) @ (K, new_r)
    return out[: math.ceil(new_r * length / orig_r)].astype(np.float32)
