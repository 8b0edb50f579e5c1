"""convai-nlp loads through the `convai` entry-point group (and, while empty, registers nothing)."""

from __future__ import annotations

from convai_core.plugins import load_plugins


def test_plugin_loads_and_registers_nothing_yet() -> None:
    loaded = load_plugins(reload=True)
    info = next(i for i in loaded.plugins if i.distribution == "convai-nlp")
    assert info.status == "loaded" and info.module == "convai_nlp.plugin"
    assert info.hooks == []  # empty package: update this test when it registers something
    for _kind, registry in loaded.registries.items():
        assert not [e for e in registry if e.provenance.distribution == "convai-nlp"]
