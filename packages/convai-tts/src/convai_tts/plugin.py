"""convai-tts's plugin module: hook implementations only (import-light: names, not imports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from convai_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from convai_core.registry import Registry


@hookimpl
def convai_register_models(registry: Registry) -> None:
    registry.add(
        "tts/fastpitch",
        "convai_tts.models.fastpitch:FastPitchModel",
        description="non-autoregressive acoustic model (durations from a teacher), text -> mel",
        config="tts/fastpitch",
    )


@hookimpl
def convai_register_tokenizers(registry: Registry) -> None:
    registry.add(
        "tts/english_phonemes",
        "convai_tts.text.frontend:EnglishPhonemizer",
        description="English text -> ARPAbet symbols (normalization, CMU dictionary, rules)",
    )


@hookimpl
def convai_config_search_path() -> list[str]:
    return ["pkg://convai_tts.conf"]


@hookimpl
def convai_register_commands(registry: Registry) -> None:
    registry.add(
        "tts",
        "convai_tts.cli:tts_main",
        description="synthesize speech from text; TTS data tools (teacher corpus, prepare, report)",
    )
