"""The export targets: ``target(model, output, **options) -> ExportReport``.

Each writes into a staging path beside ``output``, verifies what it wrote against the eager model
(:mod:`convai_export.verify`), and only then moves it into place: a failed export leaves nothing
behind, and an existing ``output`` is replaced only with ``force=True``.

Options every target takes: ``tolerance`` (max absolute difference, default the model's),
``force``, ``threads`` (onnxruntime intra-op threads), and the model's own export options: the
keyword parameters of its ``export_spec`` (read from its signature), passed on to it. ONNX
targets also take ``opset`` and ``fp16``.

Formats that need knowledge of a domain are registered by the domain's package through
``convai_register_export_targets``; they can reach these targets through the registry
(``get_registries().export_targets.load("onnx")``) instead of importing this module.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convai_core.errors import ExportError
from convai_core.export_spec import ExportSpec
from convai_export.onnx_tools import (
    DEFAULT_OPSET,
    convert_fp16,
    export_onnx,
    onnx_io,
    ort_runner,
)
from convai_export.report import ExportReport
from convai_export.verify import eager_outputs, verify

#: Default tolerance of fp16 variants (max absolute difference of the outputs).
FP16_TOLERANCE = 0.25


def spec_options_of(model: Any) -> tuple[str, ...]:
    """The options ``model.export_spec`` takes by name (its keyword parameters, ``**`` excluded)."""
    try:
        parameters = inspect.signature(model.export_spec).parameters.values()
    except (TypeError, ValueError):  # not introspectable: no named options
        return ()
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in parameters if p.kind in named)


def _split(
    model: Any, options: dict[str, Any], allowed: tuple[str, ...], fmt: str
) -> dict[str, Any]:
    """Take the model's export options out of ``options``; refuse options nobody takes."""
    model_options = spec_options_of(model)
    spec_options = {k: options.pop(k) for k in model_options if k in options}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ExportError(
            f"export format {fmt!r} takes no option(s) {unknown}; it takes {sorted(allowed)}"
            + (f", and {type(model).__name__} {sorted(model_options)}" if model_options else "")
        )
    return spec_options


def _spec(model: Any, spec_options: dict[str, Any]) -> ExportSpec:
    try:
        spec = model.export_spec(**{k: v for k, v in spec_options.items() if v is not None})
    except TypeError as exc:
        raise ExportError(
            f"{type(model).__name__}.export_spec does not take {sorted(spec_options)}: {exc}"
        ) from exc
    spec.module.eval()
    return spec


