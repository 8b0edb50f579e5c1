"""Recordings listed in a manifest, drawn at random by augmentations that mix them in.

Noise from files (``asr/noise`` with ``manifest``), babble (``asr/babble``) and recorded room
impulse responses (``asr/impulse_response`` with ``manifest``) all draw recordings from a
NeMo-style JSON-lines manifest. A noise manifest needs ``audio_filepath`` and ``duration`` on
every line; ``text`` may be left out, ``offset`` selects a segment of a longer file::

    {"audio_filepath": "noise/cafe.wav", "duration": 62.5}
    {"audio_filepath": "/data/musan/music/a.wav", "duration": 30.0, "offset": 10.0}

A relative ``audio_filepath`` is resolved against the folder that holds the manifest (as for
speech manifests, :mod:`convai_asr.data.manifest`). The manifest is read and validated when the
augmentation is built, so a malformed line fails before training starts (``<manifest>:<line>:
<problem>``); the audio is decoded on first use, in the loader's worker process, and a missing
or unreadable file raises an :class:`~convai_asr.errors.AudioError` naming the file and the
manifest line.

Each worker keeps the recordings it decoded (at the dataset's rate) in memory, up to
``cache_seconds`` of audio in all, least recently used first out; a recording longer than that is
never held whole: each draw reads only the segment it needs. ``max_files`` limits the pool to
that many recordings spread evenly over the manifest, so a small pool is decoded once per worker
and then served from memory.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from convai_asr.audio import load_audio
from convai_asr.data.manifest import ManifestEntry, read_manifest
from convai_asr.errors import AudioError, UpsampledAudioWarning

__all__ = ["ManifestPaths", "Recording", "RecordingPool", "loop_to_length"]

#: A manifest argument: one path, comma-separated paths, or a list of paths.
ManifestPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def loop_to_length(audio: torch.Tensor, samples: int, start: int = 0) -> torch.Tensor:
    """``samples`` samples of ``audio`` read from ``start``, wrapping around to the beginning.

    Shapes:
        audio: (N,) -> (samples,).
    """
    length = audio.shape[-1]
    if length == 0:
        raise ValueError("cannot loop an empty recording")
    start %= length
    repeats = math.ceil((start + samples) / length)
    return audio.repeat(repeats)[start : start + samples]


@dataclass(frozen=True)
class Recording:
    """One recording of a pool.

    Attributes:
        entry: its manifest entry (absolute path, offset, duration, line).
        manifest: the manifest file it was listed in.
    """

    entry: ManifestEntry
    manifest: str

    @property
    def where(self) -> str:
        """``<manifest>:<line>``, for messages."""
        return f"{self.manifest}:{self.entry.line}"


def _manifest_paths(manifest: ManifestPaths) -> list[str]:
    if isinstance(manifest, (str, os.PathLike)):
        return [p.strip() for p in os.fspath(manifest).split(",") if p.strip()]
    return [os.fspath(p) for p in manifest]


class RecordingPool:
    """The recordings of one or more manifests, decoded on demand and cached per process.

    Args:
        manifest: a manifest path, comma-separated paths, or a list of paths.
        sample_rate: the rate recordings are resampled to (the dataset's).
        what: what the recordings are (``"noise"``, ``"speech"``...), for messages.
        max_files: use at most this many recordings, taken evenly spaced over the manifest
            (``None``: all of them).
        cache_seconds: decoded audio each process keeps in memory, in seconds (0: none).

    Raises:
        ManifestError: a manifest is missing or has a malformed line.
        ValueError: no manifest is given, the manifests list no recording, or an argument is out
            of range.
    """

    def __init__(
        self,
        manifest: ManifestPaths,
        *,
        sample_rate: int,
        what: str = "noise",
        max_files: int | None = None,
        cache_seconds: float = 600.0,
    ) -> None:
        if max_files is not None and max_files < 1:
            raise ValueError(f"max_files must be >= 1 or None; got {max_files}")
        if cache_seconds < 0:
            raise ValueError(f"cache_seconds must be >= 0; got {cache_seconds}")
        paths = _manifest_paths(manifest)
        if not paths:
            raise ValueError(f"no {what} manifest given; set manifest to a JSON-lines file")
        recordings = [
            Recording(entry, path)
            for path in paths
            for entry in read_manifest(path, require_text=False).entries
        ]
        if not recordings:
            raise ValueError(
                f"{what} manifest {', '.join(paths)} lists no recording; add lines such as "
                '{"audio_filepath": "a.wav", "duration": 3.5}'
            )
        if max_files is not None and max_files < len(recordings):
            # evenly spaced: a manifest sorted by speaker or source still gives a varied pool
            recordings = [recordings[i * len(recordings) // max_files] for i in range(max_files)]
        self.recordings = recordings
        self.sample_rate = int(sample_rate)
        self.what = what
        self.cache_seconds = float(cache_seconds)
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._cached_samples = 0

    def __len__(self) -> int:
        return len(self.recordings)

    @property
    def cached(self) -> int:
        """How many decoded recordings this process holds in memory."""
        return len(self._cache)

    def __getstate__(self) -> dict[str, object]:
        # a pool sent to a loader worker starts with an empty cache
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        state["_cached_samples"] = 0
        return state

    def draw_index(self, generator: torch.Generator | None) -> int:
        """A recording's index, drawn uniformly."""
        return int(torch.randint(len(self.recordings), (), generator=generator))

    def _read(
        self, recording: Recording, offset: float = 0.0, duration: float | None = None
    ) -> torch.Tensor:
        entry = recording.entry
        if duration is None:
            duration = entry.duration - offset
        try:
            with warnings.catch_warnings():
                # a recording at a lower rate is up-sampled: its top band stays empty, which is
                # expected of noise and does not cost the model accuracy as it does for speech
                warnings.simplefilter("ignore", UpsampledAudioWarning)
                audio = load_audio(
                    entry.audio_filepath,
                    sample_rate=self.sample_rate,
                    offset=entry.offset + offset,
                    duration=duration,
                )
        except AudioError as exc:
            raise AudioError(f"{self.what} recording listed at {recording.where}: {exc}") from exc
        return audio

    def recording(self, index: int) -> torch.Tensor:
        """The whole recording ``index`` at the pool's rate (from the cache when it is there).

        Raises:
            AudioError: the file is missing, unreadable, or all zeros (naming the manifest line).

        Shapes:
            -> (N,).
        """
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        recording = self.recordings[index]
        audio = self._read(recording)
        if not bool(audio.abs().max() > 0):
            raise AudioError(
                f"{self.what} recording {recording.entry.audio_filepath!r} (listed at "
                f"{recording.where}) is all zeros; remove it from the manifest"
            )
        limit = round(self.cache_seconds * self.sample_rate)
        if audio.shape[-1] <= limit:
            self._cache[index] = audio
            self._cached_samples += audio.shape[-1]
            while self._cached_samples > limit:
                _, dropped = self._cache.popitem(last=False)
                self._cached_samples -= dropped.shape[-1]
        return audio

    def segment(self, index: int, samples: int, generator: torch.Generator | None) -> torch.Tensor:
        """A segment of ``samples`` samples of recording ``index`` at a random start.

        A recording shorter than ``samples`` is looped from a random start. One number is drawn
        from ``generator`` whatever the cache holds, so the output depends on the generator
        state alone. A recording longer than ``cache_seconds`` is never decoded whole: only the
        segment is read.

        Shapes:
            -> (samples,).
        """
        position = float(torch.rand((), generator=generator))
        entry = self.recordings[index].entry
        if entry.duration > self.cache_seconds:
            total = max(1, round(entry.duration * self.sample_rate))
            if total > samples:
                start = min(int(position * (total - samples + 1)), total - samples)
                piece = self._read(
                    self.recordings[index],
                    offset=start / self.sample_rate,
                    duration=samples / self.sample_rate,
                )
                return loop_to_length(piece, samples)  # a sample short after resampling
        audio = self.recording(index)
        length = audio.shape[-1]
        if length >= samples:
            start = min(int(position * (length - samples + 1)), length - samples)
            return audio[start : start + samples]
        return loop_to_length(audio, samples, start=int(position * length))
