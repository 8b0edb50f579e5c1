"""File transcription for CTC models: batching by length, and chunking of long recordings.

A file longer than ``chunk_seconds`` is read in windows of ``chunk_seconds`` that overlap by
``overlap_seconds``; each window contributes the output frames of its central part (half the
overlap is context on each side), the frames of all windows are joined, and the joined
log-probabilities are decoded once. Only one batch of windows is in memory at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from convai_asr.audio import audio_info, load_audio
from convai_asr.data.manifest import read_manifest

if TYPE_CHECKING:
    from convai_asr.models.ctc import CTCModel


def expand_inputs(audio: str | Path | Sequence[str | Path]) -> list[str]:
    """Audio paths from a path, a list of paths, or a manifest (``.json`` / ``.jsonl``)."""
    items = [audio] if isinstance(audio, str | Path) else list(audio)
    paths: list[str] = []
    for item in items:
        if str(item).endswith((".json", ".jsonl")):
            paths.extend(e.audio_filepath for e in read_manifest(item).entries)
        else:
            paths.append(str(item))
    return paths


def _pad(batch: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(x) for x in batch])
    padded = torch.zeros(len(batch), int(lengths.max()))
    for i, x in enumerate(batch):
        padded[i, : len(x)] = x
    return padded, lengths


def _forward(model: CTCModel, batch: list[torch.Tensor]) -> list[torch.Tensor]:
    """Log-probs of each item, trimmed to its length. Shapes: items (T,) -> (T'_i, V)."""
    device = next(model.parameters()).device
    audio, lengths = _pad(batch)
    log_probs, enc_len = model(audio.to(device), lengths.to(device))
    return [log_probs[i, : int(enc_len[i])].float().cpu() for i in range(len(batch))]


def _long_file_log_probs(
    model: CTCModel,
    path: str,
    duration: float,
    *,
    batch_size: int,
    chunk_seconds: float,
    overlap_seconds: float,
) -> torch.Tensor:
    rate = model.sample_rate
    context = overlap_seconds / 2
    region = chunk_seconds - overlap_seconds
    if region <= 0:
        raise ValueError("chunk_seconds must be larger than overlap_seconds")
    shift = model.frame_shift_s
    starts = [k * region for k in range(int(duration // region) + 1) if k * region < duration]
    kept: list[torch.Tensor] = []
    for first in range(0, len(starts), batch_size):
        windows, offsets, regions = [], [], []
        for start in starts[first : first + batch_size]:
            begin = max(0.0, start - context)
            end = min(duration, start + region + context)
            windows.append(load_audio(path, sample_rate=rate, offset=begin, duration=end - begin))
            offsets.append(begin)
            regions.append((start, min(duration, start + region)))
        for log_probs, begin, (r_start, r_end) in zip(
            _forward(model, windows), offsets, regions, strict=True
        ):
            lo = round((r_start - begin) / shift)
            hi = round((r_end - begin) / shift)
            kept.append(log_probs[lo:hi])
    return torch.cat(kept, dim=0)  # (T'_total, V)


def _clip(words: list[dict[str, Any]], duration: float) -> list[dict[str, Any]]:
    """Keep word times inside the audio: the last frames may reach past its end (padding)."""
    for word in words:
        word["end"] = round(min(word["end"], duration), 3)
        word["start"] = round(min(word["start"], word["end"]), 3)
    return words


def file_log_probs(
    model: CTCModel,
    paths: Sequence[str],
    *,
    batch_size: int = 8,
    chunk_seconds: float = 30.0,
    overlap_seconds: float = 4.0,
) -> Iterator[tuple[int, float, torch.Tensor]]:
    """The model's log-probabilities for each file, shortest files first, batched by length.

    Yields ``(index in paths, duration in seconds, log_probs)`` with log_probs of shape
    (T', V); files longer than ``chunk_seconds`` come last, each read in overlapping chunks.
    The caller puts the model in eval mode.
    """
    durations = [audio_info(p)[2] for p in paths]
    short = sorted(
        (i for i, d in enumerate(durations) if d <= chunk_seconds), key=lambda i: durations[i]
    )
    for first in range(0, len(short), batch_size):
        group = short[first : first + batch_size]
        waves = [load_audio(paths[i], sample_rate=model.sample_rate) for i in group]
        for i, log_probs in zip(group, _forward(model, waves), strict=True):
            yield i, durations[i], log_probs
    for i, d in enumerate(durations):
        if d > chunk_seconds:
            log_probs = _long_file_log_probs(
                model,
                paths[i],
                d,
                batch_size=batch_size,
                chunk_seconds=chunk_seconds,
                overlap_seconds=overlap_seconds,
            )
            yield i, d, log_probs


def transcribe_files(
    model: CTCModel,
    audio: str | Path | Sequence[str | Path],
    *,
    batch_size: int = 8,
    chunk_seconds: float = 30.0,
    overlap_seconds: float = 4.0,
) -> list[dict[str, Any]]:
    """See :meth:`convai_asr.models.ctc.CTCModel.transcribe`."""
    paths = expand_inputs(audio)
    was_training = model.training
    model.eval()
    results: list[dict[str, Any] | None] = [None] * len(paths)
    try:
        for i, duration, log_probs in file_log_probs(
            model,
            paths,
            batch_size=batch_size,
            chunk_seconds=chunk_seconds,
            overlap_seconds=overlap_seconds,
        ):
            text, words = model.words_from_log_probs(log_probs, log_probs.shape[0])
            results[i] = {
                "audio_filepath": paths[i],
                "text": text,
                "words": _clip(words, duration),
            }
    finally:
        model.train(was_training)
    return [r for r in results if r is not None]


def write_jsonl(results: list[dict[str, Any]], out: Path) -> None:
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results), encoding="utf-8"
    )
    tmp.replace(out)
