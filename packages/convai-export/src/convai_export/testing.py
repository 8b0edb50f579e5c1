"""Checks of exported artifacts shared by the test suites of convai-export and domain packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["check_triton_repository"]


def check_triton_repository(repository: Path, name: str, *, max_batch_size: int) -> Any:
    """Parse ``<repository>/<name>/config.pbtxt`` with Triton's own schema and check it against
    the ONNX graph beside it: names, element types, and dims (batch left to ``max_batch_size``,
    one-value-per-item outputs reshaped to scalars).

    Needs ``tritonclient[grpc]`` (a development dependency).

    Returns:
        The parsed ``ModelConfig``, for checks specific to the model.

    Raises:
        AssertionError: the config disagrees with the graph.
    """
    import onnx
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    config = model_config_pb2.ModelConfig()
    text_format.Parse((repository / name / "config.pbtxt").read_text(), config)
    graph = onnx.load(str(repository / name / "1" / "model.onnx"))
    assert config.name == name and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == max_batch_size
    assert [i.name for i in config.input] == [i.name for i in graph.graph.input]
    assert [o.name for o in config.output] == [o.name for o in graph.graph.output]
    onnx_to_triton = {
        onnx.TensorProto.FLOAT: model_config_pb2.TYPE_FP32,
        onnx.TensorProto.INT64: model_config_pb2.TYPE_INT64,
    }
    for declared, value in zip(
        [*config.input, *config.output], [*graph.graph.input, *graph.graph.output], strict=True
    ):
        assert declared.data_type == onnx_to_triton[value.type.tensor_type.elem_type]
        rank = len(value.type.tensor_type.shape.dim)
        if rank == 1:  # one value per item: [1] reshaped to a scalar
            assert list(declared.dims) == [1] and list(declared.reshape.shape) == []
        else:
            assert len(declared.dims) == rank - 1  # batch left to max_batch_size
    return config
