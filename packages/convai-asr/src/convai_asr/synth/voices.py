"""Offline TTS voices used to turn text into paired speech data.

Each :class:`Voice` runs a Debian command-line synthesizer (``espeak-ng`` or ``flite``) into a
temporary wav file; :func:`synthesize` resamples the result to the requested rate and varies the
speaking rate per utterance so a voice does not always sound the same.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from convai_core.errors import ConvaiError

DEBIAN_PACKAGES = {"espeak-ng": "espeak-ng", "flite": "flite"}


@dataclass(frozen=True)
class Voice:
    """A synthesizer voice: ``engine`` is "espeak-ng" or "flite", ``name`` its voice id."""

    engine: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.engine}:{self.name}"

    @classmethod
    def parse(cls, key: str) -> Voice:
        engine, sep, name = key.partition(":")
        if not sep or engine not in DEBIAN_PACKAGES or not name:
            raise ConvaiError(
                f"voice {key!r} is not of the form 'espeak-ng:<voice>' or 'flite:<voice>' "
                f"(for example espeak-ng:en-us+m3 or flite:slt)"
            )
        return cls(engine, name)


#: Voices used for training by default (several espeak-ng variants and flite voices).
DEFAULT_TRAIN_VOICES = (
    "espeak-ng:en-us",
    "espeak-ng:en-us+f3",
    "espeak-ng:en-gb+m4",
    "espeak-ng:en-gb-x-rp+f2",
    "espeak-ng:en-029+m2",
    "flite:kal16",
    "flite:awb",
    "flite:rms",
)
#: Voices held out for testing: never seen in training.
DEFAULT_TEST_VOICES = ("espeak-ng:en-gb-scotland+m3", "flite:slt")


def check_engines(voices: list[Voice]) -> None:
    """Raise a clear error naming the Debian package when a synthesizer is not installed."""
    for engine in sorted({v.engine for v in voices}):
        if shutil.which(engine) is None:
            raise ConvaiError(
                f"{engine} is not installed; install it with `apt-get install "
                f"{DEBIAN_PACKAGES[engine]}` (make demo / make test do this when run as root)."
            )


def _command(voice: Voice, text: str, out: Path, rng: random.Random) -> list[str]:
    if voice.engine == "espeak-ng":
        speed = rng.randint(140, 185)  # words per minute
        pitch = rng.randint(35, 65)
        return [
            "espeak-ng",
            "-v",
            voice.name,
            "-s",
            str(speed),
            "-p",
            str(pitch),
            "-w",
            str(out),
            text,
        ]
    stretch = rng.uniform(0.9, 1.15)
    return [
        "flite",
        "-voice",
        voice.name,
        "--setf",
        f"duration_stretch={stretch:.3f}",
        "-t",
        text,
        "-o",
        str(out),
    ]


def synthesize(voice: Voice, text: str, out_path: Path, *, sample_rate: int, seed: int) -> float:
    """Speak ``text`` with ``voice`` into ``out_path`` (mono wav at ``sample_rate``).

    Returns the duration in seconds.
    """
    import numpy as np
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="convai-synth-") as tmp:
        raw = Path(tmp) / "raw.wav"
        result = subprocess.run(
            _command(voice, text, raw, rng), capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0 or not raw.is_file():
            raise ConvaiError(f"{voice.key} failed on {text!r}: {result.stderr.strip()[:300]}")
        samples, rate = sf.read(raw, dtype="float32", always_2d=True)
    audio = torch.from_numpy(samples.mean(axis=1))
    if rate != sample_rate:
        audio = AF.resample(audio, orig_freq=rate, new_freq=sample_rate)
    peak = float(audio.abs().max()) if audio.numel() else 0.0
    if peak > 0:
        audio = audio * (0.9 / peak) * rng.uniform(0.5, 1.0)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out_path.with_name(f".{out_path.name}.tmp.wav")
    sf.write(tmp_out, np.asarray(audio, dtype="float32"), sample_rate, subtype="PCM_16")
    os.replace(tmp_out, out_path)
    return audio.numel() / sample_rate
