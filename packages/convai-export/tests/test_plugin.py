"""convai-export loads through the `convai` entry-point group and registers its formats."""

from __future__ import annotations

from convai_core.plugins import load_plugins

FORMATS = {"onnx", "torchscript", "checkpoint", "trt-onnx", "triton", "asr-bundle"}


def test_plugin_registers_the_export_formats_and_command() -> None:
    loaded = load_plugins(reload=True)
    info = next(i for i in loaded.plugins if i.distribution == "convai-export")
    assert info.status == "loaded" and info.module == "convai_export.plugin"
    assert set(info.hooks) == {"convai_register_export_targets", "convai_register_commands"}
    targets = loaded.registries["export_targets"]
    assert {e.key for e in targets if e.provenance.distribution == "convai-export"} == FORMATS
    for key in FORMATS:
        assert callable(targets.load(key))
    assert "export" in loaded.registries["commands"]
