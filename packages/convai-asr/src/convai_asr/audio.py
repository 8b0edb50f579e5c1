"""Audio file I/O: load mono audio at a model's sample rate, inspect and save files.

Reading goes through ``soundfile`` (WAV, FLAC, OGG/Vorbis and the other libsndfile formats) and
only decodes the frames asked for, so a 10 s segment of a 1 h recording costs 10 s of decoding.
Every failure is an :class:`~convai_asr.errors.AudioError` naming the file.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as taf

from convai_asr.errors import AudioError, UpsampledAudioWarning

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["audio_info", "load_audio", "save_audio"]

# soundfile raises LibsndfileError (a RuntimeError) for corrupt data and unknown formats; older
# releases raise a plain RuntimeError, and some truncated headers surface as TypeError/ValueError.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    getattr(sf, "LibsndfileError", RuntimeError),
    RuntimeError,
    TypeError,
    ValueError,
)


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise AudioError(
            f"audio file {str(path)!r} does not exist; check the path (a manifest's relative "
            "audio_filepath is resolved against the manifest's folder)"
        )
    if not path.is_file():
        raise AudioError(f"audio path {str(path)!r} is not a file; point it at an audio file")


def _info(path: Path) -> Any:  # soundfile's info record
    _check_exists(path)
    try:
        return sf.info(str(path))
    except _READ_ERRORS as exc:
        raise AudioError(
            f"cannot read audio file {str(path)!r}: {exc}; the file is corrupt or not in a "
            "format libsndfile reads (WAV, FLAC, OGG...): re-encode it, e.g. with "
            "`ffmpeg -i in -ar 16000 out.wav`"
        ) from exc


def audio_info(path: str | os.PathLike[str]) -> tuple[int, int, float]:
    """Return ``(sample_rate, num_frames, duration_s)`` of an audio file without decoding it.

    Raises:
        AudioError: the file is missing or unreadable.
    """
    path = Path(path)
    info = _info(path)
    return int(info.samplerate), int(info.frames), float(info.frames) / float(info.samplerate)


def load_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int,
    offset: float = 0.0,
    duration: float | None = None,
) -> torch.Tensor:
    """Load an audio file as mono float32 samples at ``sample_rate``.

    Channels are mixed down by their mean; a file at another rate is resampled with
    :func:`torchaudio.functional.resample`. A file at a *lower* rate is up-sampled and an
    :class:`~convai_asr.errors.UpsampledAudioWarning` is issued, because the missing high band
    costs accuracy (filter that category to silence it).

    Args:
        path: the audio file.
        sample_rate: the rate the caller wants, in Hz (the model's rate).
        offset: where to start reading, in seconds from the start of the file.
        duration: how many seconds to read; ``None`` reads to the end. A segment that runs past
            the end of the file is cut at the end.

    Returns:
        The samples, in [-1, 1] for PCM files.

    Shapes:
        output: (T,) with T = number of samples at ``sample_rate``.

    Raises:
        AudioError: the file is missing, unreadable or corrupt, holds no samples (or none in the
            requested segment), holds NaN/Inf samples, or ``offset`` lies beyond its end.
    """
    path = Path(path)
    if sample_rate <= 0:
        raise AudioError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    if offset < 0:
        raise AudioError(f"offset must be >= 0 seconds, got {offset} for {str(path)!r}")
    if duration is not None and duration <= 0:
        raise AudioError(
            f"duration must be > 0 seconds or None, got {duration} for {str(path)!r}; fix the "
            "manifest's duration field"
        )
    info = _info(path)
    file_rate, num_frames = int(info.samplerate), int(info.frames)
    if num_frames <= 0:
        raise AudioError(
            f"audio file {str(path)!r} holds no samples; remove it from the manifest or re-record it"
        )
    start = round(offset * file_rate)
    if start >= num_frames:
        raise AudioError(
            f"offset {offset:.3f} s lies beyond the end of {str(path)!r}, which lasts "
            f"{num_frames / file_rate:.3f} s; fix the manifest's offset for this file"
        )
    stop = num_frames if duration is None else min(num_frames, start + round(duration * file_rate))
    try:
        data: NDArray[np.float32] = sf.read(
            str(path), start=start, stop=stop, dtype="float32", always_2d=True
        )[0]
    except _READ_ERRORS as exc:
        raise AudioError(
            f"cannot decode audio file {str(path)!r} (frames {start}..{stop}): {exc}; the file is "
            "corrupt or truncated: re-encode or remove it"
        ) from exc
    if data.size == 0:
        raise AudioError(
            f"audio file {str(path)!r} gave no samples for offset {offset} s, duration "
            f"{duration} s; the file is empty or truncated: re-encode or remove it"
        )
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - finite.sum())
        raise AudioError(
            f"audio file {str(path)!r} holds {bad} NaN/Inf sample(s); the file is corrupt "
            "(often a float WAV written from a diverged model): regenerate or remove it"
        )
    # (T, C) -> (T,): mix channels down by their mean
    samples = torch.from_numpy(data.mean(axis=1, dtype=np.float32))
    if file_rate != sample_rate:
        if file_rate < sample_rate:
            warnings.warn(
                f"{str(path)!r} is sampled at {file_rate} Hz and is up-sampled to {sample_rate} Hz: "
                "the band it lacks cannot be restored and accuracy drops; prefer a model trained "
                f"at {file_rate} Hz or audio recorded at {sample_rate} Hz",
                UpsampledAudioWarning,
                stacklevel=2,
            )
        samples = taf.resample(samples, orig_freq=file_rate, new_freq=sample_rate)
    return samples.contiguous()


def save_audio(
    path: str | os.PathLike[str],
    samples: torch.Tensor | NDArray[np.floating],
    sample_rate: int,
) -> None:
    """Write audio atomically: to a temporary file in the same folder, then renamed over ``path``.

    The format follows the suffix (``.wav`` 16-bit PCM, ``.flac``, ``.ogg``...). Missing parent
    folders are created.

    Args:
        path: where to write.
        samples: float samples in [-1, 1] (values outside are clipped by PCM formats).
        sample_rate: the rate of ``samples`` in Hz.

    Shapes:
        samples: (T,) mono, or (C, T) with C channels (the torchaudio convention).

    Raises:
        AudioError: unknown suffix, bad shape, or NaN/Inf samples.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").upper()
    if fmt not in sf.available_formats():
        raise AudioError(
            f"cannot save {str(path)!r}: suffix {path.suffix!r} names no format soundfile writes; "
            "use .wav, .flac or .ogg"
        )
    array = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else samples
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        array = array.T  # (C, T) -> (T, C), soundfile's layout
    elif array.ndim != 1:
        raise AudioError(
            f"cannot save {str(path)!r}: samples must be (T,) or (C, T), got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise AudioError(f"cannot save {str(path)!r}: samples hold NaN/Inf values")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        sf.write(tmp_name, array, int(sample_rate), format=fmt)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
