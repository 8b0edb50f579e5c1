"""Kaldi data directories: reading, validation, manifest round trips, refused pipes, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convai_kaldi.datadir import TABLE_FILES, read_data_dir, validate_data_dir
from convai_kaldi.errors import KaldiDataError
from convai_kaldi.manifest import from_manifest, read_manifest_rows, to_manifest


def _files(folder: Path) -> dict[str, str]:
    return {n: (folder / n).read_text() for n in TABLE_FILES if (folder / n).is_file()}


def test_valid_directories_validate_clean(plain_dir: Path, segmented_dir: Path) -> None:
    assert validate_data_dir(plain_dir) == []
    assert validate_data_dir(segmented_dir) == []
    data = read_data_dir(segmented_dir)
    assert len(data.utterances) == 20 and data.segments is not None
    assert set(data.spk2utt) == {"spk_a", "spk_b"}


@pytest.mark.parametrize("kind", ["plain", "segmented"])
def test_round_trip_dir_manifest_dir_is_identical(
    kind: str, plain_dir: Path, segmented_dir: Path, tmp_path: Path
) -> None:
    source = plain_dir if kind == "plain" else segmented_dir
    manifest = tmp_path / "m.jsonl"
    assert to_manifest(source, manifest) == 20
    rows = read_manifest_rows(manifest)
    if kind == "segmented":
        assert all("offset" in r and "reco_id" in r for r in rows)
        assert any(r["offset"] > 0 for r in rows)
    # durations of the manifest are the audio's (segments) or utt2dur's
    out = tmp_path / "again"
    from_manifest(manifest, out)
    assert _files(out) == _files(source)
    # and the manifest of the regenerated directory is the same manifest
    manifest2 = tmp_path / "m2.jsonl"
    to_manifest(out, manifest2)
    assert manifest2.read_text() == manifest.read_text()


def test_round_trip_keeps_relative_paths(plain_dir: Path, tmp_path: Path) -> None:
    """wav.scp paths relative to the recipe folder come back relative with --relative-to."""
    recipe = Path(
        str(read_data_dir(plain_dir).wav[next(iter(read_data_dir(plain_dir).wav))])
    ).parent
    wav = plain_dir / "wav.scp"
    lines = [
        f"{line.split()[0]} {Path(line.split()[1]).relative_to(recipe)}"
        for line in wav.read_text().splitlines()
    ]
    wav.write_text("\n".join(lines) + "\n")
    manifest = tmp_path / "m.jsonl"
    to_manifest(plain_dir, manifest, root=recipe)
    assert all(Path(r["audio_filepath"]).is_file() for r in read_manifest_rows(manifest))
    out = tmp_path / "again"
    from_manifest(manifest, out, relative_to=recipe)
    assert _files(out) == _files(plain_dir)


def test_manifest_without_kaldi_keys_gets_speaker_prefixed_ids(
    speech: list[dict[str, object]], tmp_path: Path
) -> None:
    manifest = tmp_path / "nemo.jsonl"
    rows = [{**row, "speaker": "alice" if i < 3 else "bob"} for i, row in enumerate(speech[:6])]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "dir"
    data = from_manifest(manifest, out)
    assert data.segments is None
    assert sorted(data.spk2utt) == ["alice", "bob"]
    assert all(utt.startswith(data.utt2spk[utt] + "-") for utt in data.utt2spk)
    assert validate_data_dir(out) == []


def test_validation_names_file_and_line(plain_dir: Path) -> None:
    text = (plain_dir / "text").read_text().splitlines()
    text[3], text[4] = text[4], text[3]  # unsorted
    (plain_dir / "text").write_text("\n".join(text) + "\n")
    utt2spk = (plain_dir / "utt2spk").read_text().splitlines()
    (plain_dir / "utt2spk").write_text("\n".join(utt2spk[:-1]) + "\n")  # one utterance lost
    first_wav = (plain_dir / "wav.scp").read_text().splitlines()[0].split()[1]
    Path(first_wav).rename(first_wav + ".gone")
    try:
        problems = validate_data_dir(plain_dir)
    finally:
        Path(first_wav + ".gone").rename(first_wav)
    joined = "\n".join(problems)
    assert f"{plain_dir / 'text'} line 5" in joined and "sort" in joined
    assert f"{plain_dir / 'wav.scp'} line 20" in joined  # the utterance utt2spk lost
    assert "spk2utt" in joined  # spk2utt still lists it
    assert f"{plain_dir / 'wav.scp'} line 1: audio file" in joined


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("segments", "u1 rec 0.5\n", "segments line 1: expected"),
        ("segments", "u1 rec 2.0 1.0\n", "0 <= start < end"),
        ("utt2spk", "u1 s1\nu1 s2\n", "utt2spk line 2: key 'u1' repeats line 1"),
        ("utt2dur", "u1 long\n", "utt2dur line 1: duration 'long' is not a number"),
        ("utt2spk", "u1\n", "utt2spk line 1: 'u1' has no value"),
    ],
)
def test_malformed_tables_are_errors_with_file_and_line(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    (tmp_path / "wav.scp").write_text("rec /nonexistent.wav\n")
    (tmp_path / name).write_text(content)
    with pytest.raises(KaldiDataError, match=expected.replace("(", r"\(")):
        read_data_dir(tmp_path)


def test_non_utf8_text_is_an_error_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "wav.scp").write_text("u1 /a.wav\nu2 /b.wav\n")
    (tmp_path / "text").write_bytes(b"u1 hello\nu2 caf\xe9\n")
    with pytest.raises(KaldiDataError, match=r"text line 2: not UTF-8"):
        read_data_dir(tmp_path)


def test_pipe_commands_are_refused_by_default_and_never_run(
    plain_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    wav = plain_dir / "wav.scp"
    lines = wav.read_text().splitlines()
    key, path = lines[0].split()
    lines[0] = f"{key} touch {marker}; cat {path} |"
    wav.write_text("\n".join(lines) + "\n")
    with pytest.raises(KaldiDataError, match=r"wav.scp line 1: .* shell command.*allow_pipes"):
        to_manifest(plain_dir, tmp_path / "m.jsonl")
    with pytest.raises(KaldiDataError, match="refused by default"):
        validate_data_dir(plain_dir)
    assert not marker.exists() and not (tmp_path / "m.jsonl").exists()
    # allowed explicitly: the command runs once and its audio is kept beside the manifest
    assert to_manifest(plain_dir, tmp_path / "m.jsonl", allow_pipes=True) == 20
    assert marker.exists()
    first = read_manifest_rows(tmp_path / "m.jsonl")[0]
    assert first["audio_filepath"].startswith(str(tmp_path / "m.jsonl.audio"))
    assert first["duration"] > 0.3


def test_failed_conversion_writes_nothing(
    plain_dir: Path, speech: list[dict[str, object]], tmp_path: Path
) -> None:
    out = tmp_path / "existing"
    shutil.copytree(plain_dir, out)
    before = _files(out)
    manifest = tmp_path / "bad.jsonl"
    rows = [json.dumps(r) for r in speech[:3]] + ['{"audio_filepath": "x.wav", "text": "hi"}']
    manifest.write_text("\n".join(rows) + "\n")
    with pytest.raises(KaldiDataError, match=r"bad.jsonl line 4: no 'duration'"):
        from_manifest(manifest, out)
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # to-manifest of a directory whose audio is missing leaves the old manifest in place
    target = tmp_path / "kept.jsonl"
    target.write_text("old\n")
    (out / "wav.scp").write_text((out / "wav.scp").read_text().replace(".wav", ".missing.wav"))
    with pytest.raises(KaldiDataError, match=r"wav.scp line 1: audio file"):
        to_manifest(out, target)
    assert target.read_text() == "old\n"


def test_cli_round_trip_and_validate(segmented_dir: Path, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "convai_core.cli", "kaldi", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    done = run("validate", str(segmented_dir))
    assert done.returncode == 0 and "valid" in done.stdout, done.stderr
    done = run("to-manifest", str(segmented_dir), str(tmp_path / "m.jsonl"))
    assert done.returncode == 0 and "wrote 20 utterances" in done.stdout, done.stderr
    done = run("from-manifest", str(tmp_path / "m.jsonl"), str(tmp_path / "d"))
    assert done.returncode == 0, done.stderr
    assert _files(tmp_path / "d") == _files(segmented_dir)
    (tmp_path / "d" / "spk2utt").unlink()
    done = run("validate", str(tmp_path / "d"))
    assert done.returncode == 1 and "spk2utt: missing" in done.stdout
    done = run("to-manifest", str(tmp_path / "nowhere"), str(tmp_path / "x.jsonl"))
    assert done.returncode == 1 and "not a directory" in done.stderr
