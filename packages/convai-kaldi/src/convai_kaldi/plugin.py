"""convai-kaldi's plugin module: hook implementations only (import-light: names, not imports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from convai_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from convai_core.registry import Registry


@hookimpl
def convai_register_datasets(registry: Registry) -> None:
    registry.add(
        "kaldi/audio",
        "convai_kaldi.datasets:kaldi_audio_dataset",
        description="Kaldi data directory: wav.scp (+ segments) + text, as an audio dataset",
    )
    registry.add(
        "kaldi/features",
        "convai_kaldi.datasets:kaldi_feature_dataset",
        description="Kaldi data directory: feats.scp + text (+ cmvn.scp applied per speaker)",
    )


@hookimpl
def convai_register_modules(registry: Registry) -> None:
    registry.add(
        "kaldi/feature_input",
        "convai_kaldi.modules:FeatureInput",
        description="preprocessor that feeds precomputed (feats.scp) features to an encoder",
    )


@hookimpl
def convai_register_commands(registry: Registry) -> None:
    registry.add(
        "kaldi",
        "convai_kaldi.cli:main",
        description="Kaldi data directories: validate, to/from manifests, compute features",
    )


@hookimpl
def convai_config_search_path() -> list[str]:
    return ["pkg://convai_kaldi.conf"]
