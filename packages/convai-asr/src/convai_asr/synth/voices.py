"""Offline TTS voices used to turn text into paired speech data.

Each :class:`Voice` runs a synthesizer into a temporary wav file: a Debian command-line program
(``espeak-ng`` or ``flite``, one process per utterance) or the piper neural voice (``piper:joe``,
natural-sounding speech; GPL-3, so it runs in a side environment created in the cache on first
use, one long-lived process per worker, see :mod:`convai_core.datatools`). :func:`synthesize`
resamples the result to the requested rate and varies the speaking rate (and piper's sampling
noise) per utterance so a voice does not always sound the same. espeak-ng and flite are seeded;
piper's sampling noise is not, so its clips differ a little from run to run.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import select
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from convai_core.errors import ConvaiError

DEBIAN_PACKAGES = {"espeak-ng": "espeak-ng", "flite": "flite"}
#: Every engine: the Debian programs and the piper voice (``piper:<name or voice.onnx>``).
ENGINES = (*DEBIAN_PACKAGES, "piper")


@dataclass(frozen=True)
class Voice:
    """A synthesizer voice: ``engine`` is "espeak-ng", "flite" or "piper", ``name`` its voice id
    (for piper, ``joe`` or the path of a piper voice's ``.onnx`` file)."""

    engine: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.engine}:{self.name}"

    @classmethod
    def parse(cls, key: str) -> Voice:
        engine, sep, name = key.partition(":")
        if not sep or engine not in ENGINES or not name:
            raise ConvaiError(
                f"voice {key!r} is not of the form 'espeak-ng:<voice>', 'flite:<voice>' or "
                f"'piper:<voice>' (for example espeak-ng:en-us+m3, flite:slt or piper:joe)"
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
    """Raise a clear error naming the Debian package when a synthesizer is not installed; create
    the piper environment (once, in the cache) when a piper voice is asked for."""
    from convai_core.datatools import piper_voice

    for voice in sorted({v for v in voices if v.engine == "piper"}, key=lambda v: v.name):
        piper_voice(voice.name)
    for engine in sorted({v.engine for v in voices} & set(DEBIAN_PACKAGES)):
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


#: Seconds a synthesizer may take for one utterance before it is stopped.
REPLY_TIMEOUT_S = 120.0


class _PiperSession:
    """A piper worker process kept for the life of this process (loading the voice takes about
    a second, speaking a sentence a fraction of one)."""

    def __init__(self, name: str) -> None:
        from convai_core.datatools import PIPER_WORKER, piper_voice

        python, model = piper_voice(name, quiet=True)
        self.log = tempfile.TemporaryFile(mode="w+", prefix="convai-piper-")
        self.proc = subprocess.Popen(
            [str(python), str(PIPER_WORKER), "--model", str(model)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        self.name = name

    def speak(self, text: str, out: Path, rng: random.Random) -> None:
        request = {
            "key": "utt",
            "text": text,
            "out": str(out),
            "length_scale": round(rng.uniform(0.85, 1.2), 3),  # speaking rate
            "noise_scale": round(rng.uniform(0.4, 0.8), 3),  # voice variation
            "noise_w_scale": round(rng.uniform(0.5, 1.0), 3),  # rhythm variation
        }
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            # one reply a request, so nothing waits in the buffer: the pipe itself says when
            ready, _, _ = select.select([self.proc.stdout], [], [], REPLY_TIMEOUT_S)
            reply = self.proc.stdout.readline() if ready else ""
        except BrokenPipeError:
            reply = ""
        if not reply or not out.is_file():
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=30)
            self.log.seek(0)
            said = self.log.read().strip()[-400:]
            raise ConvaiError(
                f"piper:{self.name} stopped on {text!r} (or gave no answer in "
                f"{REPLY_TIMEOUT_S:.0f} s): {said or 'no message'}"
            )

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


_PIPER_SESSIONS: dict[str, _PiperSession] = {}


@atexit.register
def _close_piper_sessions() -> None:
    while _PIPER_SESSIONS:
        _PIPER_SESSIONS.popitem()[1].close()


def _speak(voice: Voice, text: str, raw: Path, rng: random.Random) -> None:
    """Write ``text`` spoken by ``voice`` to ``raw`` (a wav at the engine's own rate)."""
    if voice.engine == "piper":
        session = _PIPER_SESSIONS.get(voice.name)
        if session is None or session.proc.poll() is not None:
            session = _PIPER_SESSIONS[voice.name] = _PiperSession(voice.name)
        session.speak(text, raw, rng)
        return
    result = subprocess.run(
        _command(voice, text, raw, rng),
        capture_output=True,
        text=True,
        timeout=REPLY_TIMEOUT_S,
    )
    if result.returncode != 0 or not raw.is_file():
        raise ConvaiError(f"{voice.key} failed on {text!r}: {result.stderr.strip()[:300]}")


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
        _speak(voice, text, raw, rng)
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
