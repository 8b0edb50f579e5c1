"""TTS data tools: resample, trim silence, filter by duration, and report a corpus.

The guide's advice for TTS data: one speaker, 22.05 kHz, silences trimmed. :func:`prepare_manifest`
does the mechanical part on a JSON-lines manifest (``audio_filepath``, ``text``); sources recorded
below 16 kHz are refused, since up-sampling cannot bring back the missing band.
:func:`report_manifest` says how many hours there are and which phonemes the text covers.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from convai_core.errors import ConvaiError
from convai_tts.data.dataset import read_audio

__all__ = ["prepare_manifest", "report_manifest", "trim_silence"]


def trim_silence(
    audio: np.ndarray, sample_rate: int, top_db: float = 40.0, margin_s: float = 0.05
) -> np.ndarray:
    """``audio`` without its leading and trailing stretches quieter than ``top_db`` below the
    loudest 20 ms frame (a ``margin_s`` of them is kept on each side)."""
    frame = max(1, int(0.02 * sample_rate))
    count = len(audio) // frame
    if count == 0:
        return audio
    energy = np.sqrt(np.mean(audio[: count * frame].reshape(count, frame) ** 2, axis=1) + 1e-12)
    level = 20 * np.log10(energy / max(float(energy.max()), 1e-12))
    loud = np.flatnonzero(level > -top_db)
    if loud.size == 0:
        return audio[:0]
    margin = int(margin_s * sample_rate)
    start = max(0, loud[0] * frame - margin)
    end = min(len(audio), (loud[-1] + 1) * frame + margin)
    return audio[start:end]


def _lines(manifest: Path) -> list[tuple[int, dict[str, Any]]]:
    if not manifest.is_file():
        raise ConvaiError(f"manifest {str(manifest)!r} does not exist")
    out = []
    with open(manifest, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConvaiError(f"{manifest}, line {number}: not valid JSON ({exc.msg})") from exc
            if "audio_filepath" not in item:
                raise ConvaiError(f"{manifest}, line {number}: no audio_filepath")
            out.append((number, item))
    return out


def _resolve(manifest: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else manifest.parent / candidate


def prepare_manifest(
    manifest: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    sample_rate: int = 22050,
    trim_db: float = 40.0,
    min_duration: float = 0.5,
    max_duration: float = 15.0,
    min_source_rate: int = 16000,
) -> dict[str, Any]:
    """Write resampled, trimmed clips within ``[min_duration, max_duration]`` and their manifest
    into ``output``; return a report (kept, dropped by reason, hours, warnings).

    Raises:
        ConvaiError: a source below ``min_source_rate`` (naming the file and line), or a bad line.
    """
    import soundfile as sf
    import torch
    import torchaudio.functional as taf

    source = Path(manifest)
    output = Path(output)
    (output / "wavs").mkdir(parents=True, exist_ok=True)
    dropped: Counter[str] = Counter()
    warnings: list[str] = []
    kept: list[dict[str, Any]] = []
    seconds = 0.0
    for number, item in _lines(source):
        audio, rate = read_audio(_resolve(source, item["audio_filepath"]))
        if rate < min_source_rate:
            raise ConvaiError(
                f"{source}, line {number}: {item['audio_filepath']} is recorded at {rate} Hz; TTS "
                f"needs at least {min_source_rate} Hz (up-sampling cannot restore the high band): "
                "use better recordings, or pass --min-source-rate to accept it"
            )
        if rate < sample_rate:
            warnings.append(f"line {number}: {rate} Hz source up-sampled to {sample_rate} Hz")
        if rate != sample_rate:
            audio = taf.resample(torch.from_numpy(audio), rate, sample_rate).numpy()
        audio = trim_silence(audio, sample_rate, trim_db)
        duration = len(audio) / sample_rate
        if duration < min_duration:
            dropped["too_short"] += 1
            continue
        if duration > max_duration:
            dropped["too_long"] += 1
            continue
        path = (output / "wavs" / f"{len(kept):06d}.wav").resolve()
        sf.write(str(path), audio, sample_rate, subtype="PCM_16")
        kept.append({**item, "audio_filepath": str(path), "duration": round(duration, 4)})
        seconds += duration
    target = output / "manifest.jsonl"
    partial = target.with_suffix(".jsonl.partial")
    with open(partial, "w", encoding="utf-8") as handle:
        for item in kept:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    os.replace(partial, target)
    return {
        "manifest": str(target),
        "kept": len(kept),
        "dropped": dict(dropped),
        "hours": round(seconds / 3600, 4),
        "warnings": warnings,
    }


def report_manifest(manifest: str | os.PathLike[str]) -> dict[str, Any]:
    """Hours, clip durations, sample rates and phoneme coverage of a manifest (the phonemes from
    its ``symbols`` field, or from its ``text`` through the English frontend)."""
    import soundfile as sf

    from convai_tts.text.frontend import EnglishPhonemizer
    from convai_tts.text.symbols import ARPABET

    source = Path(manifest)
    durations: list[float] = []
    rates: Counter[int] = Counter()
    phonemes: Counter[str] = Counter()
    frontend: EnglishPhonemizer | None = None
    for _number, item in _lines(source):
        info = sf.info(str(_resolve(source, item["audio_filepath"])))
        durations.append(float(info.duration))
        rates[int(info.samplerate)] += 1
        if "symbols" in item:
            symbols = str(item["symbols"]).split()
        else:
            frontend = frontend or EnglishPhonemizer()
            symbols = [
                s for sentence in frontend.sentences(str(item.get("text", ""))) for s in sentence
            ]
        phonemes.update(s for s in symbols if s in ARPABET)
    missing = [p for p in ARPABET if phonemes[p] == 0]
    values = np.array(durations or [0.0])
    return {
        "clips": len(durations),
        "hours": round(float(values.sum()) / 3600, 4),
        "duration_s": {
            "min": round(float(values.min()), 3),
            "mean": round(float(values.mean()), 3),
            "max": round(float(values.max()), 3),
        },
        "sample_rates": {str(k): v for k, v in sorted(rates.items())},
        "phoneme_coverage": round(1 - len(missing) / len(ARPABET), 4),
        "missing_phonemes": missing,
        "rarest_phonemes": [p for p, _ in sorted(phonemes.items(), key=lambda kv: kv[1])[:5]],
    }
