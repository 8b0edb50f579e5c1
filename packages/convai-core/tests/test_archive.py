"""Tests of the `.convai` model archive: round trip, atomic writes and every refusal rule.

Tampered archives are built with :mod:`tarfile` directly, so the reader is tested against what an
attacker can write, not against what ``write_archive`` would produce.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import pickle
import random
import subprocess
import sys
import tarfile
import tempfile
from datetime import datetime
from typing import Any

import pytest
import torch

import convai_core
from convai_core import archive
from convai_core.archive import (
    ARCHIVE_SUFFIX,
    ARTIFACTS_DIR,
    CONFIG,
    MANIFEST,
    WEIGHTS,
    ArchiveContents,
    read_archive,
    read_manifest,
    write_archive,
)
from convai_core.errors import ArchiveError

CONFIG_DICT: dict[str, Any] = {
    "name": "quartznet",
    "sample_rate": 16000,
    "encoder": {"channels": [64, 128], "dropout": 0.1, "activation": "relu"},
    "labels": ["a", "b", " "],
    "optim": None,
}


def _state_dict() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 3, generator=generator)
    return {
        "encoder.weight": weight,
        "decoder.weight": weight,  # tied: shares storage with encoder.weight
        "encoder.weight_t": weight.t(),  # non-contiguous view of the same storage
        "encoder.bias": torch.arange(3, dtype=torch.float64),
        "steps": torch.tensor(7, dtype=torch.int64),
        "mask": torch.tensor([True, False]),
        "half": torch.ones(2, 2, dtype=torch.bfloat16),
        "empty": torch.zeros(0, 5),
    }


@pytest.fixture
def artifact_sources(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    folder = tmp_path / "sources"
    folder.mkdir()
    tokenizer = folder / "tokenizer.model"
    tokenizer.write_bytes(bytes(range(256)) * 4)
    vocab = folder / "vocab.txt"
    vocab.write_text("a\nb\n<blank>\n", encoding="utf-8")
    return {"tokenizer.model": tokenizer, "vocab.txt": vocab}


@pytest.fixture
def good_archive(tmp_path: pathlib.Path, artifact_sources: dict[str, pathlib.Path]) -> pathlib.Path:
    return write_archive(
        tmp_path / f"model{ARCHIVE_SUFFIX}",
        config=CONFIG_DICT,
        state_dict=_state_dict(),
        model="asr/quartznet",
        distribution="convai-asr",
        artifacts=artifact_sources,
    )


# ------------------------------------------------------------------------------------------
# Helpers that build tampered archives with tarfile directly
# ------------------------------------------------------------------------------------------


def _members(path: pathlib.Path) -> dict[str, bytes]:
    """Every member of a good archive by name (in tar order)."""
    with tarfile.open(path, "r:") as tar:
        return {info.name: tar.extractfile(info).read() for info in tar.getmembers()}  # type: ignore[union-attr]


def _entry(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest).encode()


def _write_tar(path: pathlib.Path, members: list[tuple[tarfile.TarInfo | str, bytes]]) -> None:
    """Writes a tar file; a str member is a regular file, a TarInfo is written as given."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members:
            info = tarfile.TarInfo(member) if isinstance(member, str) else member
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)


def _rebuild(
    source: pathlib.Path,
    target: pathlib.Path,
    *,
    replace: dict[str, bytes] | None = None,
    extra: list[tuple[tarfile.TarInfo | str, bytes]] | None = None,
    list_extra: bool = True,
    update_manifest: bool = True,
) -> pathlib.Path:
    """Copies ``source`` with members replaced or added, optionally fixing the manifest."""
    members = _members(source)
    manifest = json.loads(members.pop(MANIFEST))
    members.update(replace or {})
    extra = extra or []
    if update_manifest:
        for name, data in members.items():
            manifest["files"][name] = _entry(data)
    if list_extra:
        for member, data in extra:
            name = member if isinstance(member, str) else member.name
            manifest["files"][name] = _entry(data)
    entries: list[tuple[tarfile.TarInfo | str, bytes]] = list(members.items())
    _write_tar(target, [*entries, *extra, (MANIFEST, _manifest_bytes(manifest))])
    return target


