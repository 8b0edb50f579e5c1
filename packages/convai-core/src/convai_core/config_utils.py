"""Small helpers to validate plain configs against dataclass schemas with helpful errors."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

from convai_core.errors import ConfigError

T = TypeVar("T")


def to_plain(cfg: Any) -> Any:
    """Turn an OmegaConf node (or anything mapping-like) into plain Python containers."""
    if cfg is None:
        return None
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, DictConfig | ListConfig):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a hard dependency
        pass
    if isinstance(cfg, Mapping):
        return {k: to_plain(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [to_plain(v) for v in cfg]
    return cfg


def check_keys(section: str, given: Mapping[str, Any], allowed: list[str] | set[str]) -> None:
    """Raise ConfigError naming the first unknown key of ``given`` and its closest allowed key."""
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f" Did you mean {section}.{close[0]}?" if close else ""
            raise ConfigError(
                f"Unknown config key {section}.{key}.{hint} Allowed keys: "
                f"{', '.join(sorted(allowed))}."
            )


def from_mapping(cls: type[T], section: str, data: Mapping[str, Any] | None) -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys with a clear message.

    Nested dataclass fields are built recursively from nested mappings.
    """
    data = to_plain(data) or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"Config section {section} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    check_keys(section, data, set(fields))
    kwargs: dict[str, Any] = {}
    hints = _resolved_types(cls)
    for name, value in data.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = from_mapping(hint, f"{section}.{name}", value)  # type: ignore[arg-type]
        kwargs[name] = value
    return cls(**kwargs)


def _resolved_types(cls: type) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(cls)
    except Exception:
        return {}
