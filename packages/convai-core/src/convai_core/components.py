"""Build components from config nodes by registry key: the plugin contract in one function.

A component node is a mapping ``{name: <registry key>, <keyword arguments>}``. :func:`build`
looks the key up in one registry kind, checks the arguments against the target's signature and
calls it, so a model never constructs a registered part directly and a third party's
``acme/my_encoder`` is used with ``model.encoder.name=acme/my_encoder``::

    encoder = build("modules", cfg.encoder, path="model.encoder", context={"feat_in": 80})

``context`` holds what the composing model knows and the config must not repeat (input sizes,
the blank id, the tokenizer): each value is passed only if the target's signature takes it, so a
greedy decoder can ignore the tokenizer that a language-model decoder needs.

Every mistake is a :class:`~convai_core.errors.ConfigError` naming the node's config path, the
component and the closest valid key. Importing this module does not import torch; the target is
imported when it is built.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from convai_core.config_utils import to_plain
from convai_core.errors import ConfigError

if TYPE_CHECKING:
    from convai_core.registry import Registries

__all__ = [
    "NAME_KEY",
    "PROBABILITY_KEY",
    "BuiltItem",
    "build",
    "build_list",
    "check_arguments",
    "rename_legacy_type",
]

#: The key of a component node that holds its registry key.
NAME_KEY = "name"
#: The per-item key of a component list that holds the probability of applying the item.
PROBABILITY_KEY = "prob"


@dataclass(frozen=True)
class BuiltItem:
    """One built item of a component list.

    Attributes:
        component: the built object.
        probability: how often to apply it, in [0, 1] (``prob`` in the node, default 1).
        key: the registry key it was built from.
    """

    component: Any
    probability: float
    key: str


def _closest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def _parameters(target: Any) -> tuple[dict[str, inspect.Parameter], bool] | None:
    """The keyword-passable parameters of ``target`` and whether it takes ``**kwargs``."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return None
    params: dict[str, inspect.Parameter] = {}
    var_keyword = False
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = True
        elif param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            params[param.name] = param
    return params, var_keyword


def check_arguments(
    target: Any,
    arguments: Mapping[str, Any],
    *,
    path: str,
    component: str,
    context: Mapping[str, Any] | None = None,
    sibling_keys: Collection[str] = (),
) -> dict[str, Any]:
    """Check config ``arguments`` against ``target``'s signature; return the call's kwargs.

    Args:
        target: the class or function to call.
        arguments: keyword arguments from the config node (without ``name``).
        path: the node's config path, for messages (``"model.encoder"``).
        component: the registry key, for messages.
        context: values the caller supplies; passed when the signature takes them.
        sibling_keys: keys valid beside the component's own in the same node, which the
            caller has already taken out (a data section's loader keys); named in suggestions.

    Returns:
        ``arguments`` plus the accepted ``context`` values.

    Raises:
        ConfigError: an unknown key (with the closest valid one), a key that the caller supplies
            itself, or a required argument that neither gives.
    """
    context = dict(context or {})
    described = _parameters(target)
    if described is None:
        return {**arguments, **context}
    params, var_keyword = described
    for key in arguments:
        if key in context:
            raise ConfigError(
                f"{path}.{key}: {component} gets {key!r} from the model that builds it; remove "
                f"{path}.{key} from the config."
            )
        if key not in params and not var_keyword:
            settable = sorted({*(k for k in params if k not in context), *sibling_keys})
            raise ConfigError(
                f"Unknown config key {path}.{key} for {component}.{_closest(str(key), settable)} "
                f"Valid keys: {', '.join([NAME_KEY, *settable])}."
            )
    kwargs = dict(arguments)
    for key, value in context.items():
        if key in params or var_keyword:
            kwargs[key] = value
    missing = [
        key
        for key, param in params.items()
        if param.default is inspect.Parameter.empty and key not in kwargs
    ]
    if missing:
        raise ConfigError(
            f"{path}: {component} needs {', '.join(repr(k) for k in missing)}; set "
            + ", ".join(f"{path}.{k}" for k in missing)
            + "."
        )
    return kwargs


def _split_node(node: Any, path: str, kind: str) -> tuple[str, dict[str, Any]]:
    plain = to_plain(node)
    if isinstance(plain, str):  # the short form: just the registry key
        return plain, {}
    if not isinstance(plain, Mapping):
        raise ConfigError(
            f"{path} must be a mapping {{{NAME_KEY}: <{kind} key>, ...}} or a key string; got "
            f"{type(plain).__name__}."
        )
    arguments = dict(plain)
    name = arguments.pop(NAME_KEY, None)
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"{path}.{NAME_KEY} is missing: name the {kind} registry key to build (see "
            f"`convai list {kind}`)."
        )
    return name, arguments


