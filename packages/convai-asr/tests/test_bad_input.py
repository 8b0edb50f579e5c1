"""Bad input reaching training: clear errors naming the file or line, or counted skips."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from convai_core.train import main

COMMON = [
    "model=asr/demo_ctc",
    "model.validation_ds=null",
    "model.augmentations=[]",
    "model.train_ds.batch_seconds=null",
    "+model.train_ds.batch_size=4",
    "model.train_ds.num_workers=0",
    "trainer.max_steps=3",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.fixture
def data(tiny_speech: Path, tmp_path: Path) -> Path:
    """A copy of the tiny set, to which tests add bad lines and files."""
    folder = tmp_path / "data"
    shutil.copytree(
        tiny_speech.parent, folder, ignore=shutil.ignore_patterns("*manifest*", "pair*")
    )
    rows = [json.loads(line) for line in tiny_speech.read_text().splitlines()][:8]
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _append(manifest: Path, *rows: dict | str) -> None:
    with open(manifest, "a") as fh:
        for row in rows:
            fh.write((row if isinstance(row, str) else json.dumps(row)) + "\n")


def _bad_files(folder: Path) -> list[dict]:
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "zero.wav", np.zeros(0, dtype="float32"), 16000)
    return [
        {"audio_filepath": "corrupt.wav", "duration": 1.0, "text": "corrupt"},
        {"audio_filepath": "empty.wav", "duration": 1.0, "text": "empty"},
        {"audio_filepath": "zero.wav", "duration": 1.0, "text": "zero length"},
        {"audio_filepath": "missing.wav", "duration": 1.0, "text": "missing"},
    ]


def test_bad_audio_fails_clearly_by_default(data: Path, tmp_path: Path, capsys) -> None:
    _append(
        data / "manifest.jsonl", {"audio_filepath": "corrupt.wav", "duration": 1.0, "text": "bad"}
    )
    (data / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    code = main(
        [
            *COMMON,
            f"model.train_ds.manifest={data / 'manifest.jsonl'}",
            "model.train_ds.skip_bad_audio=false",
            "model.train_ds.shuffle=false",
            f"exp_manager.exp_dir={tmp_path / 'exp'}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "corrupt.wav" in err, err[-2000:]


def test_training_survives_bad_files_when_skipping(data: Path, tmp_path: Path, caplog) -> None:
    _append(data / "manifest.jsonl", *_bad_files(data))
    with caplog.at_level(logging.WARNING):
        code = main(
            [
                *COMMON,
                f"model.train_ds.manifest={data / 'manifest.jsonl'}",
                "model.train_ds.skip_bad_audio=true",
                "trainer.max_steps=6",
                f"exp_manager.exp_dir={tmp_path / 'exp'}",
            ]
        )
    assert code == 0
    logged = caplog.text
    for name in ("corrupt.wav", "empty.wav", "zero.wav", "missing.wav"):
        assert name in logged, name
    events = (tmp_path / "exp" / "asr_ctc" / "version_0" / "events.jsonl").read_text()
    assert json.loads(events.splitlines()[-1])["global_step"] == 6
    assert (tmp_path / "exp" / "asr_ctc" / "version_0" / "asr_ctc.convai").is_file()


def test_malformed_manifest_line_is_named(data: Path, tmp_path: Path, capsys) -> None:
    _append(
        data / "manifest.jsonl",
        '{"audio_filepath": "000.wav", "duration": 1.2, "text": ',
        {"audio_filepath": "000.wav", "text": "no duration"},
    )
    code = main(
        [
            *COMMON,
            f"model.train_ds.manifest={data / 'manifest.jsonl'}",
            f"exp_manager.exp_dir={tmp_path / 'exp'}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "manifest.jsonl:9" in err, err[-2000:]
    # skip_malformed counts them instead, and training goes on
    code = main(
        [
            *COMMON,
            f"model.train_ds.manifest={data / 'manifest.jsonl'}",
            "+model.train_ds.skip_malformed=true",
            f"exp_manager.exp_dir={tmp_path / 'exp2'}",
        ]
    )
    assert code == 0


def test_unknown_characters_are_removed_and_counted(data: Path, tmp_path: Path, caplog) -> None:
    rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    rows[0]["text"] = "Open the door #1 — café!"
    (data / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.INFO):
        code = main(
            [
                *COMMON,
                f"model.train_ds.manifest={data / 'manifest.jsonl'}",
                f"exp_manager.exp_dir={tmp_path / 'exp'}",
            ]
        )
    assert code == 0
    assert "removed characters outside the vocabulary" in caplog.text
    assert "'#'" in caplog.text


def test_other_sample_rates_are_resampled(data: Path, tmp_path: Path) -> None:
    from convai_asr.audio import load_audio
    from convai_asr.errors import UpsampledAudioWarning

    audio, rate = sf.read(data / "000.wav", dtype="float32")
    import torch
    import torchaudio.functional as AF

    low = AF.resample(torch.from_numpy(audio), orig_freq=rate, new_freq=8000).numpy()
    sf.write(data / "low.wav", low, 8000)
    high = AF.resample(torch.from_numpy(audio), orig_freq=rate, new_freq=44100).numpy()
    sf.write(data / "high.wav", np.stack([high, high], axis=1), 44100)  # stereo too
    with pytest.warns(UpsampledAudioWarning, match=r"low\.wav.*8000"):
        up = load_audio(data / "low.wav", sample_rate=16000)
    down = load_audio(data / "high.wav", sample_rate=16000)
    assert abs(len(up) - len(audio)) <= 2 and abs(len(down) - len(audio)) <= 2
    _append(
        data / "manifest.jsonl",
        {"audio_filepath": "low.wav", "duration": len(low) / 8000, "text": "open the door"},
        {"audio_filepath": "high.wav", "duration": len(high) / 44100, "text": "open the door"},
    )
    code = main(
        [
            *COMMON,
            f"model.train_ds.manifest={data / 'manifest.jsonl'}",
            f"exp_manager.exp_dir={tmp_path / 'exp'}",
        ]
    )
    assert code == 0