def _tree(root: pathlib.Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ------------------------------------------------------------------------------------------
# Round trip
# ------------------------------------------------------------------------------------------


def test_round_trip_config_weights_and_artifacts(
    tmp_path: pathlib.Path,
    good_archive: pathlib.Path,
    artifact_sources: dict[str, pathlib.Path],
) -> None:
    contents = read_archive(good_archive, extract_dir=tmp_path / "extract")

    assert isinstance(contents, ArchiveContents)
    assert contents.config == CONFIG_DICT
    expected = _state_dict()
    assert set(contents.state_dict) == set(expected)
    for key, tensor in expected.items():
        loaded = contents.state_dict[key]
        assert loaded.dtype == tensor.dtype, key
        assert loaded.device.type == "cpu", key
        assert torch.equal(loaded, tensor), key
    # Tied weights survive as equal, separately stored tensors.
    assert torch.equal(contents.state_dict["decoder.weight"], contents.state_dict["encoder.weight"])

    assert contents.artifact_dir == tmp_path / "extract"
    assert sorted(contents.artifact_names) == sorted(artifact_sources)
    for name, source in artifact_sources.items():
        assert contents.artifact_path(name).read_bytes() == source.read_bytes()
    assert _tree(tmp_path / "extract") == set(artifact_sources)  # no partial files left


def test_manifest_contents(good_archive: pathlib.Path) -> None:
    manifest = read_manifest(good_archive)

    assert manifest["format"] == "convai-archive"
    assert manifest["format_version"] == 1
    assert datetime.fromisoformat(manifest["created"]).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert manifest["model"] == "asr/quartznet"
    assert manifest["distribution"] == "convai-asr"
    assert manifest["versions"]["convai-core"] == convai_core.__version__
    assert manifest["versions"]["torch"] == torch.__version__
    members = _members(good_archive)
    assert set(members) == {
        MANIFEST,
        CONFIG,
        WEIGHTS,
        f"{ARTIFACTS_DIR}/tokenizer.model",
        f"{ARTIFACTS_DIR}/vocab.txt",
    }
    assert manifest["files"] == {
        name: _entry(data) for name, data in members.items() if name != MANIFEST
    }
    assert read_archive(good_archive, extract_dir=good_archive.parent / "x").manifest == manifest


def test_extra_manifest_keys_and_no_artifacts(tmp_path: pathlib.Path) -> None:
    path = write_archive(
        str(tmp_path / "plain.convai"),
        config={"a": 1},
        state_dict={"w": torch.ones(2)},
        model="nlp/bert",
        distribution="convai-nlp",
        extra_manifest={"description": "tiny", "metrics": {"wer": 0.1}},
    )

    assert path == tmp_path / "plain.convai"
    contents = read_archive(path, extract_dir=tmp_path / "never-created")
    assert contents.manifest["description"] == "tiny"
    assert contents.manifest["metrics"] == {"wer": 0.1}
    assert contents.artifact_dir is None
    assert not (tmp_path / "never-created").exists()
    with pytest.raises(ArchiveError, match=r"no artifact 'tokenizer\.model'"):
        contents.artifact_path("tokenizer.model")


def test_default_extract_dir_is_a_fresh_temp_folder(
    tmp_path: pathlib.Path, good_archive: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp_root = tmp_path / "temp-root"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))

    first = read_archive(good_archive)
    second = read_archive(good_archive)

    assert first.artifact_dir is not None and second.artifact_dir is not None
    assert first.artifact_dir != second.artifact_dir
    assert first.artifact_dir.parent == temp_root
    assert first.artifact_dir.name.startswith("convai-archive-")
    assert first.artifact_path("vocab.txt").read_text(encoding="utf-8").startswith("a\n")


