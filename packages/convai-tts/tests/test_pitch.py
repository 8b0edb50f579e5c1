"""FastPitch's pitch: the YIN tracker, per-symbol averages, and a model that learns to predict
the teacher's intonation and can shift it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from convai_tts.audio import MelConfig, MelSpectrogram, pitch_track, symbol_pitch
from convai_tts.data.dataset import DurationDataset, collate_durations
from convai_tts.models.fastpitch import FastPitchModel

SR = 22050


def _glide(seconds: float = 2.0, noise: float = 0.003) -> tuple[torch.Tensor, torch.Tensor]:
    """A harmonic tone whose F0 sweeps 100-200 Hz, a quarter second of silence first."""
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(int(SR * seconds)) / SR
    f0 = 150 + 50 * torch.sin(2 * torch.pi * 0.7 * t)
    phase = 2 * torch.pi * torch.cumsum(f0, 0) / SR
    audio = 0.1 * sum(torch.sin(k * phase) / k for k in range(1, 15))
    audio[: SR // 4] = 0.0
    audio = audio + noise * torch.randn(audio.shape, generator=generator)
    return audio, f0


def test_yin_follows_a_gliding_voice_and_leaves_silence_unvoiced() -> None:
    audio, f0 = _glide()
    pitch = pitch_track(audio)
    assert pitch.shape[0] == MelSpectrogram().frames(audio.numel())  # one value per mel frame
    truth = f0[:: MelConfig().hop_length][: pitch.shape[0]]
    voiced = pitch > 0
    quiet = SR // 4 // MelConfig().hop_length - 3  # frames wholly inside the silence
    assert not voiced[:quiet].any()
    assert voiced[quiet + 6 :].float().mean() > 0.97
    error = ((pitch - truth).abs() / truth)[voiced]
    assert error.max() < 0.03, error.max()  # no octave errors
    assert error.median() < 0.005


def test_white_noise_is_unvoiced() -> None:
    noise = 0.1 * torch.randn(SR, generator=torch.Generator().manual_seed(1))
    assert (pitch_track(noise) > 0).float().mean() < 0.1


def test_symbol_pitch_averages_voiced_frames_only() -> None:
    frames = torch.tensor([100.0, 0.0, 120.0, 0.0, 0.0, 200.0, 210.0])
    durations = torch.tensor([3, 2, 0, 2])
    assert symbol_pitch(frames, durations).tolist() == [110.0, 0.0, 0.0, 205.0]


TINY_PITCH = {
    "name": "tts/fastpitch",
    "d_model": 64,
    "heads": 2,
    "encoder_layers": 2,
    "decoder_layers": 1,
    "ff_dim": 128,
    "dropout": 0.0,
    "duration_predictor": {"hidden": 64, "dropout": 0.0},
    "pitch": {"enabled": True, "hidden": 64, "dropout": 0.0, "loss_weight": 1.0},
}


@pytest.fixture(scope="module")
def pitch_model(teacher_corpus: Path) -> tuple[FastPitchModel, dict[str, torch.Tensor], float]:
    torch.manual_seed(0)
    model = FastPitchModel({**TINY_PITCH, "train_ds": {"manifest": str(teacher_corpus)}})
    loader = model.build_dataloader(model.cfg.train_ds, "train")  # sets pitch_stats
    assert loader is not None
    dataset = loader.dataset
    assert isinstance(dataset, DurationDataset)
    batch = collate_durations([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        start = float(model.losses(batch)["pitch_loss"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        loss = model.losses(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), batch, start


def test_the_teacher_voice_has_a_plausible_pitch(pitch_model) -> None:
    model, batch, _ = pitch_model
    stats = model.cfg.pitch_stats
    assert 70.0 < stats.mean < 250.0 and 5.0 < stats.std < 80.0  # an adult male voice
    voiced = (batch["pitch"] > 0).float().sum() / (batch["symbol_lengths"].sum())
    assert 0.3 < voiced < 0.9  # vowels and voiced consonants, not pauses or /s/


def test_the_model_learns_to_predict_each_symbols_pitch(pitch_model) -> None:
    """The predictor's loss falls far below its start and its predictions follow the
    teacher's intonation on voiced symbols (correlation)."""
    model, batch, start = pitch_model
    with torch.no_grad():
        end = float(model.losses(batch)["pitch_loss"])
        encoded, _, pad = model._encode(batch["symbols"], batch["symbol_lengths"])
        assert model.pitch_predictor is not None
        predicted = model.pitch_predictor(encoded, pad)
    assert end < 0.4 * start, (start, end)
    target = model.normalize_pitch(batch["pitch"])
    voiced = (batch["pitch"] > 0) & ~pad
    pair = torch.stack([predicted[voiced], target[voiced]])
    assert torch.corrcoef(pair)[0, 1] > 0.8


def test_pitch_shift_moves_the_spoken_pitch(pitch_model) -> None:
    """An octave up doubles the Hz the model is conditioned on; the mel changes with it,
    the durations do not."""
    model, batch, _ = pitch_model
    with torch.no_grad():
        plain, frames = model(batch["symbols"][:1], batch["symbol_lengths"][:1])
        higher, frames_higher = model(
            batch["symbols"][:1], batch["symbol_lengths"][:1], pitch_shift=12.0
        )
    assert torch.equal(frames, frames_higher)
    assert (plain - higher).abs().mean() > 0.05


def test_a_pitch_model_round_trips(pitch_model, tmp_path: Path) -> None:
    from convai_core.models.base import ModelBase

    model, _, _ = pitch_model
    before = list(model.mels("How much wood would a woodchuck chuck?"))
    restored = ModelBase.restore_from(model.save_to(tmp_path / "pitch.convai"))
    assert restored.cfg.pitch_stats == model.cfg.pitch_stats
    after = list(restored.mels("How much wood would a woodchuck chuck?"))
    assert torch.equal(before[0], after[0])


@pytest.mark.slow
def test_a_pitch_model_exports_verified(pitch_model, tmp_path: Path) -> None:
    """The pitch predictor and embedding export with the rest (ONNX, verified; ~40 s)."""
    model, _, _ = pitch_model
    assert model.export(tmp_path / "pitch.onnx", format="onnx") is not None
