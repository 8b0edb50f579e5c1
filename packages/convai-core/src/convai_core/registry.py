"""Registries of everything installed plugins provide.

A registry maps keys (``"asr/quartznet"``) to ``"module:attr"`` targets, imported only when
:meth:`Entry.load` is called, and records which distribution registered each key. Registries are
filled by :mod:`convai_core.plugins` the first time :func:`get_registries` is called.
"""

from __future__ import annotations

import difflib
import importlib
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from convai_core.errors import ConfigError, DuplicateKeyError, UnknownKeyError

#: The registry kinds, one per ``convai_register_<kind>`` hook.
KINDS: tuple[str, ...] = (
    "models",
    "modules",
    "datasets",
    "augmentations",
    "tokenizers",
    "decoders",
    "export_targets",
    "pretrained",
    "commands",
)

_TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class Provenance:
    """Who registered an entry: the plugin (entry-point) name and its distribution."""

    plugin: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.distribution} {self.version} (plugin {self.plugin!r})"


_UNKNOWN = Provenance(plugin="<direct>", distribution="<unknown>", version="")


@dataclass(frozen=True)
class Entry:
    """One registered item.

    Attributes:
        kind: the registry kind (``"models"``...).
        key: the registry key.
        target: ``"module:attr"`` import string (for pretrained entries: the archive location).
        description: one line shown by ``convai models`` / ``convai --help``.
        provenance: the distribution that registered it.
        metadata: extra keyword arguments given to ``add`` (``config=`` for models...).
    """

    kind: str
    key: str
    target: str
    description: str = ""
    provenance: Provenance = _UNKNOWN
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """Import and return the target object."""
        module_name, _, attr_path = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImportError(
                f"{self.kind} entry {self.key!r} registered by {self.provenance} points to "
                f"module {module_name!r}, which cannot be imported: {exc}. Reinstall "
                f"{self.provenance.distribution}."
            ) from exc
        for part in attr_path.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError as exc:
                raise ImportError(
                    f"{self.kind} entry {self.key!r} registered by {self.provenance}: module "
                    f"{module_name!r} has no attribute {attr_path!r}."
                ) from exc
        return obj

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "target": self.target,
            "description": self.description,
            "distribution": self.provenance.distribution,
            "version": self.provenance.version,
            "plugin": self.provenance.plugin,
            **{k: v for k, v in self.metadata.items() if isinstance(v, str | int | float | bool)},
        }