def build(
    kind: str,
    node: Any,
    *,
    path: str,
    context: Mapping[str, Any] | None = None,
    sibling_keys: Collection[str] = (),
    registries: Registries | None = None,
) -> Any:
    """Build the component that ``node`` names from registry ``kind``.

    Args:
        kind: a registry kind (``"modules"``, ``"augmentations"``, ``"tokenizers"``...).
        node: ``{name: <key>, **kwargs}`` (a dict or an OmegaConf node), or the key alone.
        path: the node's config path, used in every message.
        context: values the caller supplies (see the module docstring).
        sibling_keys: see :func:`check_arguments`.
        registries: the registries to use (default: the installed plugins').

    Returns:
        Whatever the registered target returns when called with the checked arguments.

    Raises:
        ConfigError: a missing or unknown registry key (with the closest one), or arguments that
            do not fit the target (see :func:`check_arguments`); a ``TypeError`` or
            ``ValueError`` raised by the target is re-raised as a ConfigError naming ``path``.
    """
    from convai_core.registry import get_registries

    regs = registries if registries is not None else get_registries()
    registry = regs[kind]
    key, arguments = _split_node(node, path, kind)
    if key not in registry:
        known = registry.keys()
        raise ConfigError(
            f"{path}.{NAME_KEY}={key!r} is not a registered {kind} key.{_closest(key, known)} "
            f"Registered: {', '.join(known) or 'none'}. A key from a package that is not "
            "installed needs that package (`convai plugins` lists what is)."
        )
    target: Callable[..., Any] = registry.load(key)
    kwargs = check_arguments(
        target, arguments, path=path, component=key, context=context, sibling_keys=sibling_keys
    )
    try:
        return target(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path} ({key}): {exc}") from exc


def build_list(
    kind: str,
    nodes: Any,
    *,
    path: str,
    context: Mapping[str, Any] | None = None,
    registries: Registries | None = None,
) -> list[BuiltItem]:
    """Build a list of components (an augmentation chain...), each with a probability.

    Each item is a node as for :func:`build`, plus an optional ``prob`` in [0, 1] (default 1):
    how often the caller applies that item.

    Raises:
        ConfigError: ``nodes`` is not a list, a ``prob`` outside [0, 1], or an item that
            :func:`build` refuses; messages name the item as ``path[i]``.
    """
    plain = to_plain(nodes)
    if plain is None:
        return []
    if not isinstance(plain, list | tuple):
        raise ConfigError(
            f"{path} must be a list of {{{NAME_KEY}: <{kind} key>, ...}} items; got "
            f"{type(plain).__name__}."
        )
    items = []
    for index, item in enumerate(plain):
        item_path = f"{path}[{index}]"
        probability = 1.0
        if isinstance(item, Mapping) and PROBABILITY_KEY in item:
            item = dict(item)
            raw = item.pop(PROBABILITY_KEY)
            try:
                probability = float(raw)
            except (TypeError, ValueError):
                probability = -1.0
            if not 0.0 <= probability <= 1.0:
                raise ConfigError(
                    f"{item_path}.{PROBABILITY_KEY}={raw!r} must be a number in [0, 1]."
                )
        key, _ = _split_node(item, item_path, kind)
        component = build(kind, item, path=item_path, context=context, registries=registries)
        items.append(BuiltItem(component=component, probability=probability, key=key))
    return items


def rename_legacy_type(
    node: Any, *, path: str, names: Mapping[str, str], removed_in: str
) -> Any:
    """Turn an old ``{type: <short name>}`` node into ``{name: <registry key>}``, with a warning.

    Configs written before components came from the registry chose a part with ``type:``; they
    keep working for one release. A node that has ``name`` already is returned unchanged.

    Args:
        node: the config node (a mapping; anything else is returned unchanged).
        path: its config path, for the message.
        names: old ``type`` values -> registry keys.
        removed_in: the release that drops the old form, for the message.

    Raises:
        ConfigError: an unknown ``type`` value (with the closest one).
    """
    plain = to_plain(node)
    if not isinstance(plain, Mapping) or "type" not in plain or NAME_KEY in plain:
        return plain
    converted = dict(plain)
    old = converted.pop("type")
    if old not in names:
        raise ConfigError(
            f"{path}.type={old!r} is not known.{_closest(str(old), list(names))} Write "
            f"{path}.{NAME_KEY}=<registry key> instead (one of {', '.join(names.values())})."
        )
    converted = {NAME_KEY: names[old], **converted}
    warnings.warn(
        f"{path}.type={old!r} is deprecated and stops working in {removed_in}; write "
        f"{path}.{NAME_KEY}={names[old]!r} instead.",
        FutureWarning,
        stacklevel=3,
    )
    return converted
