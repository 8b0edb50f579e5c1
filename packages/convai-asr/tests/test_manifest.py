"""Tests of convai_asr.data.manifest: validation with file:line messages, filters and writing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convai_asr.data.manifest import (
    ManifestEntry,
    read_manifest,
    read_manifests,
    write_manifest,
)
from convai_asr.errors import ManifestError


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _line(**record: object) -> str:
    return json.dumps(record, ensure_ascii=False)


def test_reads_entries_and_resolves_relative_paths(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    manifest = _write_lines(
        folder / "train.json",
        [
            _line(audio_filepath="wavs/a.wav", duration=1.5, text="hello"),
            "",
            "   ",
            _line(
                audio_filepath="/abs/b.flac",
                duration=2,
                text="",
                offset=0.5,
                speaker=7,
                lang="en",
                pred_text="ignored",
            ),
            _line(audio_filepath="../c.wav", duration=3.0, text="你好"),
        ],
    )
    result = read_manifest(manifest)
    a, b, c = result.entries
    assert a == ManifestEntry(str(folder / "wavs" / "a.wav"), 1.5, "hello", line=1)
    assert b.audio_filepath == "/abs/b.flac" and b.offset == 0.5 and b.duration == 2.0
    assert b.speaker == "7" and b.lang == "en" and b.text == "" and b.line == 4
    assert c.audio_filepath == str(tmp_path / "c.wav") and c.text == "你好" and c.line == 5
    assert result.dropped == {"too_short": 0, "too_long": 0, "malformed": 0}
    assert "3 utterances" in result.summary()


def test_relative_manifest_path_gives_absolute_audio_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_lines(tmp_path / "m.json", [_line(audio_filepath="x.wav", duration=1.0, text="a")])
    monkeypatch.chdir(tmp_path)
    (entry,) = read_manifest("m.json").entries
    assert Path(entry.audio_filepath).is_absolute()
    assert entry.audio_filepath == str(tmp_path / "x.wav")


def test_duration_filters_are_counted(tmp_path: Path) -> None:
    durations = [0.1, 0.4, 1.0, 5.0, 19.0, 25.0, 30.0]
    manifest = _write_lines(
        tmp_path / "m.json",
        [_line(audio_filepath=f"{i}.wav", duration=d, text="x") for i, d in enumerate(durations)],
    )
    result = read_manifest(manifest, min_duration=0.5, max_duration=20.0)
    assert [e.duration for e in result.entries] == [1.0, 5.0, 19.0]
    assert result.dropped == {"too_short": 2, "too_long": 2, "malformed": 0}
    summary = result.summary()
    assert "2 shorter than 0.5 s" in summary and "2 longer than 20.0 s" in summary


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"audio_filepath": "a.wav", "duration": 1.0, "text": "a"', "not valid JSON"),
        ("[1, 2, 3]", "expected a JSON object"),
        ('{"audio_filepath": "a.wav", "text": "a"}', "missing required key.*'duration'"),
        ('{"duration": 1.0, "text": "a"}', "missing required key.*'audio_filepath'"),
        ('{"audio_filepath": "a.wav", "duration": 1.0}', "missing required key.*'text'"),
        ('{"audio_filepath": 3, "duration": 1.0, "text": "a"}', "audio_filepath must be"),
        ('{"audio_filepath": "a.wav", "duration": "1.0", "text": "a"}', "duration must be"),
        ('{"audio_filepath": "a.wav", "duration": 0, "text": "a"}', "duration must be"),
        ('{"audio_filepath": "a.wav", "duration": -2, "text": "a"}', "duration must be"),
        ('{"audio_filepath": "a.wav", "duration": true, "text": "a"}', "duration must be"),
        ('{"audio_filepath": "a.wav", "duration": NaN, "text": "a"}', "duration must be"),
        ('{"audio_filepath": "a.wav", "duration": 1.0, "text": null}', "text must be"),
        ('{"audio_filepath": "a.wav", "duration": 1, "text": "a", "offset": -1}', "offset must"),
        ('{"audio_filepath": "a.wav", "duration": 1, "text": "a", "speaker": [1]}', "speaker"),
        ('{"audio_filepath": "a.wav", "duration": 1, "text": "a", "lang": 5}', "lang must"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    good = _line(audio_filepath="ok.wav", duration=1.0, text="ok")
    manifest = _write_lines(tmp_path / "bad.json", [good, "", line, good])
    with pytest.raises(ManifestError, match=rf"bad\.json:3: .*{problem}") as info:
        read_manifest(manifest)
    assert "skip_malformed" in str(info.value)  # says what to do


def test_non_utf8_line(tmp_path: Path) -> None:
    manifest = tmp_path / "latin.json"
    manifest.write_bytes(b'{"audio_filepath": "a.wav", "duration": 1, "text": "caf\xe9"}\n')
    with pytest.raises(ManifestError, match=r"latin\.json:1: not UTF-8"):
        read_manifest(manifest)


def test_skip_malformed_counts_and_warns_once(tmp_path: Path) -> None:
    good = _line(audio_filepath="ok.wav", duration=1.0, text="ok")
    manifest = _write_lines(tmp_path / "m.json", [good, "{oops", good, "42", good])
    with pytest.warns(UserWarning, match=r"skipped 2 malformed line\(s\).*lines 2, 4") as record:
        result = read_manifest(manifest, skip_malformed=True)
    assert len(record) == 1
    assert len(result.entries) == 3 and result.dropped["malformed"] == 2
    assert "2 malformed" in result.summary()


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"missing\.json.*does not exist"):
        read_manifest(tmp_path / "missing.json")


def test_read_manifests_merges_comma_separated(tmp_path: Path) -> None:
    one = _write_lines(tmp_path / "1.json", [_line(audio_filepath="a.wav", duration=1, text="a")])
    two = _write_lines(
        tmp_path / "2.json",
        [
            _line(audio_filepath="b.wav", duration=2, text="b"),
            _line(audio_filepath="c.wav", duration=99, text="c"),
        ],
    )
    merged = read_manifests(f"{one}, {two}", max_duration=10)
    assert [Path(e.audio_filepath).name for e in merged.entries] == ["a.wav", "b.wav"]
    assert merged.dropped["too_long"] == 1 and merged.paths == [str(one), str(two)]
    assert len(read_manifests([one, two]).entries) == 3
    with pytest.raises(ManifestError, match="no manifest path"):
        read_manifests(" , ")


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    entries = [
        ManifestEntry(str(tmp_path / "a.wav"), 1.25, "hello world"),
        ManifestEntry(str(tmp_path / "b.wav"), 2.0, "你好", offset=0.5, speaker="s1", lang="zh"),
    ]
    out = tmp_path / "out" / "m.json"
    write_manifest(out, entries)
    assert "你好" in out.read_text(encoding="utf-8")  # not \u-escaped
    assert [p.name for p in out.parent.iterdir()] == ["m.json"]  # no temp file left
    again = read_manifest(out).entries
    assert [(e.audio_filepath, e.duration, e.text, e.offset, e.speaker, e.lang) for e in again] == [
        (e.audio_filepath, e.duration, e.text, e.offset, e.speaker, e.lang) for e in entries
    ]
