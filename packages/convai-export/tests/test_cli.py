"""`convai export`: --help lists the formats; an export from a .convai archive prints its
verification; errors are one clear line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx

from convai_core.cli import main


def test_help_lists_the_formats(capsys) -> None:
    try:
        main(["export", "--help"])
    except SystemExit as stop:
        assert stop.code == 0
    out = capsys.readouterr().out
    for fmt in ("onnx", "torchscript", "checkpoint", "trt-onnx", "triton"):
        assert fmt in out
    assert "--fp16" in out and "--opset" in out


def test_export_an_archive_from_the_command_line(classifier, tmp_path: Path, capsys) -> None:
    archive = classifier.save_to(tmp_path / "m.convai")
    code = main(
        [
            "export",
            "--model",
            str(archive),
            "--format",
            "onnx",
            "--output",
            str(tmp_path / "m.onnx"),
            "--opset",
            "18",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "verified on 2 comparisons" in out and "NO" not in out.split()
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == 18
    code = main(
        [
            "export",
            "--model",
            str(archive),
            "--format",
            "onnx",
            "--output",
            str(tmp_path / "m.onnx"),
        ]
    )
    assert code == 2
    assert "already exists" in capsys.readouterr().err
    code = main(
        [
            "export",
            "--model",
            str(archive),
            "--format",
            "onnx",
            "--output",
            str(tmp_path / "other.onnx"),
            "--verify-audio",
            "a.wav",
        ]
    )
    assert code == 2  # a model option this model does not take
    assert "takes no option(s) ['verify_audio']" in capsys.readouterr().err
    assert not (tmp_path / "other.onnx").exists()


def test_convai_export_is_import_light() -> None:
    code = "import sys, convai_export, convai_export.plugin; print('torch' in sys.modules, 'onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