class Registry:
    """A keyed collection of :class:`Entry` objects for one kind.

    Args:
        kind: the registry kind, one of :data:`KINDS`.
        strict: raise :class:`DuplicateKeyError` on a clash; otherwise warn and keep the first.
    """

    def __init__(self, kind: str, *, strict: bool = True) -> None:
        self.kind = kind
        self.strict = strict
        self._entries: dict[str, Entry] = {}
        self._provenance: Provenance = _UNKNOWN

    # -- filled by the plugin loader -----------------------------------------------------------
    def _set_provenance(self, provenance: Provenance) -> None:
        self._provenance = provenance

    def add(self, key: str, target: str, *, description: str = "", **metadata: Any) -> None:
        """Register ``key`` -> ``target`` (a ``"module:attr"`` string, imported on first use).

        Raises:
            ValueError: ``key`` is empty or ``target`` is not of the form ``"module:attr"``.
            DuplicateKeyError: ``key`` is taken (in non-strict mode: a warning, first one kept).
        """
        if not key or not isinstance(key, str):
            raise ValueError(f"{self.kind}: a registry key must be a non-empty string, got {key!r}")
        self._check_target(key, target)
        entry = Entry(
            kind=self.kind,
            key=key,
            target=target,
            description=description,
            provenance=self._provenance,
            metadata=MappingProxyType(dict(metadata)),
        )
        existing = self._entries.get(key)
        if existing is not None:
            message = (
                f"{self.kind} key {key!r} is registered twice: by {existing.provenance} "
                f"-> {existing.target!r} and by {entry.provenance} -> {entry.target!r}. "
                f"Uninstall one of the two distributions, or block one plugin with "
                f"CONVAI_PLUGINS_BLOCK."
            )
            if self.strict:
                raise DuplicateKeyError(message)
            warnings.warn(message + " Keeping the first.", stacklevel=2)
            return
        self._entries[key] = entry

    def _check_target(self, key: str, target: str) -> None:
        if not isinstance(target, str) or not _TARGET_RE.match(target):
            raise ValueError(
                f"{self.kind} key {key!r}: target must be a 'module:attr' string, got {target!r}"
            )

    # -- lookup ---------------------------------------------------------------------------------
    def get(self, key: str) -> Entry:
        """Return the entry for ``key`` or raise :class:`UnknownKeyError` with close matches."""
        try:
            return self._entries[key]
        except KeyError:
            pass
        close = difflib.get_close_matches(key, list(self._entries), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        domain = key.split("/", 1)[0] if "/" in key else None
        install = (
            f" If it comes from a package that is not installed, install it (for example "
            f"`pip install convai-{domain}`)."
            if domain
            else ""
        )
        available = ", ".join(sorted(self._entries)) or "none"
        raise UnknownKeyError(
            f"No {self.kind} entry named {key!r}.{hint}{install} Registered: {available}."
        )

    def load(self, key: str) -> Any:
        """Shortcut for ``get(key).load()``."""
        return self.get(key).load()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.key))

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[str]:
        return sorted(self._entries)


class PretrainedRegistry(Registry):
    """The pretrained-model catalog: names -> archive location + checksum."""

    def add(  # type: ignore[override]
        self,
        key: str,
        target: str | None = None,
        *,
        location: str | None = None,
        sha256: str,
        model: str | None = None,
        description: str = "",
        **metadata: Any,
    ) -> None:
        """Register pretrained model ``key``.

        Args:
            key: the name given to ``from_pretrained``.
            target: same as ``location`` (positional form).
            location: a local path or an ``http(s)://`` / ``file://`` URL of a ``.convai`` file.
            sha256: hex digest of the archive, verified before every load.
            model: registry key of the model class (informational; the archive names it too).
            description: one line for ``convai models``.
        """
        location = location or target
        if not location:
            raise ValueError(f"pretrained {key!r}: a location is required")
        if not re.fullmatch(r"[0-9a-fA-F]{64}", sha256 or ""):
            raise ValueError(f"pretrained {key!r}: sha256 must be 64 hex digits, got {sha256!r}")
        metadata.update(sha256=sha256.lower(), model=model or "")
        super().add(key, location, description=description, **metadata)

    def _check_target(self, key: str, target: str) -> None:
        if not isinstance(target, str) or not target:
            raise ValueError(f"pretrained {key!r}: location must be a non-empty string")


class Registries:
    """All registries, one attribute per kind (``registries.models``...)."""

    def __init__(self, *, strict: bool = True) -> None:
        self._by_kind: dict[str, Registry] = {}
        for kind in KINDS:
            cls = PretrainedRegistry if kind == "pretrained" else Registry
            self._by_kind[kind] = cls(kind, strict=strict)
        self.config_search_path: list[str] = []

    def __getattr__(self, kind: str) -> Registry:
        try:
            return self.__dict__["_by_kind"][kind]
        except KeyError:
            raise AttributeError(kind) from None

    def __getitem__(self, kind: str) -> Registry:
        try:
            return self._by_kind[kind]
        except KeyError:
            raise ConfigError(
                f"Unknown registry kind {kind!r}; known kinds: {', '.join(KINDS)}"
            ) from None

    def items(self) -> Iterator[tuple[str, Registry]]:
        return iter(self._by_kind.items())


def get_registries() -> Registries:
    """Return the registries, loading plugins on the first call (cached afterwards)."""
    from convai_core.plugins import load_plugins

    return load_plugins().registries
