"""What a registered target of each registry kind must provide: one ``typing.Protocol`` a kind.

Each ``convai_register_<kind>`` hook in :mod:`convai_core.hookspecs` links its protocol here.
The protocols are structural: a plugin implements one by having the methods, never by
inheriting from convai. They are ``runtime_checkable`` so tests and ``isinstance`` checks can use
them (which checks the names only, not the signatures).

| kind | protocol | built by |
|---|---|---|
| models | :class:`Model` | ``convai train model=<config>``, ``ModelBase.restore_from`` |
| modules | :class:`NeuralModule` | :func:`convai_core.components.build` |
| datasets | :class:`DatasetBuilder` (returns a :class:`MapDataset`) | ``build`` |
| augmentations | :class:`Augmentation` | :func:`convai_core.components.build_list` |
| tokenizers | :class:`Tokenizer` | ``build`` |
| decoders | :class:`Decoder` (returns :class:`Hypothesis` objects) | ``build`` |
| export_targets | :class:`ExportTarget` | ``ModelBase.export`` / ``convai export`` |
| pretrained | :class:`PretrainedEntry` (data, not code) | ``ModelBase.from_pretrained`` |
| commands | :class:`Command` | ``convai <command>`` |

Capabilities of models (not registry kinds): :class:`TextProcessor` (text in, text out), used
by :mod:`convai_core.postprocess` to chain models of different packages.

Importing this module does not import torch: tensors are named ``Any`` here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "PROTOCOLS",
    "Augmentation",
    "Command",
    "DatasetBuilder",
    "Decoder",
    "ExportTarget",
    "Hypothesis",
    "MapDataset",
    "Model",
    "NeuralModule",
    "PretrainedEntry",
    "TextProcessor",
    "Tokenizer",
]


@runtime_checkable
class Model(Protocol):
    """A trainable model (``models``): in practice a :class:`convai_core.models.ModelBase`.

    The registered target is the class; ``target(cfg, trainer=None)`` builds it from its config
    node, whose ``name`` is the registry key.
    """

    @property
    def input_ports(self) -> Mapping[str, Any]: ...

    @property
    def output_ports(self) -> Mapping[str, Any]: ...

    def save_to(self, path: str | os.PathLike[str]) -> Any:
        """Write the model into one ``.convai`` archive."""
        ...


@runtime_checkable
class NeuralModule(Protocol):
    """A part of a model (``modules``): a ``torch.nn.Module`` that declares its ports.

    Built with ``build("modules", node, context=...)``; the composing model passes what it knows
    (an encoder's ``feat_in``, a head's ``num_classes``) through ``context`` and checks the
    ports of consecutive parts with :func:`convai_core.types.connect`.
    """

    @property
    def input_ports(self) -> Mapping[str, Any]: ...

    @property
    def output_ports(self) -> Mapping[str, Any]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class MapDataset(Protocol):
    """What a dataset builder returns: a map-style dataset (``len`` and indexing)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


@runtime_checkable
class DatasetBuilder(Protocol):
    """A dataset factory (``datasets``), named by a data section's ``dataset`` key.

    Called with the section's dataset keys (``manifest``, ``max_duration``...) plus what the
    model supplies through ``context`` (its tokenizer, its sample rate), it returns a
    :class:`MapDataset`. Loader keys (batch size, shuffling, workers) stay with the model.
    """

    def __call__(self, **kwargs: Any) -> MapDataset: ...


@runtime_checkable
class Augmentation(Protocol):
    """A training-time data augmentation (``augmentations``): waveform, spectrogram or text.

    Built from a list node by :func:`convai_core.components.build_list`, each item with an
    optional ``prob``. Called as ``augmentation(signal, length)`` it returns the augmented
    signal of the same shape; it declares ports like a :class:`NeuralModule` so the chain is
    checked against the data it is put on.
    """

    @property
    def input_ports(self) -> Mapping[str, Any]: ...

    @property
    def output_ports(self) -> Mapping[str, Any]: ...

    def __call__(self, signal: Any, length: Any) -> Any: ...


@runtime_checkable
class Tokenizer(Protocol):
    """Text <-> token ids (``tokenizers``), shared by ASR, NLP and TTS models.

    Ids run from 0 to ``vocab_size - 1``; a CTC model puts its blank at ``vocab_size``.

    Attributes:
        vocab_size: number of tokens.
        tokens: the text of each token, indexed by id.
    """

    @property
    def vocab_size(self) -> int: ...

    @property
    def tokens(self) -> list[str]: ...

    def encode(self, text: str) -> list[int]:
        """Text to ids (the text must already be normalized)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Ids to text."""
        ...

    def word_boundaries(self, ids: Sequence[int]) -> list[bool]:
        """For each id, whether its token starts a new word."""
        ...

    def to_config(self) -> dict[str, Any]:
        """A component node (``{name: <key>, ...}``) that builds this tokenizer again."""
        ...


@runtime_checkable
class Hypothesis(Protocol):
    """One decoded utterance.

    Attributes:
        token_ids: the emitted tokens.
        token_frames: for each token, the output frame where it starts (for timestamps).
        score: the hypothesis' log-score.
    """

    token_ids: list[int]
    token_frames: list[int]
    score: float


@runtime_checkable
class Decoder(Protocol):
    """Turns model outputs into hypotheses (``decoders``): greedy CTC, beam search with an LM.

    Built with ``build("decoders", cfg.decoding, context={"blank_id": ..., "tokenizer": ...})``.

    Shapes:
        log_probs: (B, T, V), lengths: (B,) -> B hypotheses, best first per item.
    """

    def __call__(self, log_probs: Any, lengths: Any) -> list[Hypothesis]: ...


@runtime_checkable
class ExportTarget(Protocol):
    """An export format (``export_targets``); the key is ``convai export --format``.

    Called as ``target(model, output, **options)``, it writes ``output`` only after checking the
    export against the eager model, and returns a report (``str()`` of it is shown to users).
    """

    def __call__(self, model: Any, output: str | os.PathLike[str], **options: Any) -> Any: ...


@runtime_checkable
class PretrainedEntry(Protocol):
    """A pretrained-catalog entry (``pretrained``): data, not code.

    Registered with ``registry.add(name, location=..., sha256=..., model=...)``; the core's
    ``convai_resolve_pretrained`` reads ``target`` (the location) and ``metadata["sha256"]``.
    """

    key: str
    target: str
    metadata: Mapping[str, Any]


@runtime_checkable
class Command(Protocol):
    """A ``convai <name>`` subcommand (``commands``): parses its own ``argv``, returns an exit code."""

    def __call__(self, argv: list[str]) -> int: ...


@runtime_checkable
class TextProcessor(Protocol):
    """A model that rewrites text (punctuation and capitalization, normalization...).

    Chained after a recognizer by :func:`convai_core.postprocess.load_text_processor`.
    """

    def process_texts(self, texts: Sequence[str]) -> list[str]:
        """One output text per input text, in order."""
        ...


#: The protocol of each registry kind (every kind of :data:`convai_core.registry.KINDS`).
PROTOCOLS: dict[str, type] = {
    "models": Model,
    "modules": NeuralModule,
    "datasets": DatasetBuilder,
    "augmentations": Augmentation,
    "tokenizers": Tokenizer,
    "decoders": Decoder,
    "export_targets": ExportTarget,
    "pretrained": PretrainedEntry,
    "commands": Command,
}
