"""ONNX export from an :class:`ExportSpec` (torch's dynamo exporter), fp16 conversion and an
onnxruntime runner."""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
from pathlib import Path
from typing import Any

import torch

from convai_core.errors import ExportError
from convai_core.export_spec import ExportSpec
from convai_core.types import dynamic_axes, export_input_names

#: The opset of ONNX exports unless told otherwise.
DEFAULT_OPSET = 18

_NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript")


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence the exporter's progress prints and warnings; keep them for an error message."""
    buffer = io.StringIO()
    levels = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def dynamic_shapes(spec: ExportSpec) -> tuple[dict[int, Any] | None, ...]:
    """torch.export ``Dim`` objects for the dynamic axes of the input ports (one per axis name,
    shared between ports: the batch of a ``signal`` is the batch of its ``length``)."""
    from torch.export import Dim

    per_port = dynamic_axes(spec.input_ports)
    dims: dict[str, Any] = {}
    shapes: list[dict[int, Any] | None] = []
    for port in export_input_names(spec.input_ports):
        axes: dict[int, Any] = {}
        for index, name in per_port.get(port, {}).items():
            if name not in dims:
                low, high = spec.dim_bounds.get(name, (1, 1 << 20))
                dims[name] = Dim(name, min=low, max=high)
            axes[index] = dims[name]
        shapes.append(axes or None)
    return tuple(shapes)


def export_onnx(
    spec: ExportSpec,
    path: Path,
    *,
    opset: int = DEFAULT_OPSET,
    static_shape: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Write ``spec.module`` as ONNX at ``path``; dynamic batch and time unless ``static_shape``
    ``(batch, length)`` is given. Returns facts about the graph (names, opset, size).

    Raises:
        ExportError: torch.export or the ONNX conversion failed (the exporter's message kept).
    """
    import onnx

    input_names = export_input_names(spec.input_ports)
    output_names = list(spec.output_ports)
    if static_shape is None:
        mid = (spec.verify_lengths[0] + spec.verify_lengths[-1]) // 2
        example = spec.make_inputs(2, mid, "random")
        shapes: Any = dynamic_shapes(spec)
        parameters = inspect.signature(spec.module.forward).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
            shapes = (shapes,)  # forward(*inputs): one entry, a tuple over the inputs
    else:
        example = spec.make_inputs(static_shape[0], static_shape[1], "random")
        shapes = None
    with _quiet() as log, torch.no_grad():
        try:
            torch.onnx.export(
                spec.module,
                example,
                str(path),
                dynamo=True,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=shapes,
                external_data=False,
                verbose=False,
            )
        except Exception as exc:
            tail = log.getvalue().strip().splitlines()[-15:]
            raise ExportError(
                f"ONNX export of {spec.name} (opset {opset}) failed: {type(exc).__name__}: "
                f"{str(exc)[:1500]}\nexporter output (last lines):\n" + "\n".join(tail)
            ) from exc
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph of {spec.name} is not valid ONNX: {exc}") from exc
    graph_inputs = [i.name for i in model.graph.input]
    missing = [n for n in input_names if n not in graph_inputs]
    if missing:
        raise ExportError(
            f"the ONNX graph of {spec.name} lost the inputs {missing} (the module does not use "
            "them); the serving side would not be able to feed them"
        )
    return {
        "opset": opset,
        "inputs": graph_inputs,
        "outputs": [o.name for o in model.graph.output],
        "bytes": path.stat().st_size,
        "static_shape": list(static_shape) if static_shape else None,
    }


def _name_scopes(node: Any) -> str:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            return str(prop.value)
    return ""


def convert_fp16(src: Path, dst: Path) -> None:
    """An fp16 copy of an ONNX graph, inputs and outputs kept float32, made with
    onnxconverter-common.

    Kept in float32: the ops of its default block list, every node inside a module named
    ``preprocessor`` (feature extraction: its dynamic range and logarithms need float32, and it
    costs little) and every Cast (the converter retypes a Cast's output without changing its
    ``to``, which onnxruntime rejects).
    """
    import warnings

    import onnx
    from onnxconverter_common import float16

    model = onnx.load(str(src))
    keep = [
        node.name
        for node in model.graph.node
        if node.op_type == "Cast" or "preprocessor" in _name_scopes(node)
    ]
    with _quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "-inf will be truncated to -10000" and the like
        converted = float16.convert_float_to_float16(
            model,
            keep_io_types=True,
            op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST),
            node_block_list=keep,
        )
    onnx.save(converted, str(dst))


def ort_runner(path: Path, input_names: list[str], threads: int | None = None) -> Any:
    """A function running the ONNX graph at ``path`` on tensors (inputs fed by port name)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    graph_inputs = {i.name for i in session.get_inputs()}

    def run(inputs: tuple[torch.Tensor, ...]) -> list[Any]:
        feeds = {
            name: tensor.numpy()
            for name, tensor in zip(input_names, inputs, strict=True)
            if name in graph_inputs
        }
        return list(session.run(None, feeds))

    return run


def onnx_io(path: str | os.PathLike[str]) -> dict[str, list[tuple[str, int, list[Any]]]]:
    """``{"inputs": [(name, elem_type, dims)], "outputs": [...]}`` of an ONNX graph; a dim is an
    int or the name of a dynamic axis."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def describe(values: Any) -> list[tuple[str, int, list[Any]]]:
        out = []
        for value in values:
            tensor = value.type.tensor_type
            dims = [
                d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor.shape.dim
            ]
            out.append((value.name, int(tensor.elem_type), dims))
        return out

    return {"inputs": describe(model.graph.input), "outputs": describe(model.graph.output)}
