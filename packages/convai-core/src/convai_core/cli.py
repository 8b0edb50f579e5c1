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
from collections.abc import Sequence

from convai_core import __version__
from convai_core.errors import ConvaiError


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


def models_main(argv: Sequence[str]) -> int:
    """``convai models [--json]``: registered model keys and the pretrained catalog."""
    parser = argparse.ArgumentParser(
        prog="convai models", description="List registered models and the pretrained catalog."
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    from convai_core.registry import get_registries

    regs = get_registries()
    models = [entry.as_dict() for entry in regs.models]
    pretrained = [entry.as_dict() for entry in regs.pretrained]
    if args.json:
        print(json.dumps({"models": models, "pretrained": pretrained}, indent=2))
        return 0
    print("models:")
    for m in models:
        print(f"  {m['key']:<30} {m['description']}  [{m['distribution']} {m['version']}]")
    if not models:
        print("  (none)")
    print("pretrained:")
    for p in pretrained:
        print(
            f"  {p['key']:<30} {p['description']}  model={p.get('model', '')}  [{p['distribution']}]"
        )
    if not pretrained:
        print("  (none)")
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
