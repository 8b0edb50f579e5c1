"""NeMo-style JSON-lines manifests: one utterance per line.

A line looks like::

    {"audio_filepath": "wavs/a.wav", "duration": 3.2, "text": "hello world", "offset": 0.0,
     "speaker": "spk1", "lang": "en"}

``audio_filepath``, ``duration`` (seconds, > 0) and ``text`` (may be empty) are required;
``offset``, ``speaker`` and ``lang`` are optional; other keys (``pred_text``...) are ignored.
Manifests of noise or impulse-response recordings may leave ``text`` out
(``require_text=False``). A
relative ``audio_filepath`` is resolved against the folder that holds the manifest, so a data set
folder can be moved as a whole. Every line is validated and a bad one is reported as
``<manifest>:<line>: <problem>; <fix>``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convai_asr.errors import ManifestError

__all__ = [
    "ManifestEntry",
    "ManifestReadResult",
    "read_manifest",
    "read_manifests",
    "write_manifest",
]

_DROP_KEYS = ("too_short", "too_long", "malformed")


@dataclass(frozen=True)
class ManifestEntry:
    """One utterance of a manifest.

    Attributes:
        audio_filepath: absolute path of the audio file (relative paths are resolved on reading).
        duration: length of the utterance in seconds (of the segment when ``offset`` is set).
        text: the transcript (may be empty, e.g. for silence or noise).
        offset: where the utterance starts in the file, in seconds.
        speaker: speaker label, if the manifest gives one (integers are kept as strings).
        lang: language code, if the manifest gives one.
        line: 1-based line of the manifest the entry came from (0 when built in code).
    """

    audio_filepath: str
    duration: float
    text: str
    offset: float = 0.0
    speaker: str | None = None
    lang: str | None = None
    line: int = 0

    def to_json(self) -> dict[str, Any]:
        """The manifest line as a dict (optional keys only when set)."""
        record: dict[str, Any] = {
            "audio_filepath": self.audio_filepath,
            "duration": self.duration,
            "text": self.text,
        }
        if self.offset:
            record["offset"] = self.offset
        if self.speaker is not None:
            record["speaker"] = self.speaker
        if self.lang is not None:
            record["lang"] = self.lang
        return record


@dataclass
class ManifestReadResult:
    """What :func:`read_manifest` kept and what it dropped.

    Attributes:
        entries: the kept entries, in file order.
        dropped: number of lines dropped per reason: ``"too_short"``, ``"too_long"``,
            ``"malformed"`` (the last only with ``skip_malformed=True``).
        paths: the manifest file(s) read.
        min_duration: the lower duration bound used, if any.
        max_duration: the upper duration bound used, if any.
    """

    entries: list[ManifestEntry]
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_DROP_KEYS, 0))
    paths: list[str] = field(default_factory=list)
    min_duration: float | None = None
    max_duration: float | None = None

    @property
    def total_duration(self) -> float:
        """Sum of the kept entries' durations, in seconds."""
        return math.fsum(e.duration for e in self.entries)

    def summary(self) -> str:
        """One line for logs: what was kept (count and hours) and what was dropped, and why."""
        where = ", ".join(self.paths) if self.paths else "<no manifest>"
        text = (
            f"{len(self.entries)} utterances ({self.total_duration / 3600:.2f} h) kept from {where}"
        )
        reasons = []
        if self.dropped.get("too_short"):
            reasons.append(f"{self.dropped['too_short']} shorter than {self.min_duration} s")
        if self.dropped.get("too_long"):
            reasons.append(f"{self.dropped['too_long']} longer than {self.max_duration} s")
        if self.dropped.get("malformed"):
            reasons.append(f"{self.dropped['malformed']} malformed")
        return text + ("; dropped " + ", ".join(reasons) if reasons else "; none dropped")