def test_omegaconf_config_is_converted(tmp_path: pathlib.Path) -> None:
    from omegaconf import OmegaConf

    config = OmegaConf.create({"rate": 16000, "copy": "${rate}"})
    path = write_archive(
        tmp_path / "m.convai",
        config=config,
        state_dict={},
        model="asr/x",
        distribution="convai-asr",
    )
    assert read_archive(path).config == {"rate": 16000, "copy": 16000}


def test_import_does_not_load_torch() -> None:
    source_root = pathlib.Path(convai_core.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source_root), *sys.path])}
    code = "import sys, convai_core.archive; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------------
# Atomic writes and argument checks
# ------------------------------------------------------------------------------------------


def _leftover_temp_files(folder: pathlib.Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


def test_failed_write_leaves_existing_archive_and_no_temp_file(good_archive: pathlib.Path) -> None:
    before = good_archive.read_bytes()
    bad_state = {"a": torch.ones(2), "b": "not a tensor", "c": torch.zeros(2)}

    with pytest.raises(ArchiveError, match=r"state_dict\['b'\] is a str, not a torch.Tensor"):
        write_archive(
            good_archive,
            config={"x": 1},
            state_dict=bad_state,  # type: ignore[dict-item]
            model="asr/other",
            distribution="convai-asr",
        )

    assert good_archive.read_bytes() == before
    assert _leftover_temp_files(good_archive.parent) == []
    assert read_manifest(good_archive)["model"] == "asr/quartznet"


def test_failed_replace_leaves_existing_archive_and_no_temp_file(
    good_archive: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = good_archive.read_bytes()
    seen: list[pathlib.Path] = []

    def failing_replace(src: Any, dst: Any) -> None:
        seen.append(pathlib.Path(src))
        assert pathlib.Path(src).stat().st_size > 0  # the archive was fully written first
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archive.os, "replace", failing_replace)
    with pytest.raises(ArchiveError, match=r"could not write archive .*No space left"):
        write_archive(
            good_archive,
            config={"x": 1},
            state_dict={"w": torch.ones(2)},
            model="asr/other",
            distribution="convai-asr",
        )

    assert seen and seen[0].name.startswith(f"{good_archive.name}.tmp-")
    assert seen[0].parent == good_archive.parent
    assert good_archive.read_bytes() == before
    assert _leftover_temp_files(good_archive.parent) == []


def test_failed_write_creates_nothing_when_no_archive_existed(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ArchiveError):
        write_archive(
            tmp_path / "new.convai",
            config={},
            state_dict={"a": torch.ones(1), "b": 3},  # type: ignore[dict-item]
            model="asr/x",
            distribution="convai-asr",
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"artifacts": {"sub/tok.model": "SRC"}}, "artifact name 'sub/tok.model' is not allowed"),
        ({"artifacts": {"..": "SRC"}}, r"artifact name '\.\.' is not allowed"),
        ({"artifacts": {"a\\b": "SRC"}}, "is not allowed because it contains a slash"),
        ({"artifacts": {"missing.bin": "MISSING"}}, "does not exist or is not a regular file"),
        ({"extra_manifest": {"files": {}}}, r"reserved manifest key\(s\) \['files'\]"),
        ({"extra_manifest": {"when": datetime(2020, 1, 1)}}, "extra_manifest cannot be written"),
        ({"config": ["not", "a", "dict"]}, "config must be a dict, got list"),
        ({"config": {"obj": object()}}, "config cannot be written as plain YAML"),
        ({"model": ""}, "model must be a registry key"),
        ({"distribution": None}, "distribution must name the distribution"),
    ],
)
def test_write_refuses_bad_arguments(
    tmp_path: pathlib.Path, kwargs: dict[str, Any], message: str
) -> None:
    source = tmp_path / "tok.model"
    source.write_bytes(b"tok")
    for key, value in list(kwargs.items()):
        if key == "artifacts":
            kwargs[key] = {
                name: tmp_path / "missing" if src == "MISSING" else source
                for name, src in value.items()
            }
    arguments: dict[str, Any] = {
        "config": {"a": 1},
        "state_dict": {"w": torch.ones(1)},
        "model": "asr/x",
        "distribution": "convai-asr",
        **kwargs,
    }
    with pytest.raises(ArchiveError, match=message):
        write_archive(tmp_path / "m.convai", **arguments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok.model"]


def test_write_refuses_missing_folder(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist; create it first"):
        write_archive(
            tmp_path / "no" / "m.convai",
            config={},
            state_dict={},
            model="asr/x",
            distribution="convai-asr",
        )


# ------------------------------------------------------------------------------------------
# Corrupt and tampered archives
# ------------------------------------------------------------------------------------------


def test_flipped_byte_in_weights_fails_checksum(
    tmp_path: pathlib.Path, good_archive: pathlib.Path
) -> None:
    weights = bytearray(_members(good_archive)[WEIGHTS])
    weights[-1] ^= 0x01
    tampered = _rebuild(
        good_archive,
        tmp_path / "t.convai",
        replace={WEIGHTS: bytes(weights)},
        update_manifest=False,
    )

    match = f"checksum mismatch for member {WEIGHTS}: the archive was modified or corrupted"
    with pytest.raises(ArchiveError, match=match):
        read_manifest(tampered)
    with pytest.raises(ArchiveError, match=match):
        read_archive(tampered, extract_dir=tmp_path / "extract")
    assert not (tmp_path / "extract").exists()


def test_resized_config_fails_checksum(tmp_path: pathlib.Path, good_archive: pathlib.Path) -> None:
    config = _members(good_archive)[CONFIG] + b"extra: 1\n"
    tampered = _rebuild(
        good_archive, tmp_path / "t.convai", replace={CONFIG: config}, update_manifest=False
    )
    with pytest.raises(ArchiveError, match=f"checksum mismatch for member {CONFIG}"):
        read_archive(tampered)


def test_tampered_artifact_leaves_no_file_in_extract_dir(
    tmp_path: pathlib.Path, good_archive: pathlib.Path
) -> None:
    name = f"{ARTIFACTS_DIR}/vocab.txt"
    tampered = _rebuild(
        good_archive, tmp_path / "t.convai", replace={name: b"x\ny\nz!\n"}, update_manifest=False
    )
    extract_dir = tmp_path / "existing"
    extract_dir.mkdir()
    (extract_dir / "keep.txt").write_text("mine", encoding="utf-8")

    with pytest.raises(ArchiveError, match=f"checksum mismatch for member {name}"):
        read_archive(tampered, extract_dir=extract_dir)
    assert _tree(extract_dir) == {"keep.txt"}  # extracted and partial artifacts removed


@pytest.mark.parametrize("cut", ["half", "first-header"])
def test_truncated_archive_is_refused(
    tmp_path: pathlib.Path, good_archive: pathlib.Path, cut: str
) -> None:
    data = good_archive.read_bytes()
    truncated = tmp_path / "truncated.convai"
    truncated.write_bytes(data[: len(data) // 2] if cut == "half" else data[:100])

    for reader in (read_manifest, read_archive):
        with pytest.raises(
            ArchiveError, match=r"not a valid \.convai archive \(truncated or corrupt\)"
        ):
            reader(truncated)


def test_zero_byte_and_random_files_are_refused(tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "empty.convai"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.convai"
    noise.write_bytes(random.Random(0).randbytes(4096))

    for path in (empty, noise):
        for reader in (read_manifest, read_archive):
            with pytest.raises(ArchiveError, match=r"not a valid \.convai archive") as info:
                reader(path)
            assert str(path) in str(info.value)


def test_missing_archive_is_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist"):
        read_archive(tmp_path / "nope.convai")
    with pytest.raises(ArchiveError, match="is not a regular file"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    ("manifest_data", "message"),
    [
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (None, "no manifest.json member"),
    ],
)
def test_unreadable_manifest_is_refused(
    tmp_path: pathlib.Path, good_archive: pathlib.Path, manifest_data: bytes | None, message: str
) -> None:
    members = _members(good_archive)
    members.pop(MANIFEST)
    entries: list[tuple[tarfile.TarInfo | str, bytes]] = list(members.items())
    if manifest_data is not None:
        entries.append((MANIFEST, manifest_data))
    path = tmp_path / "bad.convai"
    _write_tar(path, entries)
    with pytest.raises(ArchiveError, match=message):
        read_manifest(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "nemo"}, "'format' is 'nemo', expected 'convai-archive'"),
        ({"format_version": 2}, "format_version 2 is not supported.*Upgrade convai-core"),
        ({"format_version": "1"}, "'format_version' is '1', expected an integer"),
        ({"files": []}, "'files' is missing or not an object"),
        ({"model": None}, "'model' is missing"),
    ],
)
def test_invalid_manifest_fields_are_refused(
    tmp_path: pathlib.Path, good_archive: pathlib.Path, change: dict[str, Any], message: str
) -> None:
    members = _members(good_archive)
    manifest = {**json.loads(members.pop(MANIFEST)), **change}
    path = tmp_path / "bad.convai"
    _write_tar(path, [*members.items(), (MANIFEST, _manifest_bytes(manifest))])
    with pytest.raises(ArchiveError, match=message):
        read_archive(path)


def test_member_listed_but_missing_is_refused(
    tmp_path: pathlib.Path, good_archive: pathlib.Path
) -> None:
    members = _members(good_archive)
    manifest = json.loads(members.pop(MANIFEST))
    members.pop(f"{ARTIFACTS_DIR}/vocab.txt")
    path = tmp_path / "bad.convai"
    _write_tar(path, [*members.items(), (MANIFEST, _manifest_bytes(manifest))])
    with pytest.raises(
        ArchiveError, match=r"'artifacts/vocab\.txt' is listed in manifest\.json but missing"
    ):
        read_manifest(path)


def test_unlisted_extra_member_is_refused(
    tmp_path: pathlib.Path, good_archive: pathlib.Path
) -> None:
    path = _rebuild(
        good_archive,
        tmp_path / "bad.convai",
        extra=[(f"{ARTIFACTS_DIR}/extra.bin", b"sneaky")],
        list_extra=False,
    )
    with pytest.raises(
        ArchiveError, match=r"'artifacts/extra\.bin' is not listed in manifest\.json"
    ):
        read_archive(path, extract_dir=tmp_path / "extract")
    assert not (tmp_path / "extract").exists()


def test_unknown_member_name_is_refused_even_when_listed(
    tmp_path: pathlib.Path, good_archive: pathlib.Path
) -> None:
    path = _rebuild(good_archive, tmp_path / "bad.convai", extra=[("notes.txt", b"hello")])
    with pytest.raises(
        ArchiveError, match=r"unsafe or unknown member 'notes\.txt'.*not one of the known"
    ):
        read_manifest(path)


def test_duplicated_member_is_refused(tmp_path: pathlib.Path, good_archive: pathlib.Path) -> None:
    config = _members(good_archive)[CONFIG]
    path = _rebuild(good_archive, tmp_path / "bad.convai", extra=[(CONFIG, config)])
    with pytest.raises(ArchiveError, match=r"member 'config\.yaml' appears more than once"):
        read_archive(path)


def test_unsafe_yaml_config_is_refused(tmp_path: pathlib.Path, good_archive: pathlib.Path) -> None:
    marker = tmp_path / "yaml-marker"
    config = f"x: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n"
    path = _rebuild(good_archive, tmp_path / "bad.convai", replace={CONFIG: config.encode()})
    with pytest.raises(ArchiveError, match=r"member config\.yaml is not plain YAML"):
        read_archive(path)
    assert not marker.exists()


def _unsafe_member(name: str, kind: str, outside: pathlib.Path) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    if kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, str(outside)
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, CONFIG
    elif kind == "fifo":
        info.type = tarfile.FIFOTYPE
    elif kind == "chardev":
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    elif kind == "dir":
        info.type = tarfile.DIRTYPE
    return info


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("../evil", "file", "contains a '..' component"),
        ("/abs/evil", "file", "is an absolute path"),
        ("artifacts/../../x", "file", "contains a '..' component"),
        ("artifacts\\evil", "file", "contains a backslash"),
        ("artifacts/sub/evil", "file", "not one of the known members"),
        ("artifacts/link", "symlink", "is a symbolic link"),
        ("artifacts/hard", "hardlink", "is a hard link"),
        ("artifacts/pipe", "fifo", "is a FIFO"),
        ("artifacts/null", "chardev", "is a device file"),
        ("artifacts/folder", "dir", "is a directory"),
    ],
)
def test_unsafe_members_are_refused_and_nothing_escapes(
    tmp_path: pathlib.Path, good_archive: pathlib.Path, name: str, kind: str, message: str
) -> None:
    # The archive sits deep enough that '../' and '../../' targets stay inside tmp_path.
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    extract_dir = work / "extract"
    outside = tmp_path / "outside-target"
    payload = b"" if kind != "file" else b"evil payload"
    member: tarfile.TarInfo | str = name if kind == "file" else _unsafe_member(name, kind, outside)
    path = _rebuild(good_archive, work / "bad.convai", extra=[(member, payload)])
    before = _tree(tmp_path)

    for reader in (read_manifest, lambda p: read_archive(p, extract_dir=extract_dir)):
        with pytest.raises(ArchiveError, match=message) as info:
            reader(path)
        assert str(path) in str(info.value)
        assert repr(name) in str(info.value)

    assert _tree(tmp_path) == before
    assert not extract_dir.exists()
    assert not outside.exists()
    would_be = pathlib.Path(name) if name.startswith("/") else extract_dir / name.replace("\\", "/")
    assert not os.path.lexists(os.path.normpath(would_be))
    assert not os.path.lexists(os.path.normpath(work / name))


