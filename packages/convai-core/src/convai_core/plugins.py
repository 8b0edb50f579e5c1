"""Discovering and loading convai plugins.

Plugins are modules exposed in the ``convai`` entry-point group, built-in packages included (they
load through the same path as third-party ones). Loading is guarded: a plugin that fails to import,
declares a misspelled hook, or raises while registering is skipped with a warning naming its
distribution and version, so one broken plugin never kills the host.

Environment switches (comma-separated names match an entry-point name or a distribution name):

============================== ===========================================================
``CONVAI_STRICT_PLUGINS=1``     a broken plugin or a duplicate key is an error, not a warning
``CONVAI_DISABLE_PLUGIN_AUTOLOAD=1`` load only convai-core and the plugins in ``CONVAI_PLUGINS``
``CONVAI_PLUGINS=a,b``          plugins to load when autoload is disabled
``CONVAI_PLUGINS_ALLOW=a,b``    load only these plugins (convai-core is always loaded)
``CONVAI_PLUGINS_BLOCK=a,b``    never load these plugins
``CONVAI_TRACE_HOOKS=1``        print every hook call and its result to stderr
============================== ===========================================================
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from convai_core import hookspecs
from convai_core.errors import PluginLoadError
from convai_core.registry import KINDS, Provenance, Registries

ENTRY_POINT_GROUP = "convai"
CORE_DISTRIBUTION = "convai-core"


class PluginWarning(UserWarning):
    """A plugin was skipped or misbehaved (see the message for which and why)."""


@dataclass
class PluginInfo:
    """What ``convai plugins`` reports about one entry point."""

    name: str
    distribution: str
    version: str
    module: str
    status: str  # "loaded" | "skipped" | "blocked" | "failed"
    reason: str = ""
    hooks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LoadedPlugins:
    manager: pluggy.PluginManager
    registries: Registries
    plugins: list[PluginInfo]


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _names(name: str) -> set[str]:
    return {n.strip() for n in os.environ.get(name, "").split(",") if n.strip()}


def strict_mode() -> bool:
    return _flag("CONVAI_STRICT_PLUGINS")


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "<unknown>", ""
    return dist.metadata["Name"] or "<unknown>", dist.version or ""


def _selection_verdict(ep_name: str, dist_name: str) -> str | None:
    """Return why an entry point is not loaded (None: load it)."""
    names = {ep_name, dist_name}
    if names & _names("CONVAI_PLUGINS_BLOCK"):
        return "blocked by CONVAI_PLUGINS_BLOCK"
    if dist_name == CORE_DISTRIBUTION:
        return None
    allow = _names("CONVAI_PLUGINS_ALLOW")
    if allow and not names & allow:
        return "not in CONVAI_PLUGINS_ALLOW"
    if _flag("CONVAI_DISABLE_PLUGIN_AUTOLOAD") and not names & _names("CONVAI_PLUGINS"):
        return "autoload disabled (CONVAI_DISABLE_PLUGIN_AUTOLOAD) and not in CONVAI_PLUGINS"
    return None


def _fail(info: PluginInfo, reason: str, exc: BaseException | None = None) -> None:
    info.status = "failed"
    info.reason = reason
    message = (
        f"convai: skipping plugin {info.name!r} from {info.distribution} {info.version}: {reason}"
    )
    if strict_mode():
        raise PluginLoadError(message + " (CONVAI_STRICT_PLUGINS=1 makes this fatal)") from exc
    warnings.warn(
        message + " Set CONVAI_STRICT_PLUGINS=1 to make this an error.", PluginWarning, stacklevel=3
    )


def _hooks_of(manager: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])


def _discover() -> list[EntryPoint]:
    eps = list(entry_points(group=ENTRY_POINT_GROUP))
    # convai-core first, then the rest sorted by name, so clashes keep the built-in side.
    return sorted(eps, key=lambda ep: (_dist_of(ep)[0] != CORE_DISTRIBUTION, ep.name))


def build_plugin_manager(
    extra_plugins: list[tuple[str, object]] | None = None,
) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """Create a plugin manager with every selected, working plugin registered."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    if _flag("CONVAI_TRACE_HOOKS"):
        manager.trace.root.setwriter(lambda msg: sys.stderr.write(f"[convai hooks] {msg}"))
        manager.enable_tracing()
    infos: list[PluginInfo] = []
    seen: set[str] = set()
    for ep in _discover():
        dist_name, dist_version = _dist_of(ep)
        if ep.name in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add(ep.name)
        info = PluginInfo(ep.name, dist_name, dist_version, ep.value, status="loaded")
        infos.append(info)
        verdict = _selection_verdict(ep.name, dist_name)
        if verdict:
            info.status, info.reason = "blocked", verdict
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # any import-time failure of a third-party module
            _fail(info, f"importing {ep.value!r} raised {type(exc).__name__}: {exc}", exc)
            continue
        _register(manager, info, plugin)
    for name, plugin in extra_plugins or []:
        info = PluginInfo(
            name, "<in-process>", "", getattr(plugin, "__name__", repr(plugin)), status="loaded"
        )
        infos.append(info)
        _register(manager, info, plugin)
    return manager, infos


