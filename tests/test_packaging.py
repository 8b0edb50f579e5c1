"""Each package builds a publishable wheel (poetry-core backend) with honest metadata."""

from __future__ import annotations

import email
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (REPO / "packages").iterdir() if (p / "pyproject.toml").is_file())
AUDIO_LIBRARIES = {"torchaudio", "soundfile", "librosa", "kaldiio", "pydub", "sox", "audioread"}
#: Distributions that are not convai plugins: no convai-core dependency, no `convai` entry point.
STANDALONE = {"convai-asr-runtime"}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    built = {}
    for package in PACKAGES:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "build",
                "--wheel",
                "--no-isolation",
                "--outdir",
                str(out),
                str(package),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        dist = package.name.replace("-", "_")
        built[package.name] = next(out.glob(f"{dist}-*.whl"))
    return built


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(name))


def _requires(wheel: Path) -> list[str]:
    return _metadata(wheel).get_all("Requires-Dist") or []


def test_every_package_has_the_layout() -> None:
    assert {p.name for p in PACKAGES} == {
        "convai-core",
        "convai-asr",
        "convai-asr-runtime",
        "convai-nlp",
        "convai-tts",
        "convai-export",
        "convai-kaldi",
    }
    for package in PACKAGES:
        module = package.name.replace("-", "_")
        for rel in (
            "README.md",
            "CHANGELOG.md",
            "tests",
            f"src/{module}/__init__.py",
            f"src/{module}/py.typed",
        ):
            assert (package / rel).exists(), f"{package.name}: {rel} is missing"


def test_wheels_have_no_path_requirements_and_ranged_siblings(wheels: dict[str, Path]) -> None:
    for name, wheel in wheels.items():
        requires = _requires(wheel)
        assert not [r for r in requires if "file:" in r or "@" in r], (name, requires)
        if name in STANDALONE:
            continue
        if name != "convai-core":
            sibling = [r for r in requires if r.startswith("convai-core")]
            assert sibling and "<0.2" in sibling[0] and ">=0.1.0" in sibling[0], (name, sibling)
        with zipfile.ZipFile(wheel) as zf:
            entry_points = next(n for n in zf.namelist() if n.endswith("entry_points.txt"))
            assert "[convai]" in zf.read(entry_points).decode()


def _names(requires: list[str]) -> set[str]:
    """Distribution names of ``Requires-Dist`` lines (``numpy (>=1.24)`` -> ``numpy``)."""
    names = set()
    for requirement in requires:
        match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
        assert match, requirement
        names.add(match.group(0).lower())
    return names


def test_the_asr_runtime_wheel_needs_only_its_three_libraries(wheels: dict[str, Path]) -> None:
    runtime = wheels["convai-asr-runtime"]
    assert _names(_requires(runtime)) == {"numpy", "onnxruntime", "soundfile"}
    meta = _metadata(runtime)
    assert not meta.get_all("Provides-Extra")
    with zipfile.ZipFile(runtime) as zf:
        names = zf.namelist()
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "convai_asr_runtime/py.typed" in names
    assert "[console_scripts]" in entry_points and "convai-asr-runtime=" in entry_points.replace(
        " ", ""
    )
    assert "[convai]" not in entry_points  # not a plugin: it cannot import convai-core
    # convai-asr depends on it by a range; convai-export no longer ships an ASR runtime
    asr = [r for r in _requires(wheels["convai-asr"]) if r.startswith("convai-asr-runtime")]
    assert asr and ">=0.1.0" in asr[0] and "<0.2" in asr[0], asr
    export = _metadata(wheels["convai-export"])
    assert not export.get_all("Provides-Extra")
    assert "soundfile" not in _names(_requires(wheels["convai-export"]))


def test_core_wheel_ships_its_configs_and_caps_torch(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["convai-core"]) as zf:
        names = zf.namelist()
    assert "convai_core/conf/train.yaml" in names
    assert "convai_core/conf/model/core/mlp_classifier.yaml" in names
    assert "convai_core/py.typed" in names
    torch_req = [r for r in _requires(wheels["convai-core"]) if r.startswith("torch")]
    assert torch_req and "<2.15" in torch_req[0]


def test_nlp_wheel_ships_its_task_configs(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["convai-nlp"]) as zf:
        names = set(zf.namelist())
    for task in (
        "text_classification",
        "token_classification",
        "punctuation_capitalization",
        "intent_slot",
    ):
        assert f"convai_nlp/conf/model/nlp/{task}.yaml" in names, task
    assert "convai_nlp/py.typed" in names


def test_core_and_nlp_pull_no_audio_dependency(wheels: dict[str, Path]) -> None:
    for name in ("convai-core", "convai-nlp"):
        names = {
            r.split(";")[0].split("<")[0].split(">")[0].split("=")[0].split("[")[0].strip()
            for r in _requires(wheels[name])
        }
        assert not names & AUDIO_LIBRARIES, (name, names)
    # and nothing those requirements pull in transitively is an audio library
    from importlib.metadata import requires as dist_requires

    seen: set[str] = set()
    todo = ["convai-core", "convai-nlp"]
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            reqs = dist_requires(dist) or []
        except Exception:
            continue
        for req in reqs:
            if "extra ==" in req:
                continue
            todo.append(
                req.split(";")[0]
                .split("<")[0]
                .split(">")[0]
                .split("=")[0]
                .split("[")[0]
                .split("!")[0]
                .split("~")[0]
                .strip()
            )
    assert not {d.lower() for d in seen} & AUDIO_LIBRARIES, sorted(seen)
