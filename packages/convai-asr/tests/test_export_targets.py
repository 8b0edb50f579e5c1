"""convai-export's formats on CTC models: each round-trips tiny QuartzNet and Conformer models.
The export is checked by the target itself (real and random inputs, batch 1 and 3, 1 s and 7 s)
and again here, by loading what was written with its own runtime. (The formats themselves are
tested on domain-free models in convai-export; the asr-bundle format in test_export_bundle.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from convai_asr.testing import tiny_model
from convai_core.errors import ExportError
from convai_export.testing import check_triton_repository

ONE_SECOND, SEVEN_SECONDS = 16000, 112000


@pytest.fixture(scope="module", params=["quartznet", "conformer"])
def model(request):
    """An untrained tiny QuartzNet or Conformer CTC model (parity needs no training), the same
    weights whichever tests ran before it in the process."""
    torch.manual_seed(0)
    return tiny_model(request.param)


# The fp16 conversion and the formats below wrap the same ONNX graph (or, for the checkpoint, no
# graph): the Conformer's own risks are in its conversion, which test_onnx and test_torchscript
# cover in the default suite; its runs of these (about 120 s) are left to `make test-all`.
@pytest.fixture(
    scope="module", params=["quartznet", pytest.param("conformer", marks=pytest.mark.slow)]
)
def wrapped(request):
    """An untrained tiny model, the Conformer only in the slow suite."""
    torch.manual_seed(0)
    return tiny_model(request.param)


def _eager(model, audio, length):
    with torch.no_grad():
        log_probs, enc_len = model.export_spec().module(audio, length)
    return log_probs.numpy(), enc_len.numpy()


def _new_input(batch=2, samples=40000):
    generator = torch.Generator().manual_seed(7)
    audio = torch.randn(batch, samples, generator=generator) * 0.1
    return audio, torch.tensor([samples - 9000 * i for i in range(batch)])


def _assert_verified(report, runners=1):
    assert report.passed
    # 2 kinds x 2 batch sizes x 2 lengths x 2 outputs per runner
    assert len(report.checks) == 16 * runners
    assert {(c.batch, c.length) for c in report.checks} == {
        (b, n) for b in (1, 3) for n in (ONE_SECOND, SEVEN_SECONDS)
    } or {(c.batch, c.length) for c in report.checks} == {
        (b, n) for b in (1, 3) for n in (101, 701)
    }
    assert {c.kind for c in report.checks} == {"real", "random"}
    assert all(c.max_abs_diff <= c.tolerance for c in report.checks)


def test_onnx(model, tmp_path: Path) -> None:
    report = model.export(tmp_path / "m.onnx", format="onnx")
    _assert_verified(report)
    graph = onnx.load(str(tmp_path / "m.onnx"))
    assert [i.name for i in graph.graph.input] == ["audio_signal", "length"]
    assert [o.name for o in graph.graph.output] == ["log_probs", "encoded_length"]
    dims = [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "time"]
    audio, length = _new_input()
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"audio_signal": audio.numpy(), "length": length.numpy()})
    ref = _eager(model, audio, length)
    assert np.abs(got[0] - ref[0]).max() < 1e-3
    assert (got[1] == ref[1]).all()


def test_onnx_fp16(wrapped, tmp_path: Path) -> None:
    report = wrapped.export(tmp_path / "m16.onnx", format="onnx", fp16=True)
    _assert_verified(report)
    graph = onnx.load(str(tmp_path / "m16.onnx"))
    weights = [t.data_type for t in graph.graph.initializer if len(t.dims) >= 2]
    assert weights and all(t == onnx.TensorProto.FLOAT16 for t in weights)
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    # the encoder's weights are halved; the preprocessor's filterbank stays float32
    assert (tmp_path / "m16.onnx").stat().st_size < 0.8 * _fp32_size(wrapped, tmp_path)


def _fp32_size(model, tmp_path: Path) -> int:
    return model.export(tmp_path / "m32.onnx", format="onnx").info["bytes"]


def test_torchscript(model, tmp_path: Path) -> None:
    report = model.export(tmp_path / "m.pt", format="torchscript")
    _assert_verified(report)
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    audio, length = _new_input(batch=3, samples=30000)
    with torch.no_grad():
        got = loaded(audio, length)
    ref = _eager(model, audio, length)
    assert np.abs(got[0].numpy() - ref[0]).max() < 1e-4
    assert (got[1].numpy() == ref[1]).all()


def test_checkpoint(wrapped, tmp_path: Path) -> None:
    from convai_export.checkpoint import load_checkpoint

    report = wrapped.export(tmp_path / "ckpt", format="checkpoint")
    _assert_verified(report)
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["checkpoint.json", "config.yaml", "model.safetensors"]
    restored = load_checkpoint(tmp_path / "ckpt")
    for key, value in wrapped.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    with pytest.raises(ExportError, match=r"model\.safetensors is missing"):
        load_checkpoint(tmp_path / "ckpt")


def test_trt_onnx_profile_and_fp16(wrapped, tmp_path: Path) -> None:
    report = wrapped.export(tmp_path / "trt", format="trt-onnx", fp16=True)
    _assert_verified(report, runners=2)
    folder = tmp_path / "trt"
    assert {"model.onnx", "model.fp16.onnx", "trt_profile.json"} <= {
        p.name for p in folder.iterdir()
    }
    meta = json.loads((folder / "trt_profile.json").read_text())
    # from features: TensorRT has no STFT
    assert meta["inputs"] == ["processed_signal", "processed_length"]
    profile = meta["profile"]["processed_signal"]
    assert profile["min"][1] == profile["max"][1] == 64  # mel bins fixed
    assert profile["min"][0] == 1 and profile["max"][0] == 32
    assert profile["min"][2] < profile["opt"][2] < profile["max"][2]
    assert "--minShapes=processed_signal:1x64x" in meta["trtexec"]
    assert meta["trtexec"].endswith("--fp16")


def test_trt_onnx_static_shape(wrapped, tmp_path: Path) -> None:
    report = wrapped.export(tmp_path / "trt", format="trt-onnx", static_shape=(4, 501))
    assert report.passed and {(c.batch, c.length) for c in report.checks} == {(4, 501)}
    graph = onnx.load(str(tmp_path / "trt" / "model.onnx"))
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [4, 64, 501]


def test_triton_repository(wrapped, tmp_path: Path) -> None:
    report = wrapped.export(tmp_path / "repo", format="triton", name="asr", max_batch_size=4)
    _assert_verified(report)
    config = check_triton_repository(tmp_path / "repo", "asr", max_batch_size=4)
    assert list(config.input[0].dims) == [-1]  # time is dynamic
    assert list(config.output[0].dims) == [-1, 29]  # frames x (28 characters + blank)
    meta = json.loads((tmp_path / "repo" / "asr" / "metadata.json").read_text())
    assert meta["blank_id"] == 28 and len(meta["tokens"]) == 28


def test_a_failed_verification_writes_nothing(wrapped, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="differs from the eager model"):
        wrapped.export(out, format="onnx", tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []  # no output, no staging folder left behind


def test_an_existing_output_is_kept_without_force(model, tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    out.write_text("precious")
    with pytest.raises(ExportError, match="already exists"):
        model.export(out, format="torchscript")
    assert out.read_text() == "precious"
    model.export(out, format="torchscript", force=True)
    assert torch.jit.load(str(out)) is not None


def test_unknown_format_and_option_are_named(model, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"unknown export format 'tflite'.*onnx"):
        model.export(tmp_path / "x", format="tflite")
    with pytest.raises(
        ExportError,
        match=r"takes no option\(s\) \['opsett'\].*CTCModel \['preprocessor', 'verify_audio'\]",
    ):
        model.export(tmp_path / "x", format="onnx", opsett=17)
    with pytest.raises(
        ExportError, match=r"options are preprocessor and verify_audio; got \['preprocesor'\]"
    ):
        model.export_spec(preprocesor=False)