class _LineError(Exception):
    """Internal: what is wrong with one line and what to do."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_line(
    raw: str, base_dir: Path, line_no: int, *, require_text: bool = True
) -> ManifestEntry:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _LineError(
            f"not valid JSON ({exc.msg} at column {exc.colno}); write one JSON object per line"
        ) from None
    if not isinstance(record, dict):
        raise _LineError(
            f"expected a JSON object, got {type(record).__name__}; write one object per line"
        )
    required = (
        ("audio_filepath", "duration", "text") if require_text else ("audio_filepath", "duration")
    )
    missing = [k for k in required if k not in record]
    if missing:
        raise _LineError(
            f"missing required key(s) {', '.join(map(repr, missing))} (found "
            f"{sorted(record)}); every line needs {', '.join(required[:-1])} and {required[-1]}"
        )
    audio = record["audio_filepath"]
    if not isinstance(audio, str) or not audio.strip():
        raise _LineError(f"audio_filepath must be a non-empty string, got {audio!r}")
    duration = record["duration"]
    if not _is_number(duration) or not math.isfinite(duration) or duration <= 0:
        raise _LineError(
            f"duration must be a number of seconds > 0, got {duration!r}; measure it with "
            "convai_asr.audio.audio_info"
        )
    text = record.get("text", "")
    if not isinstance(text, str):
        raise _LineError(f"text must be a string (it may be empty), got {text!r}")
    offset = record.get("offset")
    if offset is None:
        offset = 0.0
    elif not _is_number(offset) or not math.isfinite(offset) or offset < 0:
        raise _LineError(f"offset must be a number of seconds >= 0, got {offset!r}")
    speaker = record.get("speaker")
    if speaker is not None:
        if not isinstance(speaker, (str, int)) or isinstance(speaker, bool):
            raise _LineError(f"speaker must be a string or an integer, got {speaker!r}")
        speaker = str(speaker)
    lang = record.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise _LineError(f"lang must be a string such as 'en', got {lang!r}")
    audio_path = Path(audio).expanduser()
    if not audio_path.is_absolute():
        audio_path = base_dir / audio_path
    return ManifestEntry(
        audio_filepath=os.path.normpath(audio_path),
        duration=float(duration),
        text=text,
        offset=float(offset),
        speaker=speaker,
        lang=lang,
        line=line_no,
    )


def read_manifest(
    path: str | os.PathLike[str],
    *,
    min_duration: float | None = None,
    max_duration: float | None = None,
    skip_malformed: bool = False,
    require_text: bool = True,
) -> ManifestReadResult:
    """Read and validate a JSON-lines manifest.

    Blank lines are ignored. Entries outside ``[min_duration, max_duration]`` are dropped and
    counted. A malformed line raises, or with ``skip_malformed=True`` is counted and reported in
    one warning that lists the line numbers.

    Args:
        path: the manifest file.
        min_duration: drop utterances shorter than this many seconds.
        max_duration: drop utterances longer than this many seconds.
        skip_malformed: skip (and count) malformed lines instead of raising.
        require_text: whether every line must have ``text``; ``False`` for manifests of
            noise or impulse-response recordings (a missing text reads as ``""``).

    Returns:
        The kept entries and the drop counts.

    Raises:
        ManifestError: the manifest is missing or unreadable, or a line is malformed and
            ``skip_malformed`` is False. The message reads ``<path>:<line>: <problem>; <fix>``.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ManifestError(
            f"manifest {str(path)!r} does not exist or is not a file; check the path given in "
            "the config (e.g. model.train_ds.manifest_filepath)"
        )
    base_dir = path.absolute().parent
    result = ManifestReadResult(
        entries=[], paths=[str(path)], min_duration=min_duration, max_duration=max_duration
    )
    bad_lines: list[int] = []
    first_problem = ""
    with path.open("rb") as handle:
        for line_no, raw_bytes in enumerate(handle, start=1):
            try:
                raw = raw_bytes.decode("utf-8")
                if not raw.strip():
                    continue
                entry = _parse_line(raw, base_dir, line_no, require_text=require_text)
            except (UnicodeDecodeError, _LineError) as exc:
                problem = (
                    f"not UTF-8 text ({exc.reason}); re-save the manifest as UTF-8"
                    if isinstance(exc, UnicodeDecodeError)
                    else str(exc)
                )
                if not skip_malformed:
                    raise ManifestError(
                        f"{path}:{line_no}: {problem} (or pass skip_malformed=True to skip such lines)"
                    ) from None
                bad_lines.append(line_no)
                first_problem = first_problem or f"line {line_no}: {problem}"
                continue
            if min_duration is not None and entry.duration < min_duration:
                result.dropped["too_short"] += 1
            elif max_duration is not None and entry.duration > max_duration:
                result.dropped["too_long"] += 1
            else:
                result.entries.append(entry)
    if bad_lines:
        result.dropped["malformed"] = len(bad_lines)
        shown = ", ".join(map(str, bad_lines[:20])) + (" ..." if len(bad_lines) > 20 else "")
        warnings.warn(
            f"skipped {len(bad_lines)} malformed line(s) of manifest {str(path)!r}: lines {shown} "
            f"(first problem, {first_problem}); fix them to use these utterances",
            UserWarning,
            stacklevel=2,
        )
    return result


def read_manifests(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    min_duration: float | None = None,
    max_duration: float | None = None,
    skip_malformed: bool = False,
    require_text: bool = True,
) -> ManifestReadResult:
    """Read several manifests and merge them, in order (see :func:`read_manifest`).

    Args:
        paths: a list of manifest files, or one string of comma-separated paths (the NeMo
            ``manifest_filepath: a.json,b.json`` convention).
        min_duration: drop utterances shorter than this many seconds.
        max_duration: drop utterances longer than this many seconds.
        skip_malformed: skip (and count) malformed lines instead of raising.
        require_text: whether every line must have ``text`` (see :func:`read_manifest`).

    Returns:
        All kept entries, with the drop counts summed over the manifests.
    """
    if isinstance(paths, (str, os.PathLike)):
        path_list: list[str | os.PathLike[str]] = [
            p.strip() for p in os.fspath(paths).split(",") if p.strip()
        ]
    else:
        path_list = list(paths)
    if not path_list:
        raise ManifestError("no manifest path given; set the manifest_filepath of the dataset")
    merged = ManifestReadResult(entries=[], min_duration=min_duration, max_duration=max_duration)
    for one in path_list:
        part = read_manifest(
            one,
            min_duration=min_duration,
            max_duration=max_duration,
            skip_malformed=skip_malformed,
            require_text=require_text,
        )
        merged.entries.extend(part.entries)
        merged.paths.extend(part.paths)
        for key, count in part.dropped.items():
            merged.dropped[key] = merged.dropped.get(key, 0) + count
    return merged


def write_manifest(
    path: str | os.PathLike[str],
    entries: Iterable[ManifestEntry | Mapping[str, Any]],
) -> None:
    """Write entries as a JSON-lines manifest, atomically (temporary file, then rename).

    ``ManifestEntry`` objects are written with :meth:`ManifestEntry.to_json`; mappings are written
    as they are. Non-ASCII text is written as UTF-8, not escaped.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for entry in entries:
                record = entry.to_json() if isinstance(entry, ManifestEntry) else dict(entry)
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
