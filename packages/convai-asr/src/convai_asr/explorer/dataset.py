"""The explorer's view of a manifest: one row per utterance and the dataset's statistics.

Rows and statistics are computed once per manifest version and cached as JSON in
``$CONVAI_CACHE/explorer/`` under a key made of the manifest's absolute path, size and
modification time, so opening the same manifest again reads one file instead of parsing and
counting every line. Whether each audio file exists is checked on every load (files come and go
without the manifest changing).

A row is a dict with these keys (the table shows them; JSON-friendly so the cache can hold them):

=============== ==============================================================================
index           position in the manifest's kept utterances (0-based): the row's identity
audio_filepath  absolute path of the audio file
duration        seconds (of the segment when offset is set)
offset          where the utterance starts in the file, in seconds
text            the transcript
speaker, lang   from the manifest, or None
line            the manifest line the utterance came from
words           number of words (whitespace-separated)
chars           number of characters after collapsing whitespace (spaces between words count)
char_rate       chars / duration (characters per second)
word_rate       words / duration (words per second)
=============== ==============================================================================
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convai_asr.data.manifest import ManifestEntry, read_manifest

__all__ = [
    "CACHE_VERSION",
    "Dataset",
    "DatasetStats",
    "cache_folder",
    "compute_stats",
    "file_fingerprint",
    "load_dataset",
    "read_cache",
    "read_word_list",
    "row_from_entry",
    "write_cache",
]

# Bump when the cached rows or statistics change shape: older cache files are then ignored.
CACHE_VERSION = 1
HISTOGRAM_BINS = 40
# Words seen at most this often are listed as rare (candidates for typos and out-of-vocabulary).
RARE_WORD_MAX_COUNT = 1


@dataclass
class DatasetStats:
    """Statistics of a manifest's kept utterances.

    Attributes:
        utterances: number of utterances.
        total_duration_s: sum of durations, seconds.
        min_duration_s: shortest utterance, seconds (0 when there is none).
        max_duration_s: longest utterance, seconds (0 when there is none).
        mean_duration_s: mean duration, seconds (0 when there is none).
        words: number of words in all transcripts.
        characters: number of characters in all transcripts (whitespace collapsed).
        histogram_counts: utterances per duration bin.
        histogram_edges: the bins' edges in seconds (one more than the counts).
        alphabet: occurrences of each character, most frequent first.
        vocabulary: occurrences of each word, most frequent first.
        speakers: utterances per speaker (empty when the manifest names no speaker).
        speaker_durations_s: seconds of speech per speaker.
        languages: utterances per ``lang`` value (empty when the manifest names none).
    """

    utterances: int
    total_duration_s: float
    min_duration_s: float
    max_duration_s: float
    mean_duration_s: float
    words: int
    characters: int
    histogram_counts: list[int]
    histogram_edges: list[float]
    alphabet: dict[str, int]
    vocabulary: dict[str, int]
    speakers: dict[str, int] = field(default_factory=dict)
    speaker_durations_s: dict[str, float] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)

    @property
    def total_hours(self) -> float:
        return self.total_duration_s / 3600

    def rare_words(self, max_count: int = RARE_WORD_MAX_COUNT) -> list[str]:
        """Words seen at most ``max_count`` times, alphabetically."""
        return sorted(w for w, n in self.vocabulary.items() if n <= max_count)


@dataclass
class Dataset:
    """A manifest as the explorer shows it.

    Attributes:
        manifest: the manifest path, as given.
        rows: one dict per kept utterance (see the module docstring for the keys).
        stats: the statistics of the rows.
        skipped_lines: malformed manifest lines that were skipped (bad JSON, missing keys,
            non-UTF-8 text...).
        skip_message: what the manifest reader said about them ("" when none was skipped).
        missing_audio: indices of the rows whose audio file does not exist.
        from_cache: whether rows and statistics came from the cache.
    """

    manifest: str
    rows: list[dict[str, Any]]
    stats: DatasetStats
    skipped_lines: int = 0
    skip_message: str = ""
    missing_audio: list[int] = field(default_factory=list)
    from_cache: bool = False

    @property
    def has_speakers(self) -> bool:
        return bool(self.stats.speakers)

    @property
    def has_offsets(self) -> bool:
        return any(row["offset"] for row in self.rows)

    @property
    def has_languages(self) -> bool:
        return bool(self.stats.languages)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def row_from_entry(index: int, entry: ManifestEntry) -> dict[str, Any]:
    """The table row of one manifest entry (see the module docstring for the keys)."""
    words = len(entry.text.split())
    chars = len(_collapse(entry.text))
    return {
        "index": index,
        "audio_filepath": entry.audio_filepath,
        "duration": entry.duration,
        "offset": entry.offset,
        "text": entry.text,
        "speaker": entry.speaker,
        "lang": entry.lang,
        "line": entry.line,
        "words": words,
        "chars": chars,
        "char_rate": chars / entry.duration,
        "word_rate": words / entry.duration,
    }


def _most_frequent_first(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def compute_stats(rows: list[dict[str, Any]], *, bins: int = HISTOGRAM_BINS) -> DatasetStats:
    """Statistics of ``rows`` (as made by :func:`row_from_entry`)."""
    durations = np.asarray([row["duration"] for row in rows], dtype=np.float64)
    alphabet: Counter[str] = Counter()
    vocabulary: Counter[str] = Counter()
    speakers: Counter[str] = Counter()
    speaker_seconds: dict[str, float] = {}
    languages: Counter[str] = Counter()
    for row in rows:
        words = row["text"].split()
        vocabulary.update(words)
        alphabet.update(" ".join(words))
        if row["speaker"] is not None:
            speakers[row["speaker"]] += 1
            speaker_seconds[row["speaker"]] = speaker_seconds.get(row["speaker"], 0.0) + float(
                row["duration"]
            )
        if row["lang"] is not None:
            languages[row["lang"]] += 1
    if len(rows):
        counts, edges = np.histogram(durations, bins=bins)
    else:
        counts, edges = np.zeros(0, dtype=np.int64), np.zeros(0)
    total = math.fsum(durations.tolist())
    return DatasetStats(
        utterances=len(rows),
        total_duration_s=total,
        min_duration_s=float(durations.min()) if len(rows) else 0.0,
        max_duration_s=float(durations.max()) if len(rows) else 0.0,
        mean_duration_s=total / len(rows) if len(rows) else 0.0,
        words=sum(row["words"] for row in rows),
        characters=sum(row["chars"] for row in rows),
        histogram_counts=[int(c) for c in counts],
        histogram_edges=[float(e) for e in edges],
        alphabet=_most_frequent_first(alphabet),
        vocabulary=_most_frequent_first(vocabulary),
        speakers=_most_frequent_first(speakers),
        speaker_durations_s=speaker_seconds,
        languages=_most_frequent_first(languages),
    )


# ---------------------------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------------------------


def cache_folder() -> Path:
    """``$CONVAI_CACHE/explorer`` (default ``~/.cache/convai/explorer``)."""
    from convai_core.pretrained import cache_dir

    return cache_dir() / "explorer"


def file_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What identifies one version of a file: absolute path, size and modification time (ns)."""
    resolved = Path(path).expanduser().resolve()
    info = resolved.stat()
    return {"path": str(resolved), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _cache_path(key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()
    return cache_folder() / f"{key['kind']}-{digest[:24]}.json"


def read_cache(key: dict[str, Any]) -> dict[str, Any] | None:
    """The payload cached under ``key``, or None (absent, unreadable or of another key)."""
    path = _cache_path(key)
    try:
        with path.open(encoding="utf-8") as handle:
            stored = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    payload = stored.get("payload")
    return payload if isinstance(payload, dict) else None


def write_cache(key: dict[str, Any], payload: dict[str, Any]) -> None:
    """Store ``payload`` under ``key`` atomically (temporary file, then rename).

    A cache that cannot be written (read-only home, full disk) costs only speed: it is reported
    with a warning and the explorer goes on.
    """
    path = _cache_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        warnings.warn(
            f"cannot write the explorer cache in {str(path.parent)!r} ({exc}); set CONVAI_CACHE "
            "to a writable folder to open this manifest faster next time",
            UserWarning,
            stacklevel=2,
        )
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            # json.dumps runs the C encoder; json.dump to a file streams through the Python one
            handle.write(json.dumps({"key": key, "payload": payload}, ensure_ascii=False))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


def _read_rows(manifest: str) -> tuple[list[dict[str, Any]], int, str]:
    """Rows of the manifest, skipping malformed lines: (rows, skipped count, reader's message)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = read_manifest(manifest, skip_malformed=True)
    message = "; ".join(str(w.message) for w in caught if "malformed" in str(w.message))
    rows = [row_from_entry(i, entry) for i, entry in enumerate(result.entries)]
    return rows, result.dropped.get("malformed", 0), message


def _missing_audio(rows: list[dict[str, Any]]) -> list[int]:
    exists: dict[str, bool] = {}
    missing = []
    for row in rows:
        path = row["audio_filepath"]
        if path not in exists:
            exists[path] = os.path.isfile(path)
        if not exists[path]:
            missing.append(row["index"])
    return missing


def load_dataset(manifest: str | os.PathLike[str], *, use_cache: bool = True) -> Dataset:
    """Read a manifest's rows and statistics (from the cache when this version is there).

    Malformed lines are skipped and counted (the page shows how many and the reader's message
    naming their line numbers); audio files that do not exist are listed in
    :attr:`Dataset.missing_audio`.

    Args:
        manifest: a JSON-lines manifest (see :mod:`convai_asr.data.manifest`).
        use_cache: read and write ``$CONVAI_CACHE/explorer/``; False computes everything and
            leaves the cache alone.

    Raises:
        ManifestError: the manifest does not exist or cannot be read.
    """
    manifest = os.fspath(manifest)
    if not Path(manifest).expanduser().is_file():
        from convai_asr.errors import ManifestError

        raise ManifestError(f"manifest {manifest!r} does not exist or is not a file")
    key = {"kind": "dataset", "version": CACHE_VERSION, **file_fingerprint(manifest)}
    payload = read_cache(key) if use_cache else None
    if payload is not None:
        rows = payload["rows"]
        stats = DatasetStats(**payload["stats"])
        skipped, message = int(payload["skipped_lines"]), str(payload["skip_message"])
    else:
        rows, skipped, message = _read_rows(manifest)
        stats = compute_stats(rows)
        if use_cache:
            write_cache(
                key,
                {
                    "rows": rows,
                    "stats": asdict(stats),
                    "skipped_lines": skipped,
                    "skip_message": message,
                },
            )
    return Dataset(
        manifest=manifest,
        rows=rows,
        stats=stats,
        skipped_lines=skipped,
        skip_message=message,
        missing_audio=_missing_audio(rows),
        from_cache=payload is not None,
    )


def read_word_list(path: str | os.PathLike[str]) -> frozenset[str]:
    """The words of a vocabulary file: the first field of each non-blank line (so a plain word
    list, a ``word count`` file such as ``convai lm build``'s ``.vocab.txt`` and a lexicon all
    work).

    Raises:
        ManifestError: the file is missing or a line is not UTF-8 (named by line).
    """
    from convai_asr.errors import ManifestError

    words: set[str] = set()
    try:
        with Path(path).expanduser().open("rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                try:
                    fields = raw.decode("utf-8").split()
                except UnicodeDecodeError as exc:
                    raise ManifestError(
                        f"{path}:{line_no}: not UTF-8 text ({exc.reason}); re-save the "
                        "vocabulary as UTF-8"
                    ) from None
                if fields:
                    words.add(fields[0])
    except OSError as exc:
        raise ManifestError(f"cannot read the vocabulary file {str(path)!r}: {exc}") from None
    return frozenset(words)