@contextlib.contextmanager
def _staged(output: str | os.PathLike[str], *, force: bool, folder: bool) -> Iterator[Path]:
    """A fresh path next to ``output`` to write into; moved onto ``output`` when the block ends
    without error, deleted otherwise."""
    output = Path(output).expanduser()
    if output.exists() and not force:
        raise ExportError(
            f"{output} already exists; choose another --output or pass --force (force=True) to "
            "replace it"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    target = stage if folder else stage / output.name
    try:
        yield target
        if output.is_dir() and not output.is_symlink():
            shutil.rmtree(output)  # a folder cannot be replaced in one step; a file can
        os.replace(target, output)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def _tolerance(spec: ExportSpec, tolerance: float | None, fp16: bool = False) -> float:
    if tolerance is not None:
        return float(tolerance)
    return FP16_TOLERANCE if fp16 else spec.tolerance


# ---------------------------------------------------------------------------------- onnx
def onnx_target(model: Any, output: str | os.PathLike[str], **options: Any) -> ExportReport:
    """ONNX (dynamo exporter), dynamic batch and time named after the neural types; with
    ``fp16=True`` the graph is converted to fp16 (inputs/outputs stay float32)."""
    allowed = ("opset", "fp16", "tolerance", "force", "threads")
    spec = _spec(model, _split(model, options, allowed, "onnx"))
    opset = int(options.get("opset") or DEFAULT_OPSET)
    fp16 = bool(options.get("fp16"))
    names = list(spec.input_ports)
    report = ExportReport("onnx", Path(output))
    with _staged(output, force=bool(options.get("force")), folder=False) as path:
        report.info = export_onnx(spec, path, opset=opset)
        if fp16:
            convert_fp16(path, path)
            report.notes.append("fp16 graph (onnxconverter-common), float32 inputs and outputs")
        runner = ort_runner(path, names, options.get("threads"))
        label = "onnxruntime fp16" if fp16 else "onnxruntime"
        report.checks = verify(
            spec, runner, label, tolerance=_tolerance(spec, options.get("tolerance"), fp16)
        )
    report.files = [report.output]
    return report


# ---------------------------------------------------------------------------------- torchscript
@contextlib.contextmanager
def _lightning_scripting(module: torch.nn.Module) -> Iterator[None]:
    """Tell LightningModules inside ``module`` that they are being traced (as Lightning's own
    ``to_torchscript`` does): their ``trainer`` property then returns None instead of raising
    when torch.jit inspects it."""
    flagged: list[Any] = [m for m in module.modules() if hasattr(m, "_jit_is_scripting")]
    for m in flagged:
        m._jit_is_scripting = True
    try:
        yield
    finally:
        for m in flagged:
            m._jit_is_scripting = False


def torchscript_target(model: Any, output: str | os.PathLike[str], **options: Any) -> ExportReport:
    """TorchScript by tracing the inference module (verified at shapes other than the traced
    one, so a size the trace froze would be caught)."""
    allowed = ("tolerance", "force", "fp16", "threads")
    spec = _spec(model, _split(model, options, allowed, "torchscript"))
    if options.get("fp16"):
        raise ExportError(
            "fp16 TorchScript runs only on CUDA; export fp32 here and call .half() on the loaded "
            "module on the GPU, or use --format onnx --fp16"
        )
    report = ExportReport("torchscript", Path(output))
    mid = (spec.verify_lengths[0] + spec.verify_lengths[-1]) // 2
    example = spec.make_inputs(2, mid, "random")
    with _staged(output, force=bool(options.get("force")), folder=False) as path:
        with torch.no_grad(), warnings.catch_warnings(), _lightning_scripting(spec.module):
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated"
            try:
                traced = torch.jit.trace(spec.module, example, check_trace=False, strict=False)
            except Exception as exc:
                raise ExportError(
                    f"TorchScript tracing of {spec.name} failed: {type(exc).__name__}: {exc}"
                ) from exc
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(traced, str(path))
            loaded = torch.jit.load(str(path))

        def run(inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
            with torch.no_grad():
                out = loaded(*inputs)
            return [o.numpy() for o in (out if isinstance(out, tuple | list) else (out,))]

        report.checks = verify(
            spec, run, "torch.jit", tolerance=_tolerance(spec, options.get("tolerance"))
        )
    report.files = [report.output]
    report.info = {"traced_shape": [2, mid]}
    return report


# ---------------------------------------------------------------------------------- checkpoint
def checkpoint_target(model: Any, output: str | os.PathLike[str], **options: Any) -> ExportReport:
    """A folder with the weights (safetensors), the config (YAML) and the artifact files: no
    code, no pickle; :func:`convai_export.checkpoint.load_checkpoint` rebuilds the model."""
    from convai_export.checkpoint import load_checkpoint, write_checkpoint

    allowed = ("tolerance", "force", "fp16", "threads")
    spec = _spec(model, _split(model, options, allowed, "checkpoint"))
    fp16 = bool(options.get("fp16"))
    report = ExportReport("checkpoint", Path(output))
    with _staged(output, force=bool(options.get("force")), folder=True) as folder:
        names = write_checkpoint(model, folder, fp16=fp16)
        restored = load_checkpoint(folder)
        restored_spec = _spec(restored, {})
        report.checks = verify(
            spec,
            lambda inputs: eager_outputs(restored_spec, inputs),
            "checkpoint (fp16 weights)" if fp16 else "checkpoint",
            tolerance=_tolerance(spec, options.get("tolerance"), fp16),
        )
    report.files = [report.output / n for n in names]
    return report


# ---------------------------------------------------------------------------------- trt-onnx
def _profile(spec: ExportSpec, opt_batch: int, max_batch: int, max_length: int | None) -> dict:
    """TensorRT optimization profile: min / opt / max shape of every input."""
    low_t = spec.dim_bounds.get("time", (1, 0))[0]
    high_t = max_length or spec.verify_lengths[-1] * 4
    opt_t = spec.verify_lengths[-1]
    profile: dict[str, dict[str, list[int]]] = {}
    probe = spec.make_inputs(1, opt_t, "random")
    for (name, ntype), tensor in zip(spec.input_ports.items(), probe, strict=True):
        shapes: dict[str, list[int]] = {"min": [], "opt": [], "max": []}
        for index, axis in enumerate(ntype.axes or ()):
            kind = axis.kind.export_name
            if kind == "batch":
                values = (1, opt_batch, max_batch)
            elif kind == "time":
                values = (low_t, opt_t, high_t)
            else:
                size = int(tensor.shape[index])
                values = (size, size, size)
            for key, value in zip(("min", "opt", "max"), values, strict=True):
                shapes[key].append(int(value))
        profile[name] = shapes
    return profile


def trt_onnx_target(model: Any, output: str | os.PathLike[str], **options: Any) -> ExportReport:
    """ONNX for TensorRT, with a min/opt/max shape profile (``trt_profile.json`` + the
    ``trtexec`` line), or static shapes with ``static_shape=(batch, length)``; ``fp16=True`` adds
    ``model.fp16.onnx``.

    When the model's ``export_spec`` takes a ``preprocessor`` option, the graph leaves the
    preprocessor out unless told otherwise (feature extraction such as FFTs has no TensorRT
    kernels): it starts from the preprocessor's output, and the arrays a serving side needs to
    compute that output (``spec.arrays``) are saved beside it as ``<name>.npy``."""
    allowed = (
        "opset",
        "fp16",
        "tolerance",
        "force",
        "threads",
        "static_shape",
        "opt_batch",
        "max_batch",
        "max_length",
    )
    spec_options = _split(model, options, allowed, "trt-onnx")
    if "preprocessor" in spec_options_of(model):
        spec_options.setdefault("preprocessor", False)
    spec = _spec(model, spec_options)
    opset = int(options.get("opset") or DEFAULT_OPSET)
    static = options.get("static_shape")
    static_shape = (int(static[0]), int(static[1])) if static else None
    names = list(spec.input_ports)
    report = ExportReport("trt-onnx", Path(output))
    written = ["model.onnx"]
    with _staged(output, force=bool(options.get("force")), folder=True) as folder:
        report.info = export_onnx(
            spec, folder / "model.onnx", opset=opset, static_shape=static_shape
        )
        shapes = [static_shape] if static_shape else None
        tolerance = _tolerance(spec, options.get("tolerance"))
        report.checks = verify(
            spec,
            ort_runner(folder / "model.onnx", names, options.get("threads")),
            "onnxruntime",
            tolerance=tolerance,
            shapes=shapes,
        )
        if options.get("fp16"):
            convert_fp16(folder / "model.onnx", folder / "model.fp16.onnx")
            written.append("model.fp16.onnx")
            report.checks += verify(
                spec,
                ort_runner(folder / "model.fp16.onnx", names, options.get("threads")),
                "onnxruntime fp16",
                tolerance=_tolerance(spec, options.get("tolerance"), True),
                shapes=shapes,
            )
        if static_shape:
            profile = {
                name: {key: list(t.shape) for key in ("min", "opt", "max")}
                for name, t in zip(names, spec.make_inputs(*static_shape, "random"), strict=True)
            }
        else:
            profile = _profile(
                spec,
                int(options.get("opt_batch") or 8),
                int(options.get("max_batch") or 32),
                options.get("max_length"),
            )

        def dims(key: str) -> str:
            return ",".join(f"{n}:{'x'.join(map(str, s[key]))}" for n, s in profile.items())

        command = (
            f"trtexec --onnx=model.onnx --minShapes={dims('min')} --optShapes={dims('opt')} "
            f"--maxShapes={dims('max')} --saveEngine=model.plan"
            + (" --fp16" if options.get("fp16") else "")
        )
        meta = {
            "profile": profile,
            "trtexec": command,
            "static": bool(static_shape),
            "inputs": report.info["inputs"],
            "outputs": report.info["outputs"],
            "metadata": spec.metadata,
        }
        (folder / "trt_profile.json").write_text(json.dumps(meta, indent=2) + "\n")
        written.append("trt_profile.json")
        _write_arrays(spec, folder, written)
    report.files = [report.output / n for n in written]
    report.notes.append(f"build the engine with: {command}")
    return report


def _write_arrays(spec: ExportSpec, folder: Path, written: list[str]) -> None:
    for name, tensor in spec.arrays.items():
        np.save(folder / f"{name}.npy", np.asarray(tensor.detach().cpu().numpy(), dtype=np.float32))
        written.append(f"{name}.npy")


# ---------------------------------------------------------------------------------- triton
_TRITON_TYPES = {
    1: "TYPE_FP32",
    10: "TYPE_FP16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    9: "TYPE_BOOL",
    11: "TYPE_FP64",
}


def triton_config(name: str, graph: dict[str, Any], spec: ExportSpec, max_batch_size: int) -> str:
    """``config.pbtxt`` of an onnxruntime model: names and types from the ONNX graph, dimensions
    from the neural types (batch left to ``max_batch_size``, dynamic axes -1)."""

    def tensors(kind: str, ports: dict[str, Any]) -> str:
        blocks = []
        for value_name, elem_type, graph_dims in graph[kind]:
            ntype = ports.get(value_name)
            if ntype is not None and ntype.axes is not None:
                axes = list(ntype.axes)
                dims = [
                    -1 if axis.size is None else int(axis.size)
                    for axis in axes
                    if axis.kind.export_name != "batch"
                ]
            else:
                dims = [d if isinstance(d, int) and d > 0 else -1 for d in graph_dims[1:]]
            reshape = ""
            if not dims:  # one value per batch item: Triton wants [1], reshaped to a scalar
                dims, reshape = [1], "    reshape: { shape: [ ] }\n"
            if elem_type not in _TRITON_TYPES:
                raise ExportError(f"{value_name}: ONNX element type {elem_type} has no Triton type")
            blocks.append(
                "  {\n"
                f'    name: "{value_name}"\n'
                f"    data_type: {_TRITON_TYPES[elem_type]}\n"
                f"    dims: [ {', '.join(str(d) for d in dims)} ]\n"
                f"{reshape}"
                "  }"
            )
        return ",\n".join(blocks)

    return (
        f'name: "{name}"\n'
        'platform: "onnxruntime_onnx"\n'
        f"max_batch_size: {max_batch_size}\n"
        f"input [\n{tensors('inputs', dict(spec.input_ports))}\n]\n"
        f"output [\n{tensors('outputs', dict(spec.output_ports))}\n]\n"
        'default_model_filename: "model.onnx"\n'
    )


def triton_target(model: Any, output: str | os.PathLike[str], **options: Any) -> ExportReport:
    """A Triton model repository: ``<name>/1/model.onnx`` + ``<name>/config.pbtxt`` (and
    ``<name>/metadata.json``: what inference needs beside the graph, e.g. the vocabulary)."""
    allowed = ("opset", "fp16", "tolerance", "force", "threads", "name", "max_batch_size")
    spec = _spec(model, _split(model, options, allowed, "triton"))
    name = str(options.get("name") or spec.name)
    max_batch = int(options.get("max_batch_size") or 8)
    opset = int(options.get("opset") or DEFAULT_OPSET)
    report = ExportReport("triton", Path(output))
    with _staged(output, force=bool(options.get("force")), folder=True) as repo:
        version = repo / name / "1"
        version.mkdir(parents=True)
        graph_path = version / "model.onnx"
        report.info = export_onnx(spec, graph_path, opset=opset)
        fp16 = bool(options.get("fp16"))
        if fp16:
            convert_fp16(graph_path, graph_path)
        report.checks = verify(
            spec,
            ort_runner(graph_path, list(spec.input_ports), options.get("threads")),
            "onnxruntime fp16" if fp16 else "onnxruntime",
            tolerance=_tolerance(spec, options.get("tolerance"), fp16),
        )
        config = triton_config(name, onnx_io(graph_path), spec, max_batch)
        (repo / name / "config.pbtxt").write_text(config)
        (repo / name / "metadata.json").write_text(json.dumps(spec.metadata, indent=2) + "\n")
    report.files = [
        report.output / name / "1" / "model.onnx",
        report.output / name / "config.pbtxt",
        report.output / name / "metadata.json",
    ]
    return report