def _register(manager: pluggy.PluginManager, info: PluginInfo, plugin: object) -> None:
    try:
        manager.register(plugin, name=info.name)
    except Exception as exc:  # pluggy validation errors (bad hook signature...)
        _fail(info, f"invalid hook implementation: {exc}", exc)
        return
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        manager.unregister(plugin)
        _fail(
            info,
            f"it implements a hook that does not exist ({exc}). Hook names are listed in "
            f"convai_core.hookspecs; check the spelling.",
            exc,
        )
        return
    info.hooks = _hooks_of(manager, plugin)


def fill_registries(manager: pluggy.PluginManager, infos: list[PluginInfo]) -> Registries:
    """Call every ``convai_register_<kind>`` hook, one plugin at a time, recording provenance."""
    registries = Registries(strict=strict_mode())
    by_name = {info.name: info for info in infos}
    for kind in KINDS:
        hook_name = f"convai_register_{kind}"
        caller = getattr(manager.hook, hook_name)
        registry = registries[kind]
        for impl in caller.get_hookimpls():
            info = by_name.get(impl.plugin_name)
            provenance = Provenance(
                plugin=impl.plugin_name,
                distribution=info.distribution if info else "<unknown>",
                version=info.version if info else "",
            )
            registry._set_provenance(provenance)
            others = [p for n, p in manager.list_name_plugin() if n != impl.plugin_name]
            try:
                manager.subset_hook_caller(hook_name, remove_plugins=others)(registry=registry)
            except Exception as exc:
                if info is None:
                    raise
                _fail(info, f"{hook_name} raised {type(exc).__name__}: {exc}", exc)
    for impl in manager.hook.convai_config_search_path.get_hookimpls():
        others = [p for n, p in manager.list_name_plugin() if n != impl.plugin_name]
        try:
            results = manager.subset_hook_caller(
                "convai_config_search_path", remove_plugins=others
            )()
        except Exception as exc:
            info = by_name.get(impl.plugin_name)
            if info is None:
                raise
            _fail(info, f"convai_config_search_path raised {type(exc).__name__}: {exc}", exc)
            continue
        for paths in results:
            registries.config_search_path.extend(paths or [])
    return registries


_lock = threading.Lock()
_loaded: LoadedPlugins | None = None


def load_plugins(*, reload: bool = False) -> LoadedPlugins:
    """Load plugins and fill the registries once per process (``reload=True`` starts over)."""
    global _loaded
    with _lock:
        if _loaded is None or reload:
            manager, infos = build_plugin_manager()
            registries = fill_registries(manager, infos)
            _loaded = LoadedPlugins(manager, registries, infos)
        return _loaded


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (plugins loaded on first call)."""
    return load_plugins().manager
