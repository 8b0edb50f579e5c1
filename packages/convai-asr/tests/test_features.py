"""MelSpectrogramPreprocessor: shapes, lengths, masking, normalization, determinism, export."""

from __future__ import annotations

import pytest
import torch

from convai_asr import functional as AF
from convai_asr.modules.features import MelSpectrogramPreprocessor
from convai_core.types import typecheck

LENGTHS = [16000, 12345, 801]


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    audio = torch.randn(len(LENGTHS), max(LENGTHS), generator=generator) * 0.1
    return audio, torch.tensor(LENGTHS)


def test_shapes_lengths_and_pad_to() -> None:
    audio, lengths = _batch()
    pre = MelSpectrogramPreprocessor(n_mels=64, pad_to=16).eval()
    with typecheck():
        features, out_lengths = pre(audio_signal=audio, length=lengths)
    assert pre.n_fft == 512 and pre.win_length == 400 and pre.hop_length == 160
    assert out_lengths.tolist() == [n // 160 + 1 for n in LENGTHS]  # [101, 78, 6]
    assert features.shape == (3, 64, 112)  # 101 frames padded to a multiple of 16
    unpadded = MelSpectrogramPreprocessor(pad_to=0).eval()(audio, lengths)[0]
    assert unpadded.shape[-1] == 101
    assert out_lengths.dtype == torch.int64 and features.dtype == torch.float32


def test_frames_past_length_are_zero() -> None:
    audio, lengths = _batch()
    features, out_lengths = MelSpectrogramPreprocessor().eval()(audio, lengths)
    for item, valid in enumerate(out_lengths.tolist()):
        assert torch.all(features[item, :, valid:] == 0)
        assert features[item, :, :valid].abs().sum() > 0


@pytest.mark.parametrize("mode", ["per_feature", "all_features"])
def test_normalization_uses_valid_frames_only(mode: str) -> None:
    audio, lengths = _batch()
    audio[1, 12345:] = 100.0  # garbage past the length must not affect the statistics
    features, out_lengths = MelSpectrogramPreprocessor(normalize=mode).eval()(audio, lengths)
    for item, valid in enumerate(out_lengths.tolist()):
        frames = features[item, :, :valid]
        if mode == "per_feature":
            mean, std = frames.mean(dim=1), frames.std(dim=1)
        else:
            mean, std = frames.mean(), frames.flatten().std()
        torch.testing.assert_close(mean, torch.zeros_like(mean), atol=1e-4, rtol=0)
        torch.testing.assert_close(std, torch.ones_like(std), atol=1e-3, rtol=0)


def test_batched_equals_single_items() -> None:
    audio, lengths = _batch()
    pre = MelSpectrogramPreprocessor().eval()
    features, out_lengths = pre(audio, lengths)
    for item, length in enumerate(LENGTHS):
        alone, alone_length = pre(audio[item : item + 1, :length], lengths[item : item + 1])
        valid = int(alone_length)
        assert valid == int(out_lengths[item])
        torch.testing.assert_close(
            alone[0, :, :valid], features[item, :, :valid], atol=1e-4, rtol=0
        )


def test_eval_is_deterministic_and_training_dithers() -> None:
    audio, lengths = _batch()
    audio[2] = 0.0  # silence: dither is the only signal there
    pre = MelSpectrogramPreprocessor(normalize=None, dither=1e-3)
    pre.eval()
    first, _ = pre(audio, lengths)
    torch.testing.assert_close(first, pre(audio, lengths)[0], atol=0, rtol=0)
    pre.train()
    torch.manual_seed(1)
    noisy, _ = pre(audio, lengths)
    assert not torch.equal(noisy, first)


def test_options_and_errors() -> None:
    audio, lengths = _batch()
    pre = MelSpectrogramPreprocessor(
        n_mels=80, log=False, normalize=None, mag_power=1.0, preemph=None, n_fft=1024, f_max=7600
    ).eval()
    features, _ = pre(audio, lengths)
    assert features.shape[1] == 80 and features.min() >= 0
    assert pre.frame_shift_s == pytest.approx(0.01)
    with pytest.raises(ValueError, match="normalize"):
        MelSpectrogramPreprocessor(normalize="per_utterance")
    with pytest.raises(ValueError, match="n_fft"):
        MelSpectrogramPreprocessor(n_fft=256)


def test_functional_helpers() -> None:
    mask = AF.lengths_to_mask(torch.tensor([2, 0, 3]), 3)
    assert mask.tolist() == [[True, True, False], [False] * 3, [True] * 3]
    x = torch.tensor([[1.0, 2.0, 3.0]])
    torch.testing.assert_close(AF.apply_preemphasis(x, coeff=0.5), torch.tensor([[1.0, 1.5, 2.0]]))
    assert AF.pad_time_to_multiple(torch.zeros(1, 2, 17), multiple=8).shape[-1] == 24
    assert AF.pad_time_to_multiple(torch.zeros(1, 2, 16), multiple=8).shape[-1] == 16


def _dynamic_shapes() -> tuple[dict[int, object], dict[int, object]]:
    batch = torch.export.Dim("batch")
    time = torch.export.Dim("time", min=1024, max=160000)
    return {0: batch, 1: time}, {0: batch}


def test_torch_export_with_dynamic_batch_and_time() -> None:
    """The graph has no data-dependent control flow: torch.export traces it with dynamic axes."""
    audio, lengths = _batch()
    pre = MelSpectrogramPreprocessor().eval()
    program = torch.export.export(pre, (audio, lengths), dynamic_shapes=_dynamic_shapes())
    other = torch.randn(2, 9000) * 0.1
    other_lengths = torch.tensor([9000, 5000])
    exported = program.module()(other, other_lengths)
    eager = pre(other, other_lengths)
    torch.testing.assert_close(exported[0], eager[0], atol=1e-5, rtol=0)
    assert torch.equal(exported[1], eager[1])


def test_onnx_export_smoke(tmp_path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    audio, lengths = _batch()
    pre = MelSpectrogramPreprocessor().eval()
    path = tmp_path / "preprocessor.onnx"
    torch.onnx.export(
        pre,
        (audio, lengths),
        str(path),
        dynamo=True,
        input_names=["audio_signal", "length"],
        output_names=["processed_signal", "processed_length"],
        dynamic_shapes=_dynamic_shapes(),
    )
    assert path.stat().st_size > 0
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path))
    other = (torch.randn(2, 9000) * 0.1).numpy()
    outputs = session.run(
        None, {"audio_signal": other, "length": torch.tensor([9000, 5000]).numpy()}
    )
    eager = pre(torch.from_numpy(other), torch.tensor([9000, 5000]))
    torch.testing.assert_close(torch.from_numpy(outputs[0]), eager[0], atol=1e-4, rtol=0)
