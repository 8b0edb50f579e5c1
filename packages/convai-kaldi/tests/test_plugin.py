"""convai-kaldi registers its datasets, module, command and configs, without importing torch."""

from __future__ import annotations

import subprocess
import sys

from convai_core.plugins import load_plugins


def test_plugin_registers_its_parts() -> None:
    loaded = load_plugins(reload=True)
    info = next(i for i in loaded.plugins if i.distribution == "convai-kaldi")
    assert info.status == "loaded" and info.module == "convai_kaldi.plugin"
    mine = {
        (kind, e.key)
        for kind, registry in loaded.registries.items()
        for e in registry
        if e.provenance.distribution == "convai-kaldi"
    }
    assert mine == {
        ("datasets", "kaldi/audio"),
        ("datasets", "kaldi/features"),
        ("modules", "kaldi/feature_input"),
        ("commands", "kaldi"),
    }


def test_kaldi_help_is_import_light() -> None:
    code = (
        "import sys\n"
        "from convai_core.cli import main\n"
        "try:\n"
        "    main(['kaldi', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules, 'convai kaldi --help imported torch'\n"
        "assert 'kaldiio' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "to-manifest" in done.stdout and "compute-feats" in done.stdout
