"""Every hook a convai plugin can implement, in one place.

A plugin is a module exposed through the ``convai`` entry-point group (see
:mod:`convai_core.plugins`) whose functions carry ``@hookimpl``. Hooks are grouped by phase:

* registration: ``convai_register_<kind>(registry)`` receives a registry object and calls
  ``registry.add(...)``; the core records which distribution added each key and refuses a key
  added twice, naming both sides;
* configuration: ``convai_config_search_path()`` contributes Hydra config folders;
* resolution: ``firstresult`` hooks that answer "who handles X?" and stop at the first non-None
  result.

Registered targets are ``"module:attr"`` strings, imported on first use, so that listing what is
installed never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from convai_core.registry import PretrainedRegistry, Registry

PROJECT_NAME = "convai"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

# --------------------------------------------------------------------------------------------
# Registration: called once per plugin when the registries are first needed.
# --------------------------------------------------------------------------------------------


@hookspec
def convai_register_models(registry: Registry) -> None:
    """Register trainable models (subclasses of :class:`convai_core.models.ModelBase`).

    Targets implement :class:`convai_core.interfaces.Model`. Keys are ``"<domain>/<name>"``. Pass
    ``config=`` to name the default Hydra config option (under the ``model`` group); every YAML
    file of that group whose ``name`` field holds the key is a trainable configuration of the
    model (``convai models`` lists them)::

        registry.add("asr/ctc", "convai_asr.models.ctc:CTCModel",
                     description="CTC speech recognition", config="asr/quartznet_5x5")
    """


@hookspec
def convai_register_modules(registry: Registry) -> None:
    """Register model parts: preprocessors, encoders, heads (:class:`convai_core.interfaces.NeuralModule`).

    Models build them with :func:`convai_core.components.build` from a config node
    ``{name: <key>, ...}``, so ``model.encoder.name=<key>`` swaps the part. Example::

        registry.add("asr/mel_spectrogram",
                     "convai_asr.modules.features:MelSpectrogramPreprocessor")
    """


@hookspec
def convai_register_datasets(registry: Registry) -> None:
    """Register dataset builders (:class:`convai_core.interfaces.DatasetBuilder`).

    A data section's ``dataset`` key names one (``model.train_ds.dataset=<key>``). Example::

        registry.add("asr/manifest", "convai_asr.data.loaders:manifest_dataset")
    """


@hookspec
def convai_register_augmentations(registry: Registry) -> None:
    """Register data augmentations (:class:`convai_core.interfaces.Augmentation`).

    Models build a list of them with :func:`convai_core.components.build_list` (each item
    ``{name: <key>, prob: <0..1>, ...}``). Example::

        registry.add("asr/spec_augment", "convai_asr.augment.spec:SpecAugment")
    """


@hookspec
def convai_register_tokenizers(registry: Registry) -> None:
    """Register tokenizers (:class:`convai_core.interfaces.Tokenizer`).

    Models build one from their ``tokenizer`` node. Example::

        registry.add("asr/char", "convai_asr.text.tokenizers:CharTokenizer")
    """


@hookspec
def convai_register_decoders(registry: Registry) -> None:
    """Register output decoders (:class:`convai_core.interfaces.Decoder`).

    Models build one from their ``decoding`` node. Example::

        registry.add("asr/ctc_greedy", "convai_asr.decoding.greedy:GreedyCTCDecoder")
    """


@hookspec
def convai_register_export_targets(registry: Registry) -> None:
    """Register export formats (:class:`convai_core.interfaces.ExportTarget`).

    The key is the ``--format`` name of ``convai export`` and of ``ModelBase.export``. Example::

        registry.add("onnx", "convai_export.targets:onnx_target")
    """


@hookspec
def convai_register_pretrained(registry: PretrainedRegistry) -> None:
    """Add entries to the pretrained-model catalog used by ``ModelBase.from_pretrained(name)``.

    Entries are data (:class:`convai_core.interfaces.PretrainedEntry`), not code.
    ``registry.add(name, location=..., sha256=..., model=..., description=...)``: ``location`` is a
    local path or an ``http(s)://`` / ``file://`` URL of a ``.convai`` archive, ``sha256`` its
    checksum (verified after every download and before every load), ``model`` the registry key of
    the model class the archive holds.
    """


@hookspec
def convai_register_commands(registry: Registry) -> None:
    """Add subcommands to the ``convai`` command line (:class:`convai_core.interfaces.Command`).

    The target is a function ``main(argv: list[str]) -> int`` that parses its own arguments (so
    ``convai <name> --help`` works) and is imported only when the command runs; ``description``
    is the one-line help shown by ``convai --help``::

        registry.add("transcribe", "convai_asr.cli:transcribe_main",
                     description="Transcribe audio files with a .convai model")
    """


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@hookspec
def convai_config_search_path() -> list[str]:
    """Return Hydra config folders to search, as ``"pkg://package.conf"`` or ``"file:///abs/dir"``.

    Each folder may hold a ``model/`` group whose options are the model configs a package ships;
    ``convai train model=<option>`` selects one. Results of all plugins are concatenated.
    """
    raise NotImplementedError  # pragma: no cover - a spec has no body


# --------------------------------------------------------------------------------------------
# Resolution: "who handles X?" (firstresult)
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def convai_resolve_pretrained(name: str, cache_dir: str) -> str | None:
    """Resolve a pretrained model name to a local ``.convai`` file, or return None to pass.

    Stops at the first non-None result. The core's own implementation (``trylast``) looks the
    name up in the catalog filled by :func:`convai_register_pretrained`, downloads into
    ``cache_dir`` when needed and verifies the checksum; a plugin can answer first, for example
    to resolve names from a private model store.
    """
    raise NotImplementedError  # pragma: no cover - a spec has no body
