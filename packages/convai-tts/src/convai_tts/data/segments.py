"""Training data of vocoders: audio clips cut into fixed-length segments, each with its log-mel.

A vocoder learns mel -> audio on short random crops of the clips (WaveGlow 16000 samples,
HiFi-GAN 8192), so a batch is cheap however long the clips are, and is validated on whole clips.
The manifest is JSON lines with an ``audio_filepath`` (relative paths resolve against the
manifest's folder); every other key is ignored, so ASR manifests and the TTS teacher manifest
both work. Audio must already be at the mel settings' sample rate (``convai tts data prepare``
resamples a corpus).

Each crop starts at a multiple of the hop, so its mel frames are the frames of the whole clip's
spectrogram at the same times (away from the crop's edges, where the analysis window reaches
outside the crop): the vocoder sees the mels an acoustic model predicts for the clip.

Batch dict (:func:`collate_segments`), legend: ``B`` clips, ``S`` samples, ``F`` mel frames
(``S // hop``), ``n_mels`` mel bins::

    audio          (B, S)          float32 waveforms in [-1, 1], zero-padded
    mel            (B, n_mels, F)  natural-log mel spectrograms, padded with log(1e-5)
    audio_lengths  (B,)            real samples of each item
    mel_lengths    (B,)            real frames of each item
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from convai_core.errors import ConfigError, ConvaiError
from convai_tts.audio import LOG_FLOOR, MelConfig, MelSpectrogram

__all__ = ["AudioSegmentDataset", "collate_segments"]

_PREPARE_HINT = "resample the data with `convai tts data prepare`"


@dataclass(frozen=True)
class _Clip:
    audio: Path
    samples: int
    line: int


class AudioSegmentDataset(Dataset[dict[str, torch.Tensor]]):
    """Clips of a manifest as (audio, log-mel) pairs: random hop-aligned crops for training,
    whole clips for validation.

    Items: ``audio`` float32 (S,), ``mel`` (n_mels, S // hop) computed from that audio with
    :class:`~convai_tts.audio.MelSpectrogram`, and ``samples``: how many of the S are the clip's
    (the rest is padding). With ``segment_samples`` set, every call draws a
    new crop starting at a multiple of the hop (``torch``'s random generator, so each DataLoader
    worker draws its own); a clip shorter than the segment is zero-padded at its end. With
    ``segment_samples=None`` an item is the whole clip, cut to a whole number of hops (a clip
    shorter than one hop is zero-padded to one).

    Every file's header is read when the dataset is built, so a missing, unreadable or empty
    file, or one at another sample rate, is reported before training starts.

    Args:
        manifest: the JSON-lines file (``audio_filepath`` per line; other keys ignored).
        mel: the spectrogram settings; their ``sample_rate`` is what the audio must have.
        segment_samples: samples per training crop, a positive multiple of ``mel.hop_length``;
            ``None`` for whole clips.
        max_duration: clips longer than this many seconds are left out (counted as
            ``too_long``).
        skip_bad: skip bad lines and files and count them in :attr:`skipped` (by reason:
            ``bad_json``, ``missing_keys``, ``missing_file``, ``unreadable_file``, ``empty_file``,
            ``wrong_rate``) instead of raising.

    Raises:
        ConfigError: ``segment_samples`` is not a positive multiple of the hop.
        ConvaiError: the manifest is missing, has no usable line, or (without ``skip_bad``) has
            a bad line; the message names the manifest, the line, the file and the fix.
    """

    def __init__(
        self,
        manifest: str | os.PathLike[str],
        mel: MelConfig | None = None,
        segment_samples: int | None = 8192,
        *,
        max_duration: float | None = None,
        skip_bad: bool = False,
    ) -> None:
        self.manifest = Path(manifest)
        self.mel_config = mel or MelConfig()
        hop = self.mel_config.hop_length
        if segment_samples is not None and (
            isinstance(segment_samples, bool)
            or not isinstance(segment_samples, int)
            or segment_samples <= 0
            or segment_samples % hop
        ):
            nearest = max(1, round(segment_samples / hop)) * hop if segment_samples else hop
            raise ConfigError(
                f"segment_samples={segment_samples!r} must be a positive multiple of the hop "
                f"length ({hop}) so crops start and end on frame boundaries; use e.g. {nearest}"
            )
        self.segment_samples = segment_samples
        self.skip_bad = skip_bad
        self.skipped: Counter[str] = Counter()
        self._mel = MelSpectrogram(self.mel_config)
        self.clips = self._read(max_duration)
        if not self.clips:
            hint = f"; {_PREPARE_HINT}" if "wrong_rate" in self.skipped else ""
            raise ConvaiError(
                f"{self.manifest}: no usable line (skipped: {dict(self.skipped)}){hint}"
            )

    # ------------------------------------------------------------------ manifest
    def _problem(self, line: int, message: str, reason: str) -> None:
        if not self.skip_bad:
            raise ConvaiError(f"{self.manifest}, line {line}: {message}")
        self.skipped[reason] += 1

    def _read(self, max_duration: float | None) -> list[_Clip]:
        import soundfile as sf

        if not self.manifest.is_file():
            raise ConvaiError(f"manifest {str(self.manifest)!r} does not exist")
        rate = self.mel_config.sample_rate
        clips: list[_Clip] = []
        with open(self.manifest, encoding="utf-8") as handle:
            for number, raw in enumerate(handle, 1):
                if not raw.strip():
                    continue
                try:
                    item = json.loads(raw)
                except json.JSONDecodeError as exc:
                    self._problem(number, f"not valid JSON ({exc.msg})", "bad_json")
                    continue
                if not isinstance(item, dict) or "audio_filepath" not in item:
                    self._problem(
                        number, "missing 'audio_filepath' (the audio file's path)", "missing_keys"
                    )
                    continue
                audio = Path(str(item["audio_filepath"]))
                if not audio.is_absolute():
                    audio = self.manifest.parent / audio
                if not audio.is_file():
                    self._problem(
                        number,
                        f"audio file {str(audio)!r} does not exist; fix the path or remove the line",
                        "missing_file",
                    )
                    continue
                try:
                    info = sf.info(str(audio))
                except Exception as exc:  # libsndfile raises several types for corrupt files
                    self._problem(
                        number,
                        f"cannot read audio file {str(audio)!r} ({exc}); re-encode it as WAV or "
                        "FLAC or remove the line",
                        "unreadable_file",
                    )
                    continue
                if info.frames <= 0:
                    self._problem(
                        number,
                        f"audio file {str(audio)!r} holds no samples; remove the line",
                        "empty_file",
                    )
                    continue
                if info.samplerate != rate:
                    self._problem(
                        number,
                        f"{audio} is at {info.samplerate} Hz, the model reads {rate} Hz; "
                        f"{_PREPARE_HINT}",
                        "wrong_rate",
                    )
                    continue
                if max_duration is not None and info.frames / rate > max_duration:
                    self.skipped["too_long"] += 1
                    continue
                clips.append(_Clip(audio, int(info.frames), number))
        return clips

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self.clips)

    def samples(self, index: int) -> int:
        """The length of item ``index`` in samples (the segment, or the clip cut to hops)."""
        if self.segment_samples is not None:
            return self.segment_samples
        hop = self.mel_config.hop_length
        return max(hop, self.clips[index].samples // hop * hop)

    def _load(self, clip: _Clip, start: int, stop: int) -> np.ndarray:
        import soundfile as sf

        try:
            data, _ = sf.read(
                str(clip.audio), start=start, stop=stop, dtype="float32", always_2d=True
            )
        except Exception as exc:  # the header was fine, the data is not
            raise ConvaiError(
                f"{self.manifest}, line {clip.line}: cannot read audio file {str(clip.audio)!r} "
                f"({exc}); re-encode it as WAV or FLAC or remove the line"
            ) from exc
        return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip = self.clips[index]
        hop = self.mel_config.hop_length
        length = self.samples(index)
        start = 0
        if self.segment_samples is not None and clip.samples > length:
            start = hop * int(torch.randint(0, (clip.samples - length) // hop + 1, ()).item())
        samples = self._load(clip, start, min(start + length, clip.samples))
        audio = torch.zeros(length)
        audio[: len(samples)] = torch.from_numpy(samples[:length])
        with torch.no_grad():
            mel = self._mel(audio.unsqueeze(0))[0]  # (n_mels, length // hop)
        # the real samples (a clip shorter than the segment is zero-padded)
        real = torch.tensor(min(len(samples), length))
        return {"audio": audio, "mel": mel, "samples": real}


def _real_samples(item: dict[str, torch.Tensor]) -> int:
    return int(item["samples"]) if "samples" in item else int(item["audio"].shape[0])


def collate_segments(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Pad items of :class:`AudioSegmentDataset` into a batch: ``audio`` (B, S), ``mel``
    (B, n_mels, F), ``audio_lengths`` (B,), ``mel_lengths`` (B,), padded to the longest item
    (audio with zeros, mels with log(1e-5), the log-mel of silence)."""
    batch = len(items)
    hop = max(1, int(items[0]["audio"].shape[0]) // max(int(items[0]["mel"].shape[1]), 1))
    longest = max(int(i["audio"].shape[0]) for i in items)
    frames = max(int(i["mel"].shape[1]) for i in items)
    n_mels = int(items[0]["mel"].shape[0])
    audio = torch.zeros(batch, longest)
    mel = torch.full((batch, n_mels, frames), math.log(LOG_FLOOR))
    for row, item in enumerate(items):
        audio[row, : item["audio"].shape[0]] = item["audio"]
        mel[row, :, : item["mel"].shape[1]] = item["mel"]
    return {
        "audio": audio,
        "mel": mel,
        "audio_lengths": torch.tensor([_real_samples(i) for i in items]),
        "mel_lengths": torch.tensor(
            [min(int(i["mel"].shape[1]), -(-_real_samples(i) // hop)) for i in items]
        ),
    }
