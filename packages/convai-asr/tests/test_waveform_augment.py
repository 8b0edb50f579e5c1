"""Waveform augmentations: each one's measured effect, determinism, and use from a data config."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from convai_asr.augment.waveform import (
    Gain,
    Noise,
    SpeedPerturb,
    Telephone,
    TimeShift,
    TimeStretch,
    colored_noise,
)
from convai_core.errors import ConfigError

SR = 16000


def _tone(freq: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(SR * seconds)) / SR
    return 0.5 * torch.sin(2 * math.pi * freq * t)


def _peak_hz(audio: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(audio).abs()
    return float(spectrum.argmax()) * SR / audio.shape[-1]


def _band_power(audio: torch.Tensor, low: float, high: float) -> float:
    spectrum = torch.fft.rfft(audio).abs().pow(2)
    freqs = torch.fft.rfftfreq(audio.shape[-1], 1 / SR)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("rate", [0.9, 1.1])
def test_speed_perturb_changes_duration_and_pitch_by_the_rate(rate: float) -> None:
    audio = _tone(440.0)
    out = SpeedPerturb(SR, rates=[rate])(audio, _gen())
    assert out.shape[-1] / audio.shape[-1] == pytest.approx(1 / rate, rel=2e-3)
    assert _peak_hz(out) == pytest.approx(440.0 * rate, abs=3.0)


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretch_changes_duration_but_keeps_the_pitch(rate: float) -> None:
    audio = _tone(440.0)
    out = TimeStretch(SR, min_rate=rate, max_rate=rate)(audio, _gen())
    assert out.shape[-1] == round(audio.shape[-1] / rate)
    assert _peak_hz(out) == pytest.approx(440.0, abs=3.0)


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_noise_reaches_the_target_snr(color: str, snr_db: float) -> None:
    speech_like = _tone(300.0) + 0.3 * _tone(1200.0)
    out = Noise(SR, min_snr_db=snr_db, max_snr_db=snr_db, color=color)(speech_like, _gen(3))
    noise = out - speech_like
    achieved = 10 * math.log10(float(speech_like.pow(2).mean()) / float(noise.pow(2).mean()))
    assert achieved == pytest.approx(snr_db, abs=0.5)


def test_noise_colors_have_their_spectral_slopes() -> None:
    white, pink, brown = (colored_noise(SR * 4, c, _gen(1)) for c in ("white", "pink", "brown"))

    # power per octave: flat * f for white, flat for pink, falling for brown
    def octave_ratio(noise: torch.Tensor) -> float:
        return _band_power(noise, 2000, 4000) / _band_power(noise, 250, 500)

    assert octave_ratio(white) == pytest.approx(8.0, rel=0.2)
    assert octave_ratio(pink) == pytest.approx(1.0, rel=0.2)
    assert octave_ratio(brown) == pytest.approx(1 / 8, rel=0.25)


def test_telephone_channel_limits_the_band() -> None:
    audio = _tone(150.0) + _tone(1000.0) + _tone(6000.0)
    out = Telephone(SR)(audio, _gen())
    assert out.shape == audio.shape
    total = _band_power(out, 0, SR / 2)
    assert _band_power(out, 4000, SR / 2) < 1e-3 * total  # nothing above the 8 kHz Nyquist
    kept = _band_power(out, 900, 1100) / _band_power(audio, 900, 1100)
    low = _band_power(out, 100, 200) / _band_power(audio, 100, 200)
    assert kept > 0.5 and low < 0.5 * kept  # the pass band stays, 150 Hz is attenuated


def test_gain_and_time_shift() -> None:
    audio = _tone(500.0)
    out = Gain(SR, min_db=-6.0, max_db=-6.0)(audio, _gen())
    assert 20 * math.log10(float(out.abs().max() / audio.abs().max())) == pytest.approx(
        -6.0, abs=1e-3
    )
    impulse = torch.zeros(1000)
    impulse[500] = 1.0
    shifted = TimeShift(SR, max_seconds=0.01)(impulse, _gen(5))
    assert shifted.shape == impulse.shape and float(shifted.sum()) == 1.0
    assert abs(int(shifted.argmax()) - 500) <= 160 and int(shifted.argmax()) != 500


@pytest.mark.parametrize(
    "augmentation",
    [
        SpeedPerturb(SR),
        TimeStretch(SR),
        Gain(SR),
        TimeShift(SR),
        Noise(SR, color="pink"),
        Telephone(SR),
    ],
    ids=lambda a: type(a).__name__,
)
def test_same_seed_same_output(augmentation) -> None:
    audio = _tone(440.0) + 0.1 * torch.randn(SR, generator=_gen(9))
    first, second = augmentation(audio, _gen(7)), augmentation(audio, _gen(7))
    assert torch.equal(first, second)
    if not isinstance(augmentation, Telephone):  # the channel draws nothing
        assert not torch.equal(first, augmentation(audio, _gen(8)))


def test_data_config_applies_registered_augmentations_in_the_dataset(tmp_path: Path) -> None:
    from convai_asr.data.loaders import build_audio_loader
    from convai_asr.text.tokenizers import CharTokenizer

    wav = tmp_path / "a.wav"
    sf.write(wav, _tone(440.0).numpy().astype(np.float32), SR)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "a"}) + "\n"
    )
    context = {"tokenizer": CharTokenizer(), "sample_rate": SR}
    section = {
        "manifest": str(manifest),
        "batch_size": 1,
        "augmentations": [
            {"name": "asr/speed_perturb", "rates": [0.8]},
            {"name": "asr/gain", "prob": 0.0},
        ],
    }
    loader, _ = build_audio_loader(
        section, path="model.train_ds", context=context, default_shuffle=False
    )
    batch = next(iter(loader))
    assert batch["audio"].shape[-1] == pytest.approx(SR / 0.8, rel=2e-3)
    section["augmentations"] = [{"name": "asr/speed_perturbb"}]
    with pytest.raises(
        ConfigError,
        match=r"model.train_ds.augmentations\[0\].name='asr/speed_perturbb'.*Did you mean 'asr/speed_perturb'",
    ):
        build_audio_loader(section, path="model.train_ds", context=context, default_shuffle=False)


def test_offline_augmentation_writes_audio_and_a_manifest(tmp_path: Path) -> None:
    from convai_asr.cli import asr_main
    from convai_asr.data.manifest import read_manifest

    for i, freq in enumerate((300.0, 500.0)):
        sf.write(tmp_path / f"{i}.wav", _tone(freq).numpy().astype(np.float32), SR)
    manifest = tmp_path / "in.jsonl"
    manifest.write_text(
        "".join(
            json.dumps({"audio_filepath": f"{i}.wav", "duration": 1.0, "text": t}) + "\n"
            for i, t in enumerate(("open", "close"))
        )
    )
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "- {name: asr/speed_perturb, rates: [0.9]}\n- {name: asr/noise, min_snr_db: 20, max_snr_db: 20}\n"
    )
    outputs = []
    for run in ("a", "b"):
        argv = [
            "augment",
            "--manifest",
            str(manifest),
            "--recipe",
            str(recipe),
            "--copies",
            "2",
            "--output",
            str(tmp_path / run),
            "--keep-original",
        ]
        assert asr_main(argv) == 0
        outputs.append(read_manifest(tmp_path / run / "manifest.jsonl").entries)
    entries = outputs[0]
    assert [e.text for e in entries] == ["open", "open", "open", "close", "close", "close"]
    augmented = [e for e in entries if "audio" in Path(e.audio_filepath).parts]
    assert len(augmented) == 4
    for entry in augmented:
        assert entry.duration == pytest.approx(1 / 0.9, rel=2e-3)
        assert sf.info(entry.audio_filepath).frames == round(entry.duration * SR)
    # the same seed writes the same audio
    first = sf.read(augmented[0].audio_filepath)[0]
    again = sf.read(
        next(e for e in outputs[1] if "audio" in Path(e.audio_filepath).parts).audio_filepath
    )[0]
    assert np.array_equal(first, again)
    recipe.write_text("name: asr/gain\n")
    with pytest.raises(ConfigError, match="must hold a non-empty YAML list"):
        asr_main(
            [
                "augment",
                "--manifest",
                str(manifest),
                "--recipe",
                str(recipe),
                "--output",
                str(tmp_path / "c"),
            ]
        )
