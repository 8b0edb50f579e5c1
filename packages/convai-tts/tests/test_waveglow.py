"""tts/waveglow: exact invertibility and log-determinants, learning, archive, vocoder use, export."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from convai_core.errors import ConfigError
from convai_tts.models.waveglow import WaveGlowModel
from convai_tts.modules.waveglow import (
    AffineCoupling,
    Invertible1x1Conv,
    WaveGlow,
    flow_nll,
    squeeze,
    unsqueeze,
)

RATE = 22050
MEL = {"n_fft": 256, "hop_length": 64, "win_length": 256, "n_mels": 16}
TINY = {
    "name": "tts/waveglow",
    "mel": MEL,
    "n_flows": 4,
    "n_group": 4,
    "n_early_every": 2,
    "n_early_size": 1,
    "wn": {"n_layers": 2, "n_channels": 16, "kernel_size": 3},
    "optim": {"name": "adam", "lr": 2e-3},
}


def _perturbed(flow: WaveGlow, seed: int = 0) -> WaveGlow:
    """The flow with random last layers in its couplings (they start at zero: the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for coupling in flow.couplings:
            assert isinstance(coupling, AffineCoupling)
            end = coupling.wn.end
            end.weight.copy_(0.2 * torch.randn(end.weight.shape, generator=generator))
            end.bias.copy_(0.2 * torch.randn(end.bias.shape, generator=generator))
    return flow


def test_the_flow_inverts_exactly_and_counts_its_log_determinant() -> None:
    """Audio -> z -> audio within 1e-4 and z -> audio -> z (early outputs in their places);
    each 1x1 weight starts as a rotation (det +1) and reports torch.logdet; the total log-det
    equals that of the flow's Jacobian, computed by autograd."""
    torch.manual_seed(0)
    flow = _perturbed(WaveGlow(16, 64, 256, n_flows=4, n_group=4, n_early_every=2,
                               n_early_size=1, n_layers=2, n_channels=16))  # fmt: skip
    assert flow.channels == [4, 4, 3, 3]
    convs = [conv for conv in flow.convs if isinstance(conv, Invertible1x1Conv)]
    assert len(convs) == 4
    for conv in convs:
        weight = conv.weight.detach()
        assert torch.allclose(weight @ weight.T, torch.eye(len(weight)), atol=1e-5)
        assert torch.det(weight) == pytest.approx(1.0, abs=1e-5)
    mel = torch.randn(2, 16, 6)
    audio = 0.3 * torch.randn(2, 6 * 64)
    with torch.no_grad():
        z, log_s, log_det = flow(audio, mel)
        assert z.shape == (2, 4, 96) and [s.shape[1] for s in log_s] == [2, 2, 2, 2]
        assert (flow.infer(mel, z) - audio).abs().max() < 1e-4
        noise = torch.randn(2, 4, 96)
        assert (flow(flow.infer(mel, noise), mel)[0] - noise).abs().max() < 1e-4
        assert any(s.abs().max() > 0.05 for s in log_s)  # the couplings really scale
        assert torch.equal(unsqueeze(squeeze(audio, 4)), audio)
        for conv, value in zip(convs, log_det, strict=True):
            assert float(value) == pytest.approx(float(torch.logdet(conv.weight)), abs=1e-5)
            conv.weight.add_(0.2 * torch.randn_like(conv.weight))  # no longer a rotation
            expected = float(torch.logdet(conv.weight))
            assert abs(expected) > 1e-3 and float(conv.log_det()) == pytest.approx(expected)
            x = torch.randn(2, len(conv.weight), 5)
            assert (conv.inverse(conv(x)[0]) - x).abs().max() < 1e-5

    small = _perturbed(WaveGlow(4, 8, 16, n_flows=4, n_group=4, n_early_every=2,
                                n_early_size=1, n_layers=2, n_channels=8), seed=1).double()  # fmt: skip
    small_mel = torch.randn(1, 4, 3, dtype=torch.float64)
    small_audio = torch.randn(1, 24, dtype=torch.float64)
    with torch.no_grad():
        z, log_s, log_det = small(small_audio, small_mel)
    jacobian = torch.autograd.functional.jacobian(
        lambda a: small(a, small_mel)[0].reshape(-1), small_audio
    ).reshape(24, 24)
    total = sum(s.sum() for s in log_s) + 6 * sum(log_det)  # 6 groups of 4 samples
    assert float(total) == pytest.approx(float(torch.linalg.slogdet(jacobian)[1]), abs=1e-9)
    assert abs(float(total)) > 0.1
    # the NLL is per sample: -log-det / samples when z = 0
    nll = flow_nll(torch.zeros_like(z), log_s, log_det)
    assert float(nll) == pytest.approx(-float(total) / 24, abs=1e-9)


def _voice_corpus(folder: Path, clips: int = 6) -> Path:
    """Short harmonic clips of different pitches, with a slow tremolo and a little noise."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(clips):
        t = np.arange(int(0.3 * RATE) + 97 * i) / RATE
        f0 = 150 + 40 * i
        voiced = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 5))
        audio = 0.25 * voiced * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t)) ** 2
        audio = audio + 0.003 * rng.standard_normal(len(t))
        sf.write(str(folder / f"{i}.wav"), audio.astype(np.float32), RATE)
        lines.append(json.dumps({"audio_filepath": f"{i}.wav", "text": "ignored"}))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def _nll(model: WaveGlowModel, loader: torch.utils.data.DataLoader) -> float:
    with torch.no_grad():
        return float(np.mean([float(model.losses(batch)["loss"]) for batch in loader]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[WaveGlowModel, dict]:
    """The tiny model after 30 Adam steps on random 1024-sample crops of six clips."""
    manifest = _voice_corpus(tmp_path_factory.mktemp("voices"))
    torch.manual_seed(0)
    model = WaveGlowModel(
        {
            **TINY,
            "train_ds": {"manifest": str(manifest), "batch_size": 6, "segment_samples": 1024},
            "validation_ds": {"manifest": str(manifest), "batch_size": 3},
        }
    )
    train, validation = model.train_dataloader(), model.val_dataloader()
    start = {"train": _nll(model, train), "val": _nll(model, validation)}
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    with warnings.catch_warnings():  # self.log is a no-op without a Trainer, and says so
        warnings.filterwarnings("ignore", message=r".*self\.log\(\)", category=UserWarning)
        for _ in range(30):
            for batch in train:  # one batch of six crops per epoch
                loss = model.training_step(batch, 0)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    model.eval()
    start["train_end"], start["val_end"] = _nll(model, train), _nll(model, validation)
    return model, start


def test_the_model_learns_the_voices_likelihood(trained) -> None:
    """After 30 steps the NLL per sample is more than 1 nat below its start, on fresh crops and
    on the whole clips (a validation batch of different lengths, padding left out)."""
    _, nll = trained
    assert nll["train_end"] < nll["train"] - 1.0, nll
    assert nll["val_end"] < nll["val"] - 1.0, nll


def test_archive_gives_identical_audio_and_the_vocoder_fits_the_synthesizer(
    trained, tmp_path: Path
) -> None:
    from convai_core.models.base import ModelBase

    model, _ = trained
    mel = torch.randn(2, 16, 10) - 4.0
    noise = torch.randn(2, 4, 10 * 64 // 4)
    path = model.save_to(tmp_path / "waveglow.convai")
    restored = ModelBase.restore_from(path)
    assert isinstance(restored, WaveGlowModel)
    with torch.no_grad():
        before, after = model(mel, noise), restored(mel, noise)
    assert before.shape == (2, 640) and torch.equal(before, after)
    # sigma_infer scales the noise: forward(noise) == infer with that latent
    with torch.no_grad():
        direct = model.waveglow.infer(mel, 0.6 * noise)
    assert torch.allclose(before, direct, atol=1e-6)
    vocoder = restored.vocoder()
    audio = vocoder(mel[:1])
    assert audio.shape == (1, 640) and audio.abs().max() <= 1.0
    assert vocoder(mel[0]).shape == (640,)
    torch.manual_seed(1)
    quiet = restored.infer(mel[:1], sigma=0.0)
    torch.manual_seed(2)
    assert torch.equal(quiet, restored.infer(mel[:1], sigma=0.0))  # no noise: deterministic


def test_onnx_export_of_the_inference_graph_is_verified(tmp_path: Path) -> None:
    """A small flow (two steps, one early output, scaling couplings) exported with mel and
    noise as inputs matches the eager model on both kinds of inputs and batch sizes."""
    torch.manual_seed(0)
    model = WaveGlowModel(
        {**TINY, "n_flows": 2, "n_early_every": 1, "wn": {"n_layers": 1, "n_channels": 8}}
    )
    _perturbed(model.waveglow)
    report = model.export(tmp_path / "waveglow.onnx", format="onnx")
    assert report.info["inputs"] == ["mel", "noise"] and report.info["outputs"] == ["audio"]
    assert {c.kind for c in report.checks} == {"real", "random"}
    assert all(c.passed for c in report.checks) and len(report.checks) == 8


def test_config_typos_and_inconsistent_sizes_are_named() -> None:
    with pytest.raises(ConfigError, match=r"model\.n_flow\. Did you mean model\.n_flows"):
        WaveGlowModel({**TINY, "n_flow": 4})
    with pytest.raises(ConfigError, match=r"model\.wn\.n_layer\. Did you mean model\.wn\.n_layers"):
        WaveGlowModel({**TINY, "wn": {"n_layer": 2}})
    with pytest.raises(ConfigError, match=r"model\.train_ds\.segment_sample\. Did you mean"):
        WaveGlowModel(
            {**TINY, "train_ds": {"manifest": "x", "segment_sample": 64}}
        ).train_dataloader()
    with pytest.raises(
        ConfigError, match=r"model\.n_group=6 must divide model\.mel\.hop_length=64"
    ):
        WaveGlowModel({**TINY, "n_group": 6})
    with pytest.raises(ConfigError, match=r"leave 1 channel\(s\) of n_group 4"):
        WaveGlowModel({**TINY, "n_early_size": 3})
