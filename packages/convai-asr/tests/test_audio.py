"""Tests of convai_asr.audio: loading, mixing, resampling, warnings and every bad-input error."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from convai_asr.audio import audio_info, load_audio, save_audio
from convai_asr.errors import AudioError, UpsampledAudioWarning
from convai_core.errors import ConvaiError


def _sine(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    if channels == 1:
        return wave
    return np.stack([wave * (c + 1) / channels for c in range(channels)], axis=1)


def _write(path: Path, data: np.ndarray, rate: int, **kwargs: object) -> Path:
    sf.write(path, data, rate, **kwargs)
    return path


def test_load_16k_wav_and_flac(tmp_path: Path) -> None:
    data = _sine(1.0, 16000)
    for suffix in ("wav", "flac", "ogg"):
        path = _write(tmp_path / f"a.{suffix}", data, 16000)
        audio = load_audio(path, sample_rate=16000)
        assert audio.dtype == torch.float32 and audio.ndim == 1
        assert abs(audio.shape[0] - 16000) <= 64  # ogg may pad a little
        if suffix != "ogg":
            assert np.allclose(audio.numpy(), data, atol=1e-3)


def test_offset_and_duration_read_only_the_segment(tmp_path: Path) -> None:
    ramp = (np.arange(16000) / 16000).astype(np.float32)
    path = _write(tmp_path / "ramp.wav", ramp, 16000, subtype="FLOAT")
    audio = load_audio(path, sample_rate=16000, offset=0.25, duration=0.5)
    assert audio.shape == (8000,)
    assert audio[0].item() == pytest.approx(0.25, abs=1e-4)
    tail = load_audio(path, sample_rate=16000, offset=0.75, duration=10.0)  # cut at the end
    assert tail.shape == (4000,)


def test_stereo_44k_is_mixed_and_resampled(tmp_path: Path) -> None:
    stereo = _sine(0.5, 44100, channels=2)  # channel 1 at 0.5x, channel 2 at 1x amplitude
    path = _write(tmp_path / "stereo.wav", stereo, 44100, subtype="FLOAT")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UpsampledAudioWarning)  # down-sampling must not warn
        audio = load_audio(path, sample_rate=16000)
    assert audio.shape == (8000,)
    expected = _sine(0.5, 16000) * 0.75  # mean of the two channels
    assert np.abs(audio.numpy()[200:-200] - expected[200:-200]).max() < 0.02


def test_8k_upsampling_warns_naming_file_and_rates(tmp_path: Path) -> None:
    path = _write(tmp_path / "phone.wav", _sine(0.5, 8000, freq=300.0), 8000)
    with pytest.warns(UpsampledAudioWarning) as record:
        audio = load_audio(path, sample_rate=16000)
    message = str(record[0].message)
    assert "phone.wav" in message and "8000" in message and "16000" in message
    assert "accuracy drops" in message
    assert audio.shape == (8000,)


def test_audio_info(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.wav", _sine(1.5, 8000), 8000)
    assert audio_info(path) == (8000, 12000, pytest.approx(1.5))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"nope\.wav.*does not exist"):
        load_audio(tmp_path / "nope.wav", sample_rate=16000)
    with pytest.raises(AudioError, match=r"nope\.wav"):
        audio_info(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"RIFF\x00\x00not really a wave file" * 10)
    with pytest.raises(AudioError, match=r"garbage\.wav.*corrupt") as info:
        load_audio(path, sample_rate=16000)
    assert isinstance(info.value, ConvaiError)


def test_truncated_flac(tmp_path: Path) -> None:
    path = _write(tmp_path / "cut.flac", _sine(1.0, 16000), 16000)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(AudioError, match=r"cut\.flac"):
        load_audio(path, sample_rate=16000)


def test_empty_audio(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav.*no samples"):
        load_audio(path, sample_rate=16000)


def test_nan_and_inf_samples(tmp_path: Path) -> None:
    data = _sine(0.1, 16000)
    data[10] = np.nan
    data[20] = np.inf
    path = _write(tmp_path / "nan.wav", data, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav.*2 NaN/Inf"):
        load_audio(path, sample_rate=16000)


def test_offset_beyond_end(tmp_path: Path) -> None:
    path = _write(tmp_path / "short.wav", _sine(1.0, 16000), 16000)
    with pytest.raises(AudioError, match=r"offset 2\.000 s lies beyond the end of .*short\.wav"):
        load_audio(path, sample_rate=16000, offset=2.0)


def test_bad_duration_and_offset_arguments(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.wav", _sine(1.0, 16000), 16000)
    with pytest.raises(AudioError, match="duration"):
        load_audio(path, sample_rate=16000, duration=0.0)
    with pytest.raises(AudioError, match="offset"):
        load_audio(path, sample_rate=16000, offset=-1.0)


def test_save_audio_round_trip_and_atomic(tmp_path: Path) -> None:
    mono = torch.from_numpy(_sine(0.25, 16000))
    out = tmp_path / "sub" / "out.flac"
    save_audio(out, mono, 16000)
    assert torch.allclose(load_audio(out, sample_rate=16000), mono, atol=1e-3)
    stereo = torch.stack([mono, -mono])  # (C, T)
    save_audio(tmp_path / "st.wav", stereo, 16000)
    assert sf.info(str(tmp_path / "st.wav")).channels == 2
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["out.flac"]  # no temp left
    with pytest.raises(AudioError, match="suffix"):
        save_audio(tmp_path / "x.unknown", mono, 16000)
    with pytest.raises(AudioError, match="NaN"):
        save_audio(tmp_path / "x.wav", torch.full((10,), float("nan")), 16000)
