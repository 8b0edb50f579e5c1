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
    registry.add(
        "tts/tacotron2",
        "convai_tts.models.tacotron2:Tacotron2Model",
        description="autoregressive acoustic model with location-sensitive attention, text -> mel",
        config="tts/tacotron2",
    )
    registry.add(
        "tts/aligner",
        "convai_tts.models.aligner:AlignerModel",
        description="learns symbol durations of real recordings (forward-sum loss, monotonic search)",
        config="tts/aligner",
    )
    registry.add(
        "tts/hifigan",
        "convai_tts.models.hifigan:HifiGanModel",
        description="GAN vocoder (HiFi-GAN V1 generator, multi-period and multi-scale critics)",
        config="tts/hifigan",
    )
    registry.add(
        "tts/waveglow",
        "convai_tts.models.waveglow:WaveGlowModel",
        description="flow-based vocoder (invertible 1x1 convolutions, affine coupling), mel -> audio",
        config="tts/waveglow",
    )


@hookimpl
def convai_register_tokenizers(registry: Registry) -> None:
    registry.add(
        "tts/english_phonemes",
        "convai_tts.text.frontend:EnglishPhonemizer",
        description="English text -> ARPAbet symbols (normalization, CMU dictionary, rules)",
    )
    registry.add(
        "tts/mandarin_pinyin",
        "convai_tts.text.mandarin:MandarinPhonemizer",
        description="Mandarin text -> pinyin initials, finals and tones (pypinyin)",
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
