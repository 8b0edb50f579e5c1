"""A toy bundle built without torch: an ONNX graph (made with the ``onnx`` package, a test-only
dependency) whose output frame ``t`` depends on input sample ``t`` alone, so the expected text and
word times of a waveform can be written down by hand.

At 100 Hz, one frame per sample (frame shift 0.01 s), vocabulary ``["a", " "]``, blank 2:
a sample of +1 emits ``a``, -1 emits a space, 0 is blank.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

SAMPLE_RATE = 100
TOKENS = ["a", " "]
BLANK = 2


def _toy_graph(path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.array([1.0, -1.0, 0.0], dtype=np.float32), "weights")
    bias = numpy_helper.from_array(np.array([0.0, 0.0, 0.1], dtype=np.float32), "bias")
    axes = numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes")
    nodes = [
        helper.make_node("Unsqueeze", ["signal", "axes"], ["column"]),  # (B, T) -> (B, T, 1)
        helper.make_node("Mul", ["column", "weights"], ["scaled"]),  # (B, T, 1) * (V,) -> (B, T, V)
        helper.make_node("Add", ["scaled", "bias"], ["log_probs"]),
        helper.make_node("Identity", ["length"], ["encoded_length"]),
    ]
    graph = helper.make_graph(
        nodes,
        "toy_ctc",
        [
            helper.make_tensor_value_info("signal", TensorProto.FLOAT, ["batch", "time"]),
            helper.make_tensor_value_info("length", TensorProto.INT64, ["batch"]),
        ],
        [
            helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["batch", "time", 3]),
            helper.make_tensor_value_info("encoded_length", TensorProto.INT64, ["batch"]),
        ],
        initializer=[weights, bias, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime this package supports
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def toy_metadata(**changes: Any) -> dict[str, Any]:
    """The ``bundle.json`` of the toy bundle, with ``changes`` applied (``None`` deletes)."""
    meta: dict[str, Any] = {
        "schema_version": 1,
        "graph": "model.onnx",
        "task": "asr/ctc",
        "model": "toy",
        "sample_rate": SAMPLE_RATE,
        "tokens": list(TOKENS),
        "blank_id": BLANK,
        "tokenizer": "char",
        "frame_shift_s": 1 / SAMPLE_RATE,
        "includes_preprocessor": True,
        "transcribe": {"chunk_seconds": 30.0, "overlap_seconds": 4.0},
    }
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    return meta


@pytest.fixture
def make_bundle(tmp_path: Path) -> Callable[..., Path]:
    """``make_bundle(**changes)``: a toy bundle folder whose ``bundle.json`` has ``changes``."""

    def make(name: str = "bundle", **changes: Any) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        _toy_graph(folder / "model.onnx")
        (folder / "bundle.json").write_text(json.dumps(toy_metadata(**changes)))
        return folder

    return make


@pytest.fixture
def write_wav(tmp_path: Path) -> Callable[[str, list[float]], Path]:
    """``write_wav(name, samples)``: a float WAV at the toy rate (samples stored exactly)."""

    def write(name: str, samples: list[float]) -> Path:
        path = tmp_path / name
        sf.write(path, np.asarray(samples, dtype=np.float32), SAMPLE_RATE, subtype="FLOAT")
        return path

    return write


@pytest.fixture
def metadata() -> Callable[..., dict[str, Any]]:
    """The :func:`toy_metadata` helper (test modules cannot import conftest by name)."""
    return toy_metadata
