"""convai-export loads through the `convai` entry-point group and registers its formats, which
know no domain."""

from __future__ import annotations

from convai_core.plugins import load_plugins

FORMATS = {"onnx", "torchscript", "checkpoint", "trt-onnx", "triton"}


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


def test_the_package_knows_no_domain() -> None:
    """No module of convai-export names a domain's words (formats that need them are registered
    by the domain's package)."""
    import re
    from pathlib import Path

    import convai_export

    package = Path(convai_export.__file__).parent
    words = re.compile(r"\b(asr|ctc|mels?|transcri\w*|speech|stft|spectrogram)\b", re.I)
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if words.search(line)
    ]
    assert not found, "\n".join(found)
