"""Training data of text-to-mel models that learn their own alignment: clips and their symbols.

Each JSON line holds ``audio_filepath`` (audio at the model's sample rate) and either
``symbols`` (the frontend's symbols separated by spaces, ``|`` for a word gap, as
:func:`~convai_tts.data.teacher.build_teacher_corpus` writes them) or ``text`` (one utterance of
normalized text, turned into symbols by the frontend's ``phonemize``); ``symbols`` wins when both
are there. Other keys (``duration``, ``durations``...) are ignored, except that ``duration``
(seconds) sizes length buckets without opening the audio and drops clips over ``max_duration``.

A line with a problem raises an error naming the file, the line and the fix, or, with
``skip_bad=True``, is skipped and counted (:attr:`TextMelDataset.skipped`).

Items (see :func:`collate_text_mel` for batches), with B batch, T symbols, F mel frames::

    symbols  (T,)         symbol ids of the frontend (0 is padding)
    mel      (n_mels, F)  log-mel spectrogram of the clip
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
from convai_tts.audio import MelConfig, MelSpectrogram
from convai_tts.data.dataset import read_audio

__all__ = ["TextMelDataset", "collate_text_mel"]

#: How a word gap is written in manifests (the frontend's own word-gap symbol is a space).
MANIFEST_WORD_GAP = "|"


@dataclass
class _Entry:
    audio: Path
    ids: list[int]
    duration: float | None
    line: int


def _shown(token: str) -> str:
    return MANIFEST_WORD_GAP if token == " " else token


class TextMelDataset(Dataset[dict[str, torch.Tensor]]):
    """Clips and their symbol ids from a JSON-lines manifest (see the module docstring).

    Args:
        manifest: the JSON-lines file; relative audio paths are read from its folder.
        frontend: the model's text frontend (``tokens``, ``phonemize``): it fixes the symbol
            ids. Id 0 is padding and never a symbol of a line.
        mel: the spectrogram settings (their ``sample_rate`` is what the audio must have).
        max_duration: clips whose ``duration`` is longer than this many seconds are left out
            (counted as ``too_long``).
        skip_bad: skip and count bad lines and files instead of raising.
        cache_mels: keep computed spectrograms in memory.
        trim_silence: cut leading and trailing silence (quieter than ``trim_db`` below the
            clip's peak, :func:`~convai_tts.data.tools.trim_silence`) before the spectrogram.
        trim_db: the silence threshold of ``trim_silence``.

    Raises:
        ConvaiError: the manifest is missing, a line is bad (without ``skip_bad``), or no line
            is usable.
    """

    def __init__(
        self,
        manifest: str | os.PathLike[str],
        frontend: Any,
        mel: MelConfig | None = None,
        *,
        max_duration: float | None = None,
        skip_bad: bool = False,
        cache_mels: bool = True,
        trim_silence: bool = False,
        trim_db: float = 40.0,
    ) -> None:
        self.manifest = Path(manifest)
        self.frontend = frontend
        self.mel_config = mel or MelConfig()
        self.skip_bad = skip_bad
        self.trim_silence = bool(trim_silence)
        self.trim_db = float(trim_db)
        self.skipped: Counter[str] = Counter()
        tokens = list(frontend.tokens)
        self._ids = {token: index for index, token in enumerate(tokens) if index > 0}
        self._known = " ".join(_shown(t) for t in tokens[1:])
        self._mel = MelSpectrogram(self.mel_config)
        self._cache: dict[int, torch.Tensor] | None = {} if cache_mels else None
        self.entries = self._read(max_duration)
        if not self.entries:
            raise ConvaiError(f"{self.manifest}: no usable line (skipped: {dict(self.skipped)})")

    # ------------------------------------------------------------------ manifest
    def _problem(self, line: int, message: str, reason: str) -> None:
        if not self.skip_bad:
            raise ConvaiError(f"{self.manifest}, line {line}: {message}")
        self.skipped[reason] += 1

    def _symbols_of(self, number: int, item: dict[str, Any]) -> list[str] | None:
        """The line's symbols, or None after reporting why it has none."""
        if "symbols" in item:
            return [
                " " if s == MANIFEST_WORD_GAP and " " in self._ids else s
                for s in str(item["symbols"]).split()
            ]
        dropped = getattr(self.frontend, "dropped", None)
        before = Counter(dropped) if dropped is not None else Counter()
        try:
            symbols = list(self.frontend.phonemize(str(item["text"])))
        except ConvaiError as exc:
            self._problem(number, f"{exc}; fix the text or give its symbols", "bad_text")
            return None
        if dropped is not None and Counter(dropped) != before:
            unread = sorted((Counter(dropped) - before).keys())
            self._problem(
                number,
                f"the text has characters the frontend cannot read {unread}; write them as "
                "words (normalize the text) or give the line's symbols",
                "bad_text",
            )
            return None
        return symbols

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
                if not isinstance(item, dict):
                    self._problem(number, "not a JSON object", "bad_json")
                    continue
                missing = [] if "audio_filepath" in item else ["audio_filepath"]
                if "symbols" not in item and "text" not in item:
                    missing.append("symbols or text")
                if missing:
                    self._problem(
                        number,
                        f"missing {missing}; a line needs audio_filepath and its symbols or text "
                        "(prepare the data with `convai tts data prepare`)",
                        "missing_keys",
                    )
                    continue
                symbols = self._symbols_of(number, item)
                if symbols is None:
                    continue
                unknown = sorted({_shown(s) for s in symbols if s not in self._ids})
                if unknown or not symbols:
                    self._problem(
                        number,
                        f"unknown symbols {unknown}; known: {self._known}"
                        if unknown
                        else "no symbols; the line has nothing to say",
                        "unknown_symbols" if unknown else "no_symbols",
                    )
                    continue
                duration = item.get("duration")
                duration = float(duration) if isinstance(duration, int | float) else None
                if max_duration is not None and duration is not None and duration > max_duration:
                    self.skipped["too_long"] += 1
                    continue
                audio = Path(item["audio_filepath"])
                if not audio.is_absolute():
                    audio = self.manifest.parent / audio
                entries.append(_Entry(audio, [self._ids[s] for s in symbols], duration, number))
        return entries

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self.entries)

    def frames(self, index: int) -> int:
        """The clip's frame count (for length-bucketed batches): exact once its spectrogram is
        cached, else from the line's ``duration`` or the audio file's header."""
        if self._cache is not None and index in self._cache:
            return int(self._cache[index].shape[1])
        entry = self.entries[index]
        if entry.duration is not None:
            samples = round(entry.duration * self.mel_config.sample_rate)
        else:
            import soundfile as sf

            try:
                info = sf.info(str(entry.audio))
            except Exception as exc:  # a missing or corrupt file: name it
                raise ConvaiError(
                    f"{self.manifest}, line {entry.line}: cannot read {entry.audio} ({exc})"
                ) from exc
            samples = int(info.frames * self.mel_config.sample_rate / max(info.samplerate, 1))
        return max(1, self._mel.frames(samples))

    def mel(self, index: int) -> torch.Tensor:
        """The log-mel spectrogram (n_mels, F) of item ``index``.

        Raises:
            ConvaiError: the audio is missing, unreadable, at another sample rate, or silent
                after trimming (naming the line and the fix).
        """
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        entry = self.entries[index]
        try:
            samples, rate = read_audio(entry.audio)
        except ConvaiError as exc:
            raise ConvaiError(f"{self.manifest}, line {entry.line}: {exc}") from exc
        if rate != self.mel_config.sample_rate:
            raise ConvaiError(
                f"{self.manifest}, line {entry.line}: {entry.audio} is at {rate} Hz, the model "
                f"reads {self.mel_config.sample_rate} Hz; resample the data with "
                "`convai tts data prepare`"
            )
        if self.trim_silence:
            from convai_tts.data.tools import trim_silence

            samples = trim_silence(samples, rate, self.trim_db)
            if samples.size == 0:
                raise ConvaiError(
                    f"{self.manifest}, line {entry.line}: {entry.audio} is silent (nothing above "
                    f"-{self.trim_db:g} dB of its peak); remove it from the manifest"
                )
        if samples.size < self.mel_config.hop_length:
            raise ConvaiError(
                f"{self.manifest}, line {entry.line}: {entry.audio} holds {samples.size} samples, "
                f"less than one frame ({self.mel_config.hop_length}); remove it from the manifest"
            )
        with torch.no_grad():
            mel = self._mel(torch.from_numpy(np.ascontiguousarray(samples)).unsqueeze(0))[0]
        if self._cache is not None:
            self._cache[index] = mel
        return mel

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "symbols": torch.tensor(self.entries[index].ids, dtype=torch.long),
            "mel": self.mel(index),
        }


