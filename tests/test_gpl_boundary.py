"""GPL-3 data tools (piper, espeak-ng) stay outside convai's libraries."""

from __future__ import annotations


def test_no_library_module_imports_the_gpl_voice() -> None:
    """piper and espeak-ng (GPL-3) are imported only by the piper worker, a separate program
    run in its own environment; no module of convai's libraries (core, ASR, TTS) imports them."""
    import ast
    from pathlib import Path

    import convai_asr
    import convai_core
    import convai_tts

    offenders = []
    for package in (convai_core, convai_asr, convai_tts):
        root = Path(package.__file__).parent
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(n.split(".")[0] in {"piper", "espeakng", "espeak"} for n in names):
                    offenders.append(path.relative_to(root.parent).as_posix())
    assert sorted(set(offenders)) == ["convai_core/datatools/piper_worker.py"]
    worker = Path(convai_core.__file__).parent / "datatools" / "piper_worker.py"
    text = worker.read_text(encoding="utf-8")
    assert "import convai" not in text and "from convai" not in text
