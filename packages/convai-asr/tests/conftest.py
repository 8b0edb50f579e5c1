"""Shared fixtures: small speech datasets synthesized with espeak-ng (installed by `make`)."""

from __future__ import annotations

from pathlib import Path

import pytest

# Our own short sentences: each word appears in several of them, so a tiny model can fit them.
SENTENCES = [
    "open the door",
    "close the door",
    "open the window",
    "close the window",
    "turn on the light",
    "turn off the light",
    "turn on the radio",
    "turn off the radio",
    "play some music",
    "stop the music",
    "call my mother",
    "call my father",
    "what time is it",
    "what day is it",
    "set an alarm",
    "cancel the alarm",
    "go to the kitchen",
    "go to the garden",
    "read the news",
    "read my mail",
]


def synthesize_set(out: Path, sentences: list[str], voice: str, *, seed: int = 0) -> Path:
    """Speak ``sentences`` with one espeak-ng or flite voice; returns the manifest path."""
    import json

    from convai_asr.synth.voices import Voice, check_engines, synthesize

    v = Voice.parse(voice)
    check_engines([v])
    rows = []
    for i, text in enumerate(sentences):
        wav = out / f"{i:03d}.wav"
        duration = synthesize(v, text, wav, sample_rate=16000, seed=seed + i)
        rows.append({"audio_filepath": wav.name, "duration": round(duration, 3), "text": text})
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


SILENCE_S = 0.4


def concatenate(manifest: Path, indices: list[int], out_wav: Path) -> tuple[str, float]:
    """Join the recordings ``indices`` of ``manifest`` with SILENCE_S pauses: (text, seconds)."""
    import json

    import numpy as np
    import soundfile as sf

    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    silence = np.zeros(int(SILENCE_S * 16000), dtype="float32")
    pieces = []
    for i in indices:
        audio, _ = sf.read(manifest.parent / rows[i]["audio_filepath"], dtype="float32")
        pieces += [audio, silence]
    joined = np.concatenate(pieces[:-1])
    sf.write(out_wav, joined, 16000)
    return " ".join(rows[i]["text"] for i in indices), len(joined) / 16000


@pytest.fixture(scope="session")
def concat():
    """The :func:`concatenate` helper (test modules cannot import conftest by name)."""
    return concatenate


@pytest.fixture(scope="session")
def tiny_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 short commands spoken by one espeak-ng voice (manifest path)."""
    return synthesize_set(tmp_path_factory.mktemp("tiny_speech"), SENTENCES, "espeak-ng:en-us")


@pytest.fixture(scope="session")
def tiny_speech_train(tiny_speech: Path) -> Path:
    """The 20 commands plus 20 recordings of two commands joined by a pause (training set).

    The joined pairs teach the models what a pause between commands looks like, which the
    long-recording tests need.
    """
    import json

    rows = [json.loads(line) for line in tiny_speech.read_text().splitlines()]
    for k in range(20):
        name = f"pair_{k:02d}.wav"
        text, seconds = concatenate(tiny_speech, [k, (3 * k + 7) % 20], tiny_speech.parent / name)
        rows.append({"audio_filepath": name, "duration": round(seconds, 3), "text": text})
    manifest = tiny_speech.parent / "train_manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest
