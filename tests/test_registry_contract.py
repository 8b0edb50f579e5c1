"""The plugin contract across packages: every registry kind is read, documented and typed.

A registry that nothing reads is a catalog, not a plugin system (../shared/DESIGN.md). These
tests fail when a kind loses its reader, when a hookspec example names a target that does not
exist, or when a kind has no protocol in convai_core.interfaces.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from convai_core import hookspecs, interfaces
from convai_core.registry import KINDS, Entry, get_registries

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "packages").glob("*/src/**/*.py"))
#: Modules that define or fill registries; a read elsewhere is what counts.
NOT_READERS = {"registry.py", "plugins.py", "hookspecs.py", "plugin.py", "interfaces.py"}


def _reader_patterns(kind: str) -> list[str]:
    return [
        rf'\bbuild(?:_list)?\(\s*"{kind}"',  # components built from config nodes
        rf"get_registries\(\)\.{kind}\b",  # direct lookups (commands, models, export targets)
        rf"\bregs\.{kind}\b",
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_every_registry_kind_has_a_reader(kind: str) -> None:
    readers = []
    for path in SOURCES:
        if path.name in NOT_READERS:
            continue
        text = path.read_text(encoding="utf-8")
        if any(re.search(p, text) for p in _reader_patterns(kind)):
            readers.append(path.relative_to(ROOT))
    assert readers, f"no code looks up the {kind!r} registry: registered entries are never used"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_protocol_linked_from_its_hookspec(kind: str) -> None:
    protocol = interfaces.PROTOCOLS[kind]
    assert getattr(protocol, "_is_protocol", False), protocol
    doc = inspect.getdoc(getattr(hookspecs, f"convai_register_{kind}")) or ""
    assert f"convai_core.interfaces.{protocol.__name__}" in doc, (kind, doc)


def _hookspec_examples() -> list[tuple[str, str, str]]:
    """(hook, key, target) of every ``registry.add("key", "module:attr")`` in the hookspecs."""
    examples = []
    for name, hook in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("convai_register_"):
            continue
        doc = inspect.getdoc(hook) or ""
        for key, target in re.findall(r'registry\.add\(\s*"([^"]+)",\s*"([\w.]+:[\w.]+)"', doc):
            examples.append((name, key, target))
    return examples


def test_every_hookspec_example_names_a_real_target() -> None:
    examples = _hookspec_examples()
    kinds_with_code = {k for k in KINDS if k != "pretrained"}  # pretrained entries are data
    assert {hook[len("convai_register_"):] for hook, _, _ in examples} == kinds_with_code
    for hook, key, target in examples:
        kind = hook[len("convai_register_"):]
        entry = Entry(kind=kind, key=key, target=target)
        assert entry.load() is not None, (hook, target)
        # and the example is what the installed packages really register
        assert get_registries()[kind].get(key).target == target, (hook, key)


@pytest.mark.parametrize("kind", ["modules", "augmentations", "tokenizers", "decoders", "datasets"])
def test_registered_components_of_each_kind_import(kind: str) -> None:
    for entry in get_registries()[kind]:
        assert callable(entry.load()), entry


def test_a_misspelled_component_key_from_the_command_line_gets_the_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The path a user takes: `convai train ... model.<part>.name=<typo>` fails before training."""
    from convai_core.train import main

    code = main(
        [
            "model=asr/demo_ctc",
            "model.encoder.name=asr/conformer_encodr",
            "model.train_ds.manifest=unused.jsonl",
            f"exp_manager.exp_dir={tmp_path}",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "model.encoder.name='asr/conformer_encodr' is not a registered modules key" in err
    assert "Did you mean 'asr/conformer_encoder'?" in err


class _WaveformEncoder:
    """An encoder that (wrongly, for a CTC model) declares raw audio as its input."""

    def __init__(self, feat_in: int) -> None:
        self.feat_in = feat_in

    @property
    def input_ports(self) -> dict:
        from convai_core.types import AudioSignal, B, Lengths, NeuralType, T

        return {
            "audio_signal": NeuralType((B, T), AudioSignal()),
            "length": NeuralType((B,), Lengths()),
        }

    @property
    def output_ports(self) -> dict:
        from convai_core.types import B, D, EncodedRepresentation, Lengths, NeuralType, T

        return {
            "encoded": NeuralType((B, D.sized(8), T), EncodedRepresentation()),
            "encoded_len": NeuralType((B,), Lengths()),
        }


def test_parts_whose_neural_types_disagree_fail_when_the_model_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    import types

    from convai_asr.models.ctc import CTCModel
    from convai_core.errors import NeuralTypeError
    from convai_core.train import compose_config

    module = types.ModuleType("convai_test_parts")
    module.WaveformEncoder = _WaveformEncoder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    # registered for this test only (monkeypatch removes the entry afterwards)
    monkeypatch.setitem(
        get_registries().modules._entries,
        "test/waveform_encoder",
        Entry(kind="modules", key="test/waveform_encoder", target="convai_test_parts:WaveformEncoder"),
    )
    cfg = compose_config(
        ["model=asr/demo_ctc", "model.train_ds.manifest=unused", "model.encoder.name=test/waveform_encoder"]
    )
    with pytest.raises(NeuralTypeError) as caught:
        CTCModel(cfg.model)
    message = str(caught.value)
    assert "model.preprocessor (asr/mel_spectrogram)" in message
    assert "model.encoder (test/waveform_encoder)" in message
