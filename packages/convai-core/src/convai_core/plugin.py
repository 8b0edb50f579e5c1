"""convai-core's own plugin: the core's models, datasets, commands and configs.

Built-in features load through the same entry-point path as third-party plugins. This module must
stay import-light: it only names ``"module:attr"`` targets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from convai_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from convai_core.registry import Registry


@hookimpl
def convai_register_models(registry: Registry) -> None:
    registry.add(
        "core/mlp_classifier",
        "convai_core.models.mlp_classifier:MLPClassifier",
        description="MLP classifier on feature vectors (the core's smallest model, for demos)",
        config="core/mlp_classifier",
    )


@hookimpl
def convai_register_datasets(registry: Registry) -> None:
    registry.add(
        "core/gaussian_blobs",
        "convai_core.data.blobs:gaussian_blobs",
        description="synthetic Gaussian clusters for classification (no files needed)",
    )


@hookimpl
def convai_register_commands(registry: Registry) -> None:
    registry.add("train", "convai_core.train:main", description="Train a model (Hydra overrides)")
    registry.add(
        "models",
        "convai_core.cli:models_main",
        description="List trainable configurations, model classes and the pretrained catalog",
    )
    registry.add(
        "list",
        "convai_core.cli:list_main",
        description="List one registry (modules, augmentations, tokenizers...) with provenance",
    )
    registry.add(
        "plugins",
        "convai_core.cli:plugins_main",
        description="List installed plugins, their hooks and their status",
    )


@hookimpl
def convai_config_search_path() -> list[str]:
    return ["pkg://convai_core.conf"]


@hookimpl(trylast=True)
def convai_resolve_pretrained(name: str, cache_dir: str) -> str | None:
    from pathlib import Path

    from convai_core.pretrained import resolve_entry
    from convai_core.registry import get_registries

    catalog = get_registries().pretrained
    if name not in catalog:
        return None
    return str(resolve_entry(catalog.get(name), Path(cache_dir)))
