"""The plugin module named by the ``convai`` entry point: hook implementations only.

It names ``"module:attr"`` targets and imports none of them, so listing plugins stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from convai_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from convai_core.registry import Registry


@hookimpl
def convai_register_models(registry: Registry) -> None:
    registry.add(
        "toy/tone_detector",
        "convai_toy.model:ToneDetector",
        description="tells a pure tone from noise (example plugin model)",
        config="toy/tone_detector",
    )


@hookimpl
def convai_register_datasets(registry: Registry) -> None:
    registry.add(
        "toy/tones", "convai_toy.model:tones_dataset", description="synthetic tones and noise"
    )


@hookimpl
def convai_register_modules(registry: Registry) -> None:
    registry.add(
        "toy/conv_gru_encoder",
        "convai_toy.encoder:ConvGRUEncoder",
        description="strided conv + bidirectional GRU encoder (example plugin)",
    )


@hookimpl
def convai_register_augmentations(registry: Registry) -> None:
    registry.add(
        "toy/random_gain",
        "convai_toy.augment:RandomGain",
        description="random loudness per utterance, on waveforms (example plugin)",
    )


@hookimpl
def convai_register_tokenizers(registry: Registry) -> None:
    registry.add(
        "toy/letters",
        "convai_toy.tokenizer:LettersTokenizer",
        description="a-z, space and apostrophe (example plugin)",
    )


@hookimpl
def convai_register_decoders(registry: Registry) -> None:
    registry.add(
        "toy/ctc_min_run",
        "convai_toy.decoder:MinRunCTCDecoder",
        description="greedy CTC that ignores tokens shorter than min_frames (example plugin)",
    )


@hookimpl
def convai_config_search_path() -> list[str]:
    return ["pkg://convai_toy.conf"]
