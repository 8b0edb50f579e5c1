"""convai-tts registers its parts through the `convai` entry-point group, import-light."""

from __future__ import annotations

import subprocess
import sys

from convai_core.plugins import load_plugins


def test_plugin_registers_the_model_frontend_and_command() -> None:
    loaded = load_plugins(reload=True)
    info = next(i for i in loaded.plugins if i.distribution == "convai-tts")
    assert info.status == "loaded" and info.module == "convai_tts.plugin"
    assert "tts/fastpitch" in loaded.registries["models"]
    assert "tts/english_phonemes" in loaded.registries["tokenizers"]
    assert "tts" in loaded.registries["commands"]


def test_listing_and_help_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from convai_core.cli import main\n"
        "main(['models'])\n"
        "main(['tts', 'data', '--help'])\n"
        "try:\n"
        "    main(['tts', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "tts/fastpitch" in result.stdout and "usage: convai tts" in result.stdout
    assert "teacher" in result.stdout and "--vocoder" in result.stdout
