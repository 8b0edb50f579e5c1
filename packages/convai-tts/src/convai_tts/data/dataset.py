"""Training data of duration-based acoustic models: a manifest of clips with per-symbol frames.

Each JSON line holds ``audio_filepath`` (22.05 kHz audio), ``text``, ``symbols`` (the frontend's
symbols separated by spaces, ``|`` for a word gap) and ``durations`` (frames per symbol, summing to
the clip's frames), as :func:`~convai_tts.data.teacher.build_teacher_corpus` writes them. A line
with a problem raises an error naming the file, the line and the fix, or, with ``skip_bad:
true``, is skipped and counted (:attr:`DurationDataset.skipped`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from convai_core.errors import ConvaiError
from convai_tts.audio import MelConfig, MelSpectrogram, pitch_track, symbol_pitch
from convai_tts.text.symbols import SYMBOLS, WORD_GAP

__all__ = ["DurationDataset", "collate_durations", "read_audio"]

# frames a clip may differ from the sum of its durations (rounding at the clip's end)
_SLACK_FRAMES = 2


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the sample rate of an audio file.

    Raises:
        ConvaiError: the file is missing, unreadable or empty (the message names it).
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise ConvaiError(f"audio file {str(path)!r} does not exist; check the manifest's path")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types for corrupt files
        raise ConvaiError(
            f"cannot read audio file {str(path)!r}: {exc}; re-encode it as WAV or FLAC"
        ) from exc
    if data.size == 0:
        raise ConvaiError(f"audio file {str(path)!r} holds no samples; remove it from the manifest")
    return data.mean(axis=1), int(rate)


@dataclass
class _Entry:
    audio: Path
    text: str
    ids: list[int]
    durations: list[int]
    line: int


class DurationDataset(Dataset[dict[str, Any]]):
    """Clips, symbol ids and frame counts from a duration manifest (items: ``symbols`` (T,),
    ``durations`` (T,), ``mel`` (n_mels, F)).

    Args:
        manifest: the JSON-lines file.
        mel: the spectrogram settings (their ``sample_rate`` is what the audio must have).
        max_duration: clips longer than this many seconds are left out (counted).
        skip_bad: skip and count bad lines and files instead of raising.
        cache_mels: keep computed spectrograms in memory (a 1.6 h corpus takes ~200 MB).
        symbols: the model's symbol inventory by id (default: the English ARPAbet one).
        pitch: give each item ``pitch`` (T,): each symbol's mean F0 in Hz over its voiced frames
            (0 when it has none), from :func:`~convai_tts.audio.pitch_track`.
    """

    def __init__(
        self,
        manifest: str | os.PathLike[str],
        mel: MelConfig | None = None,
        *,
        max_duration: float | None = None,
        skip_bad: bool = False,
        cache_mels: bool = True,
        symbols: Sequence[str] = SYMBOLS,
        pitch: bool = False,
    ) -> None:
        self.manifest = Path(manifest)
        self.symbols = tuple(symbols)
        self._ids = {symbol: i for i, symbol in enumerate(self.symbols)}
        self.with_pitch = pitch
        self._pitch_cache: dict[int, torch.Tensor] = {}
        self.mel_config = mel or MelConfig()
        self.skip_bad = skip_bad
        self.skipped: Counter[str] = Counter()
        self._mel = MelSpectrogram(self.mel_config)
        self._cache: dict[int, torch.Tensor] | None = {} if cache_mels else None
        self.entries = self._read(max_duration)
        if not self.entries:
            raise ConvaiError(f"{self.manifest}: no usable line (skipped: {dict(self.skipped)})")

    def _problem(self, line: int, message: str, reason: str) -> None:
        if not self.skip_bad:
            raise ConvaiError(f"{self.manifest}, line {line}: {message}")
        self.skipped[reason] += 1

    def _read(self, max_duration: float | None) -> list[_Entry]:
        if not self.manifest.is_file():
            raise ConvaiError(f"manifest {str(self.manifest)!r} does not exist")
        entries: list[_Entry] = []
        with open(self.manifest, encoding="utf-8") as handle:
            for number, raw in enumerate(handle, 1):
                if not raw.strip():
                    continue
                try:
                    item = json.loads(raw)
                except json.JSONDecodeError as exc:
                    self._problem(number, f"not valid JSON ({exc.msg})", "bad_json")
                    continue
                missing = [k for k in ("audio_filepath", "symbols", "durations") if k not in item]
                if missing:
                    self._problem(
                        number,
                        f"missing {missing}; a line needs audio_filepath, symbols and durations "
                        "(build one with `convai tts data teacher`)",
                        "missing_keys",
                    )
                    continue
                symbols = [WORD_GAP if s == "|" else s for s in str(item["symbols"]).split()]
                unknown = sorted({s for s in symbols if s not in self._ids or s == self.symbols[0]})
                if unknown:
                    self._problem(
                        number,
                        f"unknown symbols {unknown}; known: {' '.join(self.symbols[1:])}",
                        "unknown_symbols",
                    )
                    continue
                durations = item["durations"]
                if (
                    not isinstance(durations, list)
                    or len(durations) != len(symbols)
                    or any(not isinstance(d, int) or d < 0 for d in durations)
                ):
                    self._problem(
                        number,
                        f"durations must be {len(symbols)} non-negative integers (one per symbol)",
                        "bad_durations",
                    )
                    continue
                if max_duration is not None and item.get("duration", 0) > max_duration:
                    self.skipped["too_long"] += 1
                    continue
                audio = Path(item["audio_filepath"])
                if not audio.is_absolute():
                    audio = self.manifest.parent / audio
                entries.append(
                    _Entry(audio, str(item.get("text", "")), [self._ids[s] for s in symbols],
                           list(durations), number)
                )  # fmt: skip
        return entries

    def __len__(self) -> int:
        return len(self.entries)

    def frames(self, index: int) -> int:
        """The clip's frame count by its durations (for length-bucketed batches)."""
        return sum(self.entries[index].durations)

    def _samples(self, index: int) -> torch.Tensor:
        entry = self.entries[index]
        samples, rate = read_audio(entry.audio)
        if rate != self.mel_config.sample_rate:
            raise ConvaiError(
                f"{self.manifest}, line {entry.line}: {entry.audio} is at {rate} Hz, the model "
                f"reads {self.mel_config.sample_rate} Hz; resample the data with "
                "`convai tts data prepare`"
            )
        return torch.from_numpy(np.ascontiguousarray(samples))

    def mel(self, index: int) -> torch.Tensor:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        with torch.no_grad():
            mel = self._mel(self._samples(index).unsqueeze(0))[0]
        if self._cache is not None:
            self._cache[index] = mel
        return mel

    def frame_pitch(self, index: int) -> torch.Tensor:
        """F0 (Hz) of each frame of clip ``index``, 0 where unvoiced (cached)."""
        if index not in self._pitch_cache:
            self._pitch_cache[index] = pitch_track(self._samples(index), self.mel_config)
        return self._pitch_cache[index]

    def pitch_stats(self, limit: int = 500) -> tuple[float, float]:
        """Mean and standard deviation (Hz) of the symbols' pitch over voiced symbols of (at most
        ``limit``, evenly spread) clips: the normalization a pitch-predicting model uses."""
        step = max(1, -(-len(self) // limit))
        values = torch.cat([self[i]["pitch"] for i in range(0, len(self), step)])
        voiced = values[values > 0]
        if voiced.numel() < 2:
            raise ConvaiError(f"{self.manifest}: no voiced speech found to normalize pitch by")
        return float(voiced.mean()), float(voiced.std().clamp(min=1.0))

    def __getitem__(self, index: int) -> dict[str, Any]:
        entry = self.entries[index]
        mel = self.mel(index)
        durations = list(entry.durations)
        difference = mel.shape[1] - sum(durations)
        if abs(difference) > _SLACK_FRAMES:
            raise ConvaiError(
                f"{self.manifest}, line {entry.line}: durations sum to {sum(durations)} frames "
                f"but {entry.audio} has {mel.shape[1]}; the durations do not belong to this clip "
                f"(hop {self.mel_config.hop_length})"
            )
        if difference >= 0:
            durations[-1] += difference
        else:  # take the overhang from the last symbols (a last symbol may be shorter than it)
            excess = -difference
            for position in range(len(durations) - 1, -1, -1):
                taken = min(durations[position], excess)
                durations[position] -= taken
                excess -= taken
                if not excess:
                    break
        item = {
            "symbols": torch.tensor(entry.ids, dtype=torch.long),
            "durations": torch.tensor(durations, dtype=torch.long),
            "mel": mel,
        }
        if self.with_pitch:
            item["pitch"] = symbol_pitch(self.frame_pitch(index), item["durations"])
        return item


def collate_durations(items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad a list of items into a batch: ``symbols`` (B, T), ``symbol_lengths`` (B,),
    ``durations`` (B, T), ``mel`` (B, n_mels, F), ``mel_lengths`` (B,)."""
    batch = len(items)
    longest = max(len(i["symbols"]) for i in items)
    frames = max(i["mel"].shape[1] for i in items)
    n_mels = items[0]["mel"].shape[0]
    symbols = torch.zeros(batch, longest, dtype=torch.long)
    durations = torch.zeros(batch, longest, dtype=torch.long)
    mel = torch.zeros(batch, n_mels, frames)
    with_pitch = "pitch" in items[0]
    pitch = torch.zeros(batch, longest)
    for row, item in enumerate(items):
        n, f = len(item["symbols"]), item["mel"].shape[1]
        symbols[row, :n] = item["symbols"]
        durations[row, :n] = item["durations"]
        mel[row, :, :f] = item["mel"]
        if with_pitch:
            pitch[row, :n] = item["pitch"]
    result = {
        "symbols": symbols,
        "symbol_lengths": torch.tensor([len(i["symbols"]) for i in items]),
        "durations": durations,
        "mel": mel,
        "mel_lengths": torch.tensor([i["mel"].shape[1] for i in items]),
    }
    if with_pitch:
        result["pitch"] = pitch
    return result