def collate_text_mel(
    items: Sequence[dict[str, torch.Tensor]], log_floor: float | None = None
) -> dict[str, torch.Tensor]:
    """Pad items into a batch.

    Args:
        items: dataset items (``symbols`` (T,), ``mel`` (n_mels, F)).
        log_floor: the value of padded mel frames (default: the log of the spectrogram's
            amplitude floor, i.e. silence).

    Returns:
        ``symbols`` (B, T) padded with 0, ``symbol_lengths`` (B,), ``mel`` (B, n_mels, F)
        padded with ``log_floor``, ``mel_lengths`` (B,), and ``gate`` (B, F): the stop targets,
        1.0 from each item's last frame on, 0.0 before it.
    """
    floor = MelConfig().log_floor if log_floor is None else float(log_floor)
    batch = len(items)
    longest = max(len(item["symbols"]) for item in items)
    frames = max(item["mel"].shape[1] for item in items)
    n_mels = items[0]["mel"].shape[0]
    symbols = torch.zeros(batch, longest, dtype=torch.long)
    mel = torch.full((batch, n_mels, frames), floor)
    for row, item in enumerate(items):
        symbols[row, : len(item["symbols"])] = item["symbols"]
        mel[row, :, : item["mel"].shape[1]] = item["mel"]
    mel_lengths = torch.tensor([item["mel"].shape[1] for item in items])
    gate = (torch.arange(frames)[None, :] >= (mel_lengths - 1)[:, None]).float()
    return {
        "symbols": symbols,
        "symbol_lengths": torch.tensor([len(item["symbols"]) for item in items]),
        "mel": mel,
        "mel_lengths": mel_lengths,
        "gate": gate,
    }
