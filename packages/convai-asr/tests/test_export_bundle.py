"""The ``asr-bundle`` export target (convai-asr) and convai-asr-runtime: a bundle of a trained
model transcribes real recordings with the same text and word timestamps as ``model.transcribe``
and ``convai transcribe``, here and (slow) from a fresh venv holding convai-asr-runtime alone."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from convai_asr_runtime import Bundle
from convai_core.errors import ExportError

RECORDINGS = Path("/usr/share/pocketsphinx/test/data")
RUNTIME_PACKAGE = Path(__file__).resolve().parents[2] / "convai-asr-runtime"


@pytest.fixture(scope="module")
def real_recordings() -> list[Path]:
    """The real recordings of pocketsphinx-testdata (installed by `make`): 5 read sentences
    and 5 spoken card names."""
    files = sorted((RECORDINGS / "librivox").glob("*.wav")) + sorted(
        (RECORDINGS / "cards").glob("*.wav")
    )
    assert files, "pocketsphinx-testdata is missing: run `make test` (it installs it)"
    return files


@pytest.fixture(scope="module")
def trained(tiny_fits):
    """The session's tiny trained QuartzNet (its archive and model): the runtime's text must
    equal the torch path's, which needs confident, non-tied outputs."""
    result = tiny_fits("quartznet")
    return result.archive, result.model


def test_convai_asr_registers_the_format(capsys) -> None:
    from convai_core.cli import main
    from convai_core.plugins import load_plugins

    loaded = load_plugins(reload=True)
    info = next(i for i in loaded.plugins if i.distribution == "convai-asr")
    assert "convai_register_export_targets" in info.hooks
    entry = next(e for e in loaded.registries["export_targets"] if e.key == "asr-bundle")
    assert entry.provenance.distribution == "convai-asr"
    assert entry.target == "convai_asr.export_bundle:asr_bundle_target"
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "asr-bundle" in capsys.readouterr().out


def test_bundle_transcribes_like_the_model(trained, real_recordings, tmp_path: Path) -> None:
    _, model = trained
    expected = model.transcribe(real_recordings)
    assert any(r["text"] for r in expected)  # the model emits words: the comparison means something
    for opset, inside in ((18, True), (16, False)):  # opset 16 has no STFT: numpy features
        out = tmp_path / f"bundle{opset}"
        report = model.export(out, format="asr-bundle", opset=opset, verify_audio=real_recordings)
        assert report.passed and report.format == "asr-bundle" and report.output == out
        assert len(report.checks) == 16  # the onnx target's: 2 kinds x 2 batches x 2 lengths x 2
        assert report.notes[-1] == (
            f"the runtime's text equals model.transcribe on {len(real_recordings)} real recordings"
        )
        assert all(path.is_file() for path in report.files)
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in report.files)
        meta = json.loads((out / "bundle.json").read_text())
        assert meta["schema_version"] == 1  # counts the last frame: readable by every runtime
        assert meta["includes_preprocessor"] is inside
        assert (out / "filterbank.npy").exists() is not inside
        got = Bundle(out).transcribe(real_recordings)
        assert [r["text"] for r in got] == [r["text"] for r in expected]
        assert [r["words"] for r in got] == [r["words"] for r in expected]


def test_bundle_long_audio_is_chunked_like_the_model(trained, real_recordings, tmp_path) -> None:
    _, model = trained
    joined = np.concatenate([sf.read(p, dtype="float32")[0] for p in real_recordings[:5]] * 2)
    sf.write(tmp_path / "long.wav", joined, 16000)
    assert len(joined) / 16000 > 40  # longer than one 30 s chunk
    model.export(tmp_path / "b", format="asr-bundle", verify_audio=real_recordings[:2])
    got = Bundle(tmp_path / "b").transcribe([tmp_path / "long.wav"])
    assert got[0]["text"] == model.transcribe([tmp_path / "long.wav"])[0]["text"]