class _TouchOnUnpickle:
    """Unpickling this object creates a file: the stand-in for arbitrary code execution."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize("container", ["pickle", "torch.save"])
def test_pickled_weights_are_never_unpickled(
    tmp_path: pathlib.Path, good_archive: pathlib.Path, container: str
) -> None:
    # The payload is live: unpickling it does create the file it names.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_TouchOnUnpickle(probe)))
    assert probe.exists()

    marker = tmp_path / "marker"
    evil_state = {"w": torch.ones(2), "evil": _TouchOnUnpickle(marker)}
    if container == "pickle":
        payload = pickle.dumps(evil_state)
    else:
        buffer = io.BytesIO()
        torch.save(evil_state, buffer)
        payload = buffer.getvalue()
    # The manifest checksum matches the tampered member: only the loader protects us.
    path = _rebuild(good_archive, tmp_path / "evil.convai", replace={WEIGHTS: payload})
    assert read_manifest(path)["files"][WEIGHTS] == _entry(payload)

    with pytest.raises(
        ArchiveError, match=f"member {WEIGHTS} is not a valid safetensors file"
    ) as info:
        read_archive(path, extract_dir=tmp_path / "extract")
    assert "never load pickled weights" in str(info.value)
    assert not marker.exists()
    assert not (tmp_path / "extract").exists()


def test_invalid_map_location_is_refused(good_archive: pathlib.Path) -> None:
    with pytest.raises(ArchiveError, match="map_location='not-a-device' is not a torch device"):
        read_archive(good_archive, map_location="not-a-device")
