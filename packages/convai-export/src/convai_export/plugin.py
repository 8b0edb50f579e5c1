"""convai-export's plugin module: hook implementations only (import-light: names, not imports).

The formats registered here know no domain; a format that needs a domain's knowledge is
registered by that domain's package through the same hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from convai_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from convai_core.registry import Registry


@hookimpl
def convai_register_export_targets(registry: Registry) -> None:
    registry.add(
        "onnx",
        "convai_export.targets:onnx_target",
        description="ONNX (opset 18, dynamic batch/time), optional fp16; checked with onnxruntime",
    )
    registry.add(
        "torchscript",
        "convai_export.targets:torchscript_target",
        description="TorchScript (traced), checked with torch.jit at new shapes",
    )
    registry.add(
        "checkpoint",
        "convai_export.targets:checkpoint_target",
        description="weights (safetensors) + config (YAML) + artifacts, no code",
    )
    registry.add(
        "trt-onnx",
        "convai_export.targets:trt_onnx_target",
        description="ONNX for TensorRT: features in, shape profile or static shapes, fp16 copy",
    )
    registry.add(
        "triton",
        "convai_export.targets:triton_target",
        description="Triton model repository: <name>/1/model.onnx + config.pbtxt",
    )


@hookimpl
def convai_register_commands(registry: Registry) -> None:
    registry.add(
        "export",
        "convai_export.cli:export_main",
        description="Export a .convai model (ONNX, TorchScript, checkpoint, TensorRT, Triton...)",
    )
