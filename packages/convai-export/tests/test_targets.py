"""Every export format round-trips domain-free models: a sequence tagger (time axis, lengths,
a preprocessor) and the core's MLP classifier. Each export is checked by the target itself
(random inputs, batch 1 and 3, two lengths) and again here, by loading what was written with its
own runtime. The formats on the models of a domain are tested by that domain's package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from convai_core.errors import ExportError
from convai_export.targets import spec_options_of
from convai_export.testing import check_triton_repository

SHORT, LONG = 16, 64  # the generic spec's verification lengths (frames)


def _assert_verified(report, runners: int = 1, outputs: int = 2) -> None:
    assert report.passed
    # 1 kind (random) x 2 batch sizes x 2 lengths x outputs, per runner
    assert len(report.checks) == 4 * outputs * runners
    assert {(c.batch, c.length) for c in report.checks} == {
        (b, n) for b in (1, 3) for n in (SHORT, LONG)
    }
    assert {c.kind for c in report.checks} == {"random"}
    assert all(c.max_abs_diff <= c.tolerance for c in report.checks)
    lengths = [c for c in report.checks if c.output.endswith("length")]
    assert lengths and all(c.tolerance == 0 for c in lengths)  # integer outputs match exactly


def _new_input(batch: int = 2, frames: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(batch, frames, 6, generator=generator)
    return x, torch.tensor([frames - 9 * i for i in range(batch)])


def _eager(model, x, length):
    with torch.no_grad():
        log_probs, out_len = model(x, length)
    return log_probs.numpy(), out_len.numpy()


def test_onnx(tagger, tmp_path: Path) -> None:
    report = tagger.export(tmp_path / "m.onnx", format="onnx")
    _assert_verified(report)
    graph = onnx.load(str(tmp_path / "m.onnx"))
    assert [i.name for i in graph.graph.input] == ["frames", "length"]
    assert [o.name for o in graph.graph.output] == ["log_probs", "out_length"]
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "time", 6]
    x, length = _new_input(batch=2, frames=40)  # a length it was not verified at
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"frames": x.numpy(), "length": length.numpy()})
    ref = _eager(tagger, x, length)
    assert np.abs(got[0] - ref[0]).max() < 1e-4
    assert (got[1] == ref[1]).all()


def test_onnx_fp16_keeps_the_preprocessor_in_float32(tagger, tmp_path: Path) -> None:
    report = tagger.export(tmp_path / "m16.onnx", format="onnx", fp16=True)
    _assert_verified(report)
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(tmp_path / "m16.onnx"))).graph
    weights = [t.data_type for t in graph.initializer if len(t.dims) >= 2]
    assert weights and all(t == onnx.TensorProto.FLOAT16 for t in weights)  # stored halved
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    computed = {v.name: v.type.tensor_type.elem_type for v in graph.value_info}

    def output_type(op: str, scope: str) -> int:
        node = next(n for n in graph.node if n.op_type == op and scope in _scopes(n))
        return computed[node.output[0]]

    # the preprocessor computes in float32, the rest in float16
    assert output_type("MatMul", "preprocessor") == onnx.TensorProto.FLOAT
    assert output_type("Conv", "tagger") == onnx.TensorProto.FLOAT16


def _scopes(node) -> str:
    return "".join(p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes")


def test_torchscript(tagger, tmp_path: Path) -> None:
    report = tagger.export(tmp_path / "m.pt", format="torchscript")
    _assert_verified(report)
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    x, length = _new_input(batch=3, frames=30)  # not the traced shape
    with torch.no_grad():
        got = loaded(x, length)
    ref = _eager(tagger, x, length)
    assert np.abs(got[0].numpy() - ref[0]).max() < 1e-5
    assert (got[1].numpy() == ref[1]).all()


def test_checkpoint(classifier, tmp_path: Path) -> None:
    from convai_export.checkpoint import load_checkpoint

    report = classifier.export(tmp_path / "ckpt", format="checkpoint")
    assert report.passed and {c.batch for c in report.checks} == {1, 3}
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["checkpoint.json", "config.yaml", "model.safetensors"]
    restored = load_checkpoint(tmp_path / "ckpt")
    for key, value in classifier.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    with pytest.raises(ExportError, match=r"model\.safetensors is missing"):
        load_checkpoint(tmp_path / "ckpt")


def test_the_model_options_are_read_from_export_spec(tagger, classifier) -> None:
    assert spec_options_of(tagger) == ("preprocessor",)
    assert spec_options_of(classifier) == ()


def test_trt_onnx_leaves_the_preprocessor_out_with_a_profile(tagger, tmp_path: Path) -> None:
    report = tagger.export(tmp_path / "trt", format="trt-onnx", fp16=True)
    _assert_verified(report, runners=2)
    folder = tmp_path / "trt"
    assert {"model.onnx", "model.fp16.onnx", "trt_profile.json", "projection.npy"} <= {
        p.name for p in folder.iterdir()
    }
    np.testing.assert_array_equal(
        np.load(folder / "projection.npy"), tagger.preprocessor.projection.numpy()
    )
    meta = json.loads((folder / "trt_profile.json").read_text())
    assert meta["inputs"] == ["features", "length"]  # from the preprocessor's output
    profile = meta["profile"]["features"]
    assert profile["min"][2] == profile["max"][2] == 6  # channels fixed
    assert profile["min"][0] == 1 and profile["max"][0] == 32
    assert profile["min"][1] < profile["opt"][1] < profile["max"][1]
    assert meta["profile"]["length"] == {"min": [1], "opt": [8], "max": [32]}
    assert "--minShapes=features:1x2x6,length:1" in meta["trtexec"]
    assert meta["trtexec"].endswith("--fp16")
    # the graph computes the tagger from features
    x, length = _new_input()
    with torch.no_grad():
        features, _ = tagger.preprocessor(x, length)
        ref = tagger.tagger(features, length)[0].numpy()
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"features": features.numpy(), "length": length.numpy()})[0]
    assert np.abs(got - ref).max() < 1e-4


def test_trt_onnx_keeps_the_preprocessor_when_told(tagger, tmp_path: Path) -> None:
    report = tagger.export(tmp_path / "trt", format="trt-onnx", preprocessor=True)
    assert report.passed
    assert json.loads((tmp_path / "trt" / "trt_profile.json").read_text())["inputs"] == [
        "frames",
        "length",
    ]
    assert not (tmp_path / "trt" / "projection.npy").exists()


def test_trt_onnx_static_shape(tagger, tmp_path: Path) -> None:
    report = tagger.export(tmp_path / "trt", format="trt-onnx", static_shape=(4, 50))
    assert report.passed and {(c.batch, c.length) for c in report.checks} == {(4, 50)}
    graph = onnx.load(str(tmp_path / "trt" / "model.onnx"))
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [4, 50, 6]


def test_triton_repository(tagger, tmp_path: Path) -> None:
    report = tagger.export(tmp_path / "repo", format="triton", name="tagger", max_batch_size=4)
    _assert_verified(report)
    config = check_triton_repository(tmp_path / "repo", "tagger", max_batch_size=4)
    assert list(config.input[0].dims) == [-1, 6]  # time is dynamic
    assert list(config.output[0].dims) == [-1, 5]
    meta = json.loads((tmp_path / "repo" / "tagger" / "metadata.json").read_text())
    assert meta == {}  # the generic spec has no metadata


def test_a_failed_verification_writes_nothing(tagger, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="differs from the eager model"):
        tagger.export(out, format="onnx", tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []  # no output, no staging folder left behind


def test_an_existing_output_is_kept_without_force(tagger, tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    out.write_text("precious")
    with pytest.raises(ExportError, match="already exists"):
        tagger.export(out, format="torchscript")
    assert out.read_text() == "precious"
    tagger.export(out, format="torchscript", force=True)
    assert torch.jit.load(str(out)) is not None


def test_unknown_format_and_options_are_named(tagger, classifier, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"unknown export format 'tflite'.*onnx"):
        tagger.export(tmp_path / "x", format="tflite")
    with pytest.raises(
        ExportError, match=r"takes no option\(s\) \['opsett'\].*SequenceTagger \['preprocessor'\]"
    ):
        tagger.export(tmp_path / "x", format="onnx", opsett=17)
    with pytest.raises(ExportError, match=r"takes no option\(s\) \['preprocessor'\]"):
        classifier.export(tmp_path / "x", format="onnx", preprocessor=False)
    assert not list(tmp_path.iterdir())


def test_the_classifier_exports_through_the_generic_spec(classifier, tmp_path: Path) -> None:
    for fmt, out in (("onnx", "m.onnx"), ("torchscript", "m.pt"), ("triton", "repo")):
        report = classifier.export(tmp_path / out, format=fmt)
        assert report.passed and {c.kind for c in report.checks} == {"random"}
        assert {c.batch for c in report.checks} == {1, 3}
    graph = onnx.load(str(tmp_path / "m.onnx"))
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 6]
