"""`import convai_core`, plugin listing and `convai --help` import no torch, lightning or hydra."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "pytorch_lightning", "lightning", "lightning_fabric", "hydra", "torchaudio")

PROBE = """
import sys
{body}
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def _heavy_after(body: str) -> tuple[str, str]:
    code = PROBE.format(body=body, heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    marker = [line for line in result.stdout.splitlines() if line.startswith("HEAVY:")]
    return marker[-1][len("HEAVY:") :], result.stdout


def test_import_convai_core_is_light() -> None:
    heavy, _ = _heavy_after(
        "import convai_core, convai_core.hookspecs, convai_core.registry, convai_core.plugins, "
        "convai_core.types, convai_core.archive, convai_core.pretrained, convai_core.errors, "
        "convai_core.fast_paths"
    )
    assert heavy == ""


def test_cli_help_models_and_plugins_are_light() -> None:
    heavy, out = _heavy_after(
        "from convai_core.cli import main\n"
        "assert main(['--help']) == 0\n"
        "assert main(['models']) == 0\n"
        "assert main(['models', '--json']) == 0\n"
        "assert main(['plugins', '--json']) == 0\n"
    )
    assert heavy == ""
    assert "core/mlp_classifier" in out and "commands:" in out


def test_every_command_has_help() -> None:
    from convai_core.registry import get_registries

    for entry in get_registries().commands:
        result = subprocess.run(
            [sys.executable, "-m", "convai_core.cli", entry.key, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (entry.key, result.stderr)
        assert "usage" in result.stdout.lower(), entry.key
