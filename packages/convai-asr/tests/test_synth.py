"""`convai asr synth`: datasets split by voice, with the piper neural voice beside the Debian ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from convai_core.errors import ConvaiError

SENTENCES = [
    "the committee will meet again on tuesday",
    "prices rose sharply in the first quarter",
    "rain is expected across the north tonight",
    "the team scored twice in the second half",
    "she said the plan would be ready next week",
    "officials said the bridge would reopen soon",
]


def test_a_piper_voice_speaks_every_training_sentence(tmp_path: Path) -> None:
    from convai_asr.synth.dataset import build_synthetic_dataset

    summary = build_synthetic_dataset(
        SENTENCES,
        tmp_path,
        train_voices=["espeak-ng:en-us"],
        every_sentence_voices=["piper:joe"],
        test_voices=["flite:slt"],
        normalize=str.lower,
        num_heldout_sentences=2,
        workers=2,
    )
    assert summary["every_sentence_voices"] == ["piper:joe"]
    rows = [
        json.loads(line) for line in (tmp_path / "train_manifest.jsonl").read_text().splitlines()
    ]
    by_voice: dict[str, list[dict]] = {}
    for row in rows:
        by_voice.setdefault(row["speaker"], []).append(row)
    assert sorted(by_voice) == ["espeak-ng:en-us", "piper:joe"]
    assert [r["text"] for r in by_voice["piper:joe"]] == [
        r["text"] for r in by_voice["espeak-ng:en-us"]
    ]
    assert len(by_voice["piper:joe"]) == 4
    # the piper voice is never in the dev or test splits (dev: training voices in turn)
    for split in ("dev", "test"):
        speakers = {
            json.loads(x)["speaker"]
            for x in (tmp_path / f"{split}_manifest.jsonl").read_text().splitlines()
        }
        assert "piper:joe" not in speakers
    for row in by_voice["piper:joe"]:
        audio, rate = sf.read(tmp_path / row["audio_filepath"], dtype="float32")
        assert rate == 16000 and audio.ndim == 1
        assert row["duration"] == pytest.approx(len(audio) / rate, abs=1e-3)
        # seven or eight words: speech at 2-5 words a second, not silence or a click
        words = len(row["text"].split())
        assert words / 5 < row["duration"] < words / 2 + 1.0, row
        assert float(np.sqrt(np.mean(audio**2))) > 0.02
        assert float(np.abs(audio).max()) <= 0.9 + 1e-3  # normalized like the other voices


def test_piper_audio_grows_with_the_text(tmp_path: Path) -> None:
    """The voice reads the text: thirteen words last well over twice as long as one."""
    from convai_asr.synth.voices import Voice, synthesize

    voice = Voice.parse("piper:joe")
    short = synthesize(voice, "yes.", tmp_path / "a.wav", sample_rate=16000, seed=1)
    long = synthesize(
        voice, "yes. the meeting will start at nine tomorrow morning in the main hall.",
        tmp_path / "b.wav", sample_rate=16000, seed=1,
    )  # fmt: skip
    assert long > 2.5 * short


def test_unknown_voices_are_named(tmp_path: Path) -> None:
    from convai_asr.synth.voices import Voice, check_engines

    with pytest.raises(ConvaiError, match="piper:<voice>"):
        Voice.parse("festival:kal")
    with pytest.raises(ConvaiError, match="piper voice 'nobody' is unknown: use one of joe"):
        check_engines([Voice.parse("piper:nobody")])
    with pytest.raises(ConvaiError, match="needs the file and its config"):
        check_engines([Voice.parse(f"piper:{tmp_path / 'missing.onnx'}")])


def test_a_silent_piper_worker_is_stopped_with_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    """A worker that never answers (hung) is killed after the reply timeout, and the error says
    what it printed; synthesis does not wait forever."""
    import random
    import subprocess
    import sys
    import tempfile

    from convai_asr.synth import voices

    session = object.__new__(voices._PiperSession)
    session.name = "joe"
    session.log = tempfile.TemporaryFile(mode="w+")
    session.proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; print('loading the voice', file=sys.stderr, "
         "flush=True); time.sleep(60)"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=session.log,
        text=True,
    )  # fmt: skip
    monkeypatch.setattr(voices, "REPLY_TIMEOUT_S", 1.0)
    with pytest.raises(ConvaiError, match=r"gave no answer in 1 s\): loading the voice"):
        session.speak("hello there", tmp_path / "x.wav", random.Random(0))
    assert session.proc.poll() is not None  # killed, not left running
    session.log.close()