def test_a_transcript_mismatch_writes_nothing(
    trained, real_recordings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, model = trained
    honest = model.transcribe

    def one_word_off(files, **kwargs):
        results = honest(files, **kwargs)
        results[1] = {**results[1], "text": results[1]["text"] + " extra"}
        return results

    monkeypatch.setattr(model, "transcribe", one_word_off)
    with pytest.raises(ExportError, match=r"transcribes 1 of 2 files differently") as caught:
        model.export(tmp_path / "b", format="asr-bundle", verify_audio=real_recordings[:2])
    assert str(real_recordings[1]) in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # no bundle, no staging folder


def test_the_target_refuses_what_a_bundle_cannot_hold(trained, tmp_path: Path) -> None:
    from convai_core.models.mlp_classifier import MLPClassifier

    _, model = trained
    with pytest.raises(ExportError, match="float32 only"):
        model.export(tmp_path / "b", format="asr-bundle", fp16=True)
    with pytest.raises(ExportError, match=r"opset 16 has no STFT"):
        model.export(tmp_path / "b", format="asr-bundle", opset=16, preprocessor=True)
    with pytest.raises(ExportError, match=r"takes no option\(s\) \['name'\]"):
        model.export(tmp_path / "b", format="asr-bundle", name="x")
    classifier = MLPClassifier(
        {"name": "core/mlp_classifier", "feature_dim": 4, "hidden_dim": 8, "num_classes": 2}
    )
    with pytest.raises(ExportError, match="holds CTC speech recognizers; MLPClassifier"):
        classifier.export(tmp_path / "b", format="asr-bundle")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_runtime_alone_in_a_fresh_venv(trained, real_recordings, tmp_path: Path) -> None:
    """The runtime's promise: `pip install convai-asr-runtime` brings no torch and no convai-core,
    and transcribes as `model.transcribe` and `convai transcribe` do."""
    from convai_core.cli import main

    archive, model = trained
    bundle = tmp_path / "bundle"
    model.export(bundle, format="asr-bundle", verify_audio=real_recordings)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python, bin_dir = env_dir / "bin" / "python", env_dir / "bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(RUNTIME_PACKAGE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    installed = {d["name"].lower().replace("_", "-") for d in json.loads(listed.stdout)}
    assert {"convai-asr-runtime", "numpy", "onnxruntime", "soundfile"} <= installed
    assert not {name for name in installed if name.startswith(("torch", "convai-core"))}
    assert [n for n in installed if n.startswith("convai")] == ["convai-asr-runtime"], installed
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u; print(u.find_spec('torch'), u.find_spec('convai_core'))",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert probe.stdout.split() == ["None", "None"], probe.stdout + probe.stderr
    out = tmp_path / "runtime.jsonl"
    run = subprocess.run(
        [
            str(bin_dir / "convai-asr-runtime"),
            "transcribe",
            "--bundle",
            str(bundle),
            *map(str, real_recordings),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["audio_filepath"] for r in got] == [str(p) for p in real_recordings]
    expected = model.transcribe(real_recordings)
    assert [r["text"] for r in got] == [r["text"] for r in expected]
    assert [r["words"] for r in got] == [r["words"] for r in expected]
    cli_out = tmp_path / "convai.jsonl"
    code = main(
        ["transcribe", "--model", str(archive), *map(str, real_recordings), "--output", str(cli_out)]
    )
    assert code == 0
    from_cli = [json.loads(line) for line in cli_out.read_text().splitlines()]
    assert [r["text"] for r in got] == [r["text"] for r in from_cli]
    # and `python -m convai_asr_runtime` is the same program
    one_file = ["--bundle", str(bundle), str(real_recordings[0])]
    module_run = subprocess.run(
        [str(python), "-m", "convai_asr_runtime", "transcribe", *one_file],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert module_run.returncode == 0, module_run.stderr[-3000:]
    assert json.loads(module_run.stdout)["text"] == expected[0]["text"]
