"""Bundle and the command line on a toy bundle (see conftest.py): text, word times, batching,
manifests, long files in windows, and errors with exit code 2. No torch anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convai_asr_runtime import BUNDLE_SCHEMA_VERSION, Bundle, BundleError
from convai_asr_runtime.__main__ import main

# +1 emits "a", -1 a space, 0 is blank (one frame per sample, 0.01 s each)
SPEECH = [1, 1, 0, 1, 0, 0, -1, 0, 1, 1, 0]


def test_text_and_word_times(make_bundle, write_wav) -> None:
    wav = write_wav("a.wav", SPEECH)
    (result,) = Bundle(make_bundle()).transcribe(wav)
    assert result["audio_filepath"] == str(wav)
    assert result["text"] == "aa a"  # a, (repeat), blank, a, ..., space, ..., a
    assert result["words"] == [
        {"word": "aa", "start": 0.0, "end": 0.04},
        {"word": "a", "start": 0.08, "end": 0.09},
    ]


def test_batches_keep_the_order_of_the_files(make_bundle, write_wav) -> None:
    files = [
        write_wav("long.wav", SPEECH * 3),
        write_wav("short.wav", [-1, 1]),
        write_wav("mid.wav", SPEECH),
    ]
    bundle = Bundle(make_bundle(), threads=1)
    one_by_one = [bundle.transcribe(f)[0] for f in files]
    batched = bundle.transcribe(files, batch_size=2)  # sorted by duration inside, padded
    assert batched == one_by_one
    # the repeats join: "aa a" + "aa a" reads a, a, space, a, a, a, ...
    assert [r["text"] for r in batched] == ["aa aaa aaa a", " a", "aa a"]


def test_manifests_are_expanded_relative_to_themselves(make_bundle, write_wav, tmp_path) -> None:
    wav = write_wav("a.wav", SPEECH)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "text": "?"}) + "\n\n")
    assert Bundle(make_bundle()).transcribe(manifest)[0]["audio_filepath"] == str(wav)
    manifest.write_text('{"audio": "a.wav"}\n')
    with pytest.raises(BundleError, match=r"m\.jsonl:1: not a manifest line with audio_filepath"):
        Bundle(make_bundle("b2")).transcribe(manifest)


def test_long_files_in_windows_equal_one_pass(make_bundle, write_wav) -> None:
    rng = np.random.default_rng(0)
    samples = rng.choice([-1.0, 0.0, 0.0, 1.0], size=230).tolist()  # 2.3 s
    wav = write_wav("long.wav", samples)
    bundle = Bundle(make_bundle())
    whole = bundle.transcribe(wav)[0]
    windowed = bundle.transcribe(wav, chunk_seconds=0.5, overlap_seconds=0.1, batch_size=3)[0]
    assert whole["text"] and windowed == whole
    with pytest.raises(ValueError, match="chunk_seconds must be larger than overlap_seconds"):
        bundle.transcribe(wav, chunk_seconds=0.5, overlap_seconds=0.5)


def test_the_bundles_chunk_settings_are_used(make_bundle, write_wav) -> None:
    wav = write_wav("long.wav", SPEECH * 30)  # 3.3 s
    short_windows = {"chunk_seconds": 1.0, "overlap_seconds": 0.2}
    bundle = Bundle(make_bundle(transcribe=short_windows))
    assert bundle.settings.chunk_seconds == 1.0
    assert bundle.transcribe(wav) == Bundle(make_bundle("whole")).transcribe(wav)


def test_a_bundle_of_the_former_convai_export_target_loads(make_bundle, write_wav) -> None:
    bundle = Bundle(make_bundle(schema_version=None, bundle_format=1))
    assert bundle.transcribe(write_wav("a.wav", SPEECH))[0]["text"] == "aa a"


def test_a_graph_that_is_not_an_asr_graph_is_refused(make_bundle) -> None:
    folder = make_bundle()
    (folder / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(BundleError, match=r"model\.onnx: onnxruntime cannot load the graph"):
        Bundle(folder)


def test_command_line(make_bundle, write_wav, tmp_path: Path, capsys) -> None:
    folder = make_bundle()
    wav = write_wav("a.wav", SPEECH)
    assert main(["transcribe", "--bundle", str(folder), str(wav)]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "aa a"
    out = tmp_path / "out.jsonl"
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"audio_filepath": str(wav)}) + "\n")
    argv = ["transcribe", "--bundle", str(folder), "--manifest", str(manifest), "--output", str(out)]
    assert main(argv) == 0
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == ["aa a"]
    assert main(["--version"]) == 0
    assert f"bundle schema {BUNDLE_SCHEMA_VERSION}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-bundle", "is not an ASR bundle: it has no bundle.json"),
        ("newer", "bundle schema 3 is newer than this runtime supports (2); upgrade"),
        ("missing-audio", "does not exist or is not a file"),
    ],
)
def test_command_line_errors_are_one_line_and_exit_2(
    case: str, message: str, make_bundle, write_wav, tmp_path: Path, capsys
) -> None:
    version = BUNDLE_SCHEMA_VERSION + 1 if case == "newer" else 1
    folder = tmp_path if case == "no-bundle" else make_bundle(schema_version=version)
    wav = tmp_path / "missing.wav" if case == "missing-audio" else write_wav("a.wav", SPEECH)
    assert main(["transcribe", "--bundle", str(folder), str(wav)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convai-asr-runtime: error: ") and message in err
    assert err.count("\n") == 1


def test_the_runtime_imports_no_torch_and_no_convai_core() -> None:
    code = (
        "import sys, convai_asr_runtime; light = 'numpy' not in sys.modules; "
        "import convai_asr_runtime.bundle, convai_asr_runtime.__main__; "
        "from convai_asr_runtime import Bundle; "
        "print(light, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'convai_core')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True []"


def test_the_sources_import_only_the_declared_dependencies() -> None:
    """Every import of the package is the standard library, numpy, onnxruntime, soundfile or the
    package itself: what pyproject.toml declares, so `pip install` of it alone is enough."""
    import ast

    import convai_asr_runtime

    allowed = {"numpy", "onnxruntime", "soundfile", "convai_asr_runtime"}
    found = set()
    for path in Path(convai_asr_runtime.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    outside = found - allowed - set(sys.stdlib_module_names) - {"__future__"}
    assert not outside, outside
