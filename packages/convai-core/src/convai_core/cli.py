"""The ``convai`` command line.

Subcommands come from the ``commands`` registry (``convai_register_commands``), so plugins add their
own. Listing commands, ``convai models`` and ``convai plugins`` import no torch: a command's
module is imported only when that command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from convai_core import __version__
from convai_core.errors import ConvaiError


def run_tool(
    prog: str, tools: Mapping[str, tuple[Callable[[Sequence[str]], int], str]], argv: Sequence[str]
) -> int:
    """Run ``prog <tool> args``: the tool named by ``argv[0]`` with the rest (``--help`` lists).

    For commands made of several tools (``convai lm build``, ``convai nlp data``...): ``tools``
    maps each tool name to ``(main(argv) -> exit code, one-line help)``.
    """
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {prog} <tool> [args]\n\ntools:")
        for name, (_, help_text) in tools.items():
            print(f"  {name:<22} {help_text}")
        return 0
    if argv[0] not in tools:
        print(f"{prog}: unknown tool {argv[0]!r}; tools: {', '.join(tools)}", file=sys.stderr)
        return 2
    return tools[argv[0]][0](argv[1:])


def _usage() -> str:
    from convai_core.registry import get_registries

    commands = get_registries().commands
    lines = [
        "usage: convai [--version] [--help] <command> [args]",
        "",
        "convai: train, fine-tune, pack and export conversational-AI models.",
        "",
        "commands:",
    ]
    for entry in commands:
        lines.append(f"  {entry.key:<14} {entry.description}")
    lines += ["", "Run `convai <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``convai <command> ...`` to the registered command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.filterwarnings("default", module="convai_core.plugins")
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        print(f"convai-core {__version__}")
        return 0
    from convai_core.registry import get_registries

    try:
        entry = get_registries().commands.get(argv[0])
    except ConvaiError:
        print(f"convai: unknown command {argv[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    command = entry.load()
    try:
        return int(command(argv[1:]) or 0)
    except ConvaiError as exc:
        print(f"convai {argv[0]}: error: {exc}", file=sys.stderr)
        return 2


def _model_configs() -> list[dict[str, Any]]:
    """Every trainable configuration: each ``model/**.yaml`` of the installed config folders.

    Reads the YAML files only (no torch): the option name, the model key in its ``name`` field,
    the first comment line as its description, and the folder that provides it.
    """
    import yaml

    from convai_core.train import _folder, list_model_configs

    rows = []
    for option, entry in list_model_configs().items():
        text = (_folder(entry) / "model" / f"{option}.yaml").read_text(encoding="utf-8")
        comments = [line[1:].strip() for line in text.splitlines() if line.startswith("#")]
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            data = {"name": f"<unreadable: {exc}>"}
        rows.append(
            {
                "config": option,
                "model": str(data.get("name", "")) if isinstance(data, dict) else "",
                "description": comments[0] if comments else "",
                "source": entry,
            }
        )
    return rows


def _count_parameters(option: str) -> int:
    """Build ``model=<option>`` (random weights, no data) and count its parameters."""
    from convai_core.registry import get_registries
    from convai_core.train import compose_config

    cfg = compose_config([f"model={option}"])
    model = get_registries().models.load(str(cfg.model.name))(cfg.model)
    return int(sum(p.numel() for p in model.parameters()))


def models_main(argv: Sequence[str]) -> int:
    """``convai models [--json] [--params]``: trainable configurations, model classes, catalog."""
    parser = argparse.ArgumentParser(
        prog="convai models",
        description="List every trainable configuration (the model=<config> options of "
        "`convai train`), the registered model classes, and the pretrained catalog. Reads "
        "config files only; --params builds each model to count its parameters (imports torch).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--params", action="store_true", help="build each configuration and count its parameters"
    )
    args = parser.parse_args(argv)
    from convai_core.registry import get_registries

    regs = get_registries()
    configs = _model_configs()
    if args.params:
        for row in configs:
            try:
                row["parameters"] = _count_parameters(row["config"])
            except ConvaiError as exc:  # a config that needs data paths still lists
                row["parameters"] = None
                row["error"] = str(exc).splitlines()[0]
    models = [entry.as_dict() for entry in regs.models]
    pretrained = [entry.as_dict() for entry in regs.pretrained]
    # model parts that come with pretrained weights (modules registered with pretrained_weights)
    encoders = [e.as_dict() for e in regs.modules if e.metadata.get("pretrained_weights")]
    if args.json:
        print(
            json.dumps(
                {
                    "configs": configs,
                    "models": models,
                    "pretrained": pretrained,
                    "pretrained_encoders": encoders,
                },
                indent=2,
            )
        )
        return 0
    print("trainable configurations (convai train model=<config>):")
    for c in configs:
        size = ""
        if args.params:
            size = f"{c['parameters'] / 1e6:8.2f}M " if c.get("parameters") else f"{'?':>9} "
        print(f"  {c['config']:<28} {size}{c['model']:<20} {c['description']}")
    if not configs:
        print("  (none)")
    print("model classes:")
    for m in models:
        print(f"  {m['key']:<28} {m['description']}  [{m['distribution']} {m['version']}]")
    if not models:
        print("  (none)")
    print(
        "pretrained encoders (model.<part>.name=<key>; weights from a local folder or the cache):"
    )
    for e in encoders:
        print(f"  {e['key']:<28} {e['description']}  weights={e['pretrained_weights']}")
    if not encoders:
        print("  (none)")
    print("pretrained:")
    for p in pretrained:
        print(
            f"  {p['key']:<28} {p['description']}  model={p.get('model', '')}  [{p['distribution']}]"
        )
    if not pretrained:
        print("  (none)")
    return 0


def list_main(argv: Sequence[str]) -> int:
    """``convai list <kind> [--json]``: one registry's entries, with who registered each."""
    from convai_core.registry import KINDS, get_registries

    parser = argparse.ArgumentParser(
        prog="convai list",
        description="List the entries of one registry (the components configs name by key), "
        "with the distribution and plugin that registered each. Imports no torch.",
    )
    parser.add_argument("kind", choices=KINDS, help="the registry kind")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    entries = [entry.as_dict() for entry in get_registries()[args.kind]]
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    for e in entries:
        print(f"{e['key']:<28} {e['description']}")
        print(
            f"{'':<28} {e['target']}  [{e['distribution']} {e['version']}, plugin {e['plugin']!r}]"
        )
    if not entries:
        print(f"(no {args.kind} registered)")
    return 0


def plugins_main(argv: Sequence[str]) -> int:
    """``convai plugins [--json]``: installed plugins, their hooks and their status."""
    parser = argparse.ArgumentParser(
        prog="convai plugins",
        description="List installed convai plugins (entry-point group 'convai'), the hooks each "
        "implements and whether it loaded. See convai_core.plugins for the environment switches.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    from convai_core.plugins import load_plugins

    infos = load_plugins().plugins
    if args.json:
        print(json.dumps([info.as_dict() for info in infos], indent=2))
        return 0
    for info in infos:
        print(
            f"{info.name:<12} {info.distribution} {info.version:<8} {info.status:<8} {info.module}"
        )
        if info.reason:
            print(f"{'':<12} reason: {info.reason}")
        if info.hooks:
            print(f"{'':<12} hooks: {', '.join(info.hooks)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
