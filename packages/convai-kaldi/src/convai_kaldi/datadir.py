"""Kaldi data directories: read, validate and write ``wav.scp``, ``segments``, ``text``,
``utt2spk``/``spk2utt``, ``utt2dur``, ``feats.scp`` and ``cmvn.scp``.

A Kaldi data directory is a set of tables, one ``<key> <value>`` pair per line, keys sorted in
byte order (``LC_ALL=C sort``) and unique:

=============  ===================  =========================================================
file           key                  value
=============  ===================  =========================================================
``wav.scp``    recording (or utt)   an audio file, or a shell command ending in ``|``
``segments``   utterance            ``<recording> <start s> <end s>``
``text``       utterance            the transcript (may be empty)
``utt2spk``    utterance            speaker
``spk2utt``    speaker              the speaker's utterances, space separated
``utt2dur``    utterance            duration in seconds
``feats.scp``  utterance            ``<ark path>:<byte offset>`` of a feature matrix
``cmvn.scp``   speaker              ``<ark path>:<byte offset>`` of CMVN statistics
=============  ===================  =========================================================

Without ``segments`` every recording is one utterance (``wav.scp`` keys are utterance ids).
Pipe commands in ``wav.scp`` run a shell command per utterance, so reading them is refused
unless the caller passes ``allow_pipes=True``. :func:`validate_data_dir` checks what Kaldi's
``utils/validate_data_dir.sh`` checks and returns every problem, each naming its file and line.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from convai_kaldi.errors import KaldiDataError

__all__ = [
    "TABLE_FILES",
    "KaldiDataDir",
    "Segment",
    "format_seconds",
    "is_pipe",
    "kaldi_sorted",
    "read_data_dir",
    "read_table",
    "validate_data_dir",
    "write_data_dir",
]

#: The files this module reads and writes, in the order they are written.
TABLE_FILES = ("wav.scp", "segments", "text", "utt2spk", "spk2utt", "utt2dur")


@dataclass(frozen=True)
class Segment:
    """One line of ``segments``: an utterance is ``recording[start:end]`` (seconds)."""

    recording: str
    start: float
    end: float


@dataclass
class KaldiDataDir:
    """The tables of a Kaldi data directory (``None`` for a file that is absent).

    ``wav`` maps recording ids (utterance ids without ``segments``) to a path or a pipe
    command; ``lines`` remembers, for each file and key, the line it came from (messages).
    """

    path: Path | None = None
    wav: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] | None = None
    utt2spk: dict[str, str] = field(default_factory=dict)
    segments: dict[str, Segment] | None = None
    utt2dur: dict[str, float] | None = None
    feats: dict[str, str] | None = None
    cmvn: dict[str, str] | None = None
    lines: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def utterances(self) -> list[str]:
        """Utterance ids in Kaldi's (byte) order: ``segments`` keys, else ``wav.scp`` keys,
        else ``feats.scp`` keys, else ``utt2spk`` keys."""
        for table in (self.segments, self.wav or None, self.feats, self.utt2spk):
            if table:
                return kaldi_sorted(table)
        return []

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        """Speakers (sorted) to their utterances (sorted), derived from ``utt2spk``."""
        speakers: dict[str, list[str]] = {}
        for utt in kaldi_sorted(self.utt2spk):
            speakers.setdefault(self.utt2spk[utt], []).append(utt)
        return {spk: speakers[spk] for spk in kaldi_sorted(speakers)}

    def where(self, name: str, key: str) -> str:
        """``"<dir>/<name> line N"`` for messages (or just the file when the line is unknown)."""
        base = str(self.path / name) if self.path is not None else name
        line = self.lines.get(name, {}).get(key)
        return f"{base} line {line}" if line else base

    def audio_of(self, utt: str) -> tuple[str, float, float | None]:
        """``(wav.scp value, offset s, duration s or None)`` of an utterance."""
        if self.segments is not None:
            seg = self.segments[utt]
            return self.wav[seg.recording], seg.start, seg.end - seg.start
        duration = self.utt2dur.get(utt) if self.utt2dur else None
        return self.wav[utt], 0.0, duration


def kaldi_sorted(keys: Iterable[str]) -> list[str]:
    """Keys in the order ``LC_ALL=C sort`` gives (byte order of their UTF-8 encoding)."""
    return sorted(keys, key=lambda key: key.encode("utf-8"))


def is_pipe(value: str) -> bool:
    """Whether a ``wav.scp``/``feats.scp`` value is a shell command (``... |``)."""
    return value.rstrip().endswith("|")


def format_seconds(value: float) -> str:
    """Seconds as written in ``segments``/``utt2dur``: at most 6 decimals, no trailing zeros."""
    text = f"{round(value, 6):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def read_table(
    path: str | os.PathLike[str], *, allow_empty_value: bool = False
) -> tuple[dict[str, str], dict[str, int]]:
    """Read a ``<key> <value>`` table.

    Args:
        path: the file.
        allow_empty_value: accept a line holding only a key (``text`` may have empty transcripts).

    Returns:
        ``(values, line numbers)`` keyed by the first field; the value is the rest of the line
        with the separating whitespace removed.

    Raises:
        KaldiDataError: a file that is not UTF-8, a line without a value, or a repeated key, with
            the file and line.
    """
    path = Path(path)
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise KaldiDataError(
            f"{path} line {line}: not UTF-8 ({exc.reason} at byte {exc.start}); convert the file "
            "to UTF-8 (iconv -f <encoding> -t utf-8)"
        ) from exc
    for number, line_text in enumerate(raw.splitlines(), start=1):
        if not line_text.strip():
            raise KaldiDataError(f"{path} line {number}: empty line; remove it")
        parts = line_text.strip().split(maxsplit=1)
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if not value and not allow_empty_value:
            raise KaldiDataError(
                f"{path} line {number}: {key!r} has no value; each line is '<key> <value>'"
            )
        if key in values:
            raise KaldiDataError(
                f"{path} line {number}: key {key!r} repeats line {lines[key]}; keys must be unique"
            )
        values[key] = value
        lines[key] = number
    return values, lines


def _number(value: str, where: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise KaldiDataError(f"{where}: {what} {value!r} is not a number") from None


def read_data_dir(path: str | os.PathLike[str], *, allow_pipes: bool = False) -> KaldiDataDir:
    """Read a Kaldi data directory (``wav.scp`` or ``feats.scp`` required, ``utt2spk`` optional).

    Args:
        path: the directory.
        allow_pipes: accept ``wav.scp``/``feats.scp`` entries that are shell commands; they run
            when the audio is read. Refused by default: a data directory from elsewhere could run
            anything.

    Raises:
        KaldiDataError: a missing directory or required file, a malformed line, or a pipe
            command without ``allow_pipes``; the message names the file and line.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise KaldiDataError(f"{folder}: not a directory; give a Kaldi data directory")
    data = KaldiDataDir(path=folder)
    if not (folder / "wav.scp").is_file() and not (folder / "feats.scp").is_file():
        raise KaldiDataError(
            f"{folder}: neither wav.scp nor feats.scp is there; a Kaldi data directory needs one"
        )

    def table(name: str, **kwargs: bool) -> dict[str, str] | None:
        if not (folder / name).is_file():
            return None
        values, lines = read_table(folder / name, **kwargs)
        data.lines[name] = lines
        return values

    data.wav = table("wav.scp") or {}
    data.feats = table("feats.scp")
    for name, scp in (("wav.scp", data.wav), ("feats.scp", data.feats or {})):
        pipes = [key for key, value in scp.items() if is_pipe(value)]
        if pipes and not allow_pipes:
            raise KaldiDataError(
                f"{data.where(name, pipes[0])}: {pipes[0]!r} is a shell command ({scp[pipes[0]]!r})"
                f"; {len(pipes)} of {len(scp)} entries are. Commands are refused by default "
                "because reading them runs whatever the file says; pass allow_pipes=True "
                "(--allow-pipes on the command line) if you trust this data directory."
            )
    data.text = table("text", allow_empty_value=True)
    data.utt2spk = table("utt2spk") or {}
    segments = table("segments")
    if segments is not None:
        data.segments = {}
        for utt, value in segments.items():
            where = data.where("segments", utt)
            fields = value.split()
            if len(fields) != 3:
                raise KaldiDataError(
                    f"{where}: expected '<utterance> <recording> <start> <end>', got "
                    f"{utt} {value!r}"
                )
            start = _number(fields[1], where, "start time")
            end = _number(fields[2], where, "end time")
            if not 0 <= start < end:
                raise KaldiDataError(
                    f"{where}: segment {utt!r} runs from {fields[1]} to {fields[2]}; it needs "
                    "0 <= start < end"
                )
            data.segments[utt] = Segment(fields[0], start, end)
    utt2dur = table("utt2dur")
    if utt2dur is not None:
        data.utt2dur = {
            utt: _number(value, data.where("utt2dur", utt), "duration")
            for utt, value in utt2dur.items()
        }
    data.cmvn = table("cmvn.scp")
    spk2utt = table("spk2utt")
    if spk2utt is not None and not data.utt2spk:  # utt2spk is derived from spk2utt then
        for spk, utts in spk2utt.items():
            for utt in utts.split():
                data.utt2spk[utt] = spk
    return data


def _check_sorted(data: KaldiDataDir, name: str, keys: Iterable[str], problems: list[str]) -> None:
    previous: str | None = None
    for key in keys:
        if previous is not None and key.encode() < previous.encode():
            problems.append(
                f"{data.where(name, key)}: {key!r} comes after {previous!r}; Kaldi needs the file "
                f"sorted (LC_ALL=C sort {name} -o {name}, or utils/fix_data_dir.sh)"
            )
            return
        previous = key


def _check_same(
    data: KaldiDataDir,
    name: str,
    keys: Iterable[str],
    expected: set[str],
    what: str,
    problems: list[str],
) -> None:
    keys = list(keys)
    extra = [key for key in keys if key not in expected]
    missing = sorted(expected - set(keys))
    if extra:
        problems.append(
            f"{data.where(name, extra[0])}: {extra[0]!r} is not among the {what}"
            + (f" ({len(extra)} such keys)" if len(extra) > 1 else "")
        )
    if missing:
        problems.append(
            f"{data.where(name, '')}: no line for {missing[0]!r}"
            + (f" and {len(missing) - 1} more of the {what}" if len(missing) > 1 else "")
        )


def validate_data_dir(
    path: str | os.PathLike[str], *, allow_pipes: bool = False, check_files: bool = True
) -> list[str]:
    """Check a data directory the way Kaldi's ``utils/validate_data_dir.sh`` does.

    Checks: each table sorted in byte order with unique keys; ``utt2spk`` present; ``text``,
    ``utt2dur``, ``feats.scp`` and ``segments`` (or ``wav.scp``) covering exactly the
    utterances of ``utt2spk``; ``spk2utt`` the inverse of ``utt2spk``; ``segments`` naming
    recordings of ``wav.scp``; ``cmvn.scp`` keyed by the speakers; audio files present.

    Returns:
        Every problem found (empty when the directory is valid), each naming file and line.

    Raises:
        KaldiDataError: a file that cannot be read at all (see :func:`read_data_dir`).
    """
    data = read_data_dir(path, allow_pipes=allow_pipes)
    folder = Path(path)
    problems: list[str] = []
    for name, lines in data.lines.items():
        _check_sorted(data, name, sorted(lines, key=lines.__getitem__), problems)
    if not (folder / "utt2spk").is_file():
        problems.append(f"{folder / 'utt2spk'}: missing; every utterance needs a speaker")
        return problems
    utts = set(data.utt2spk)
    if data.segments is not None:
        _check_same(data, "segments", data.segments, utts, "utterances of utt2spk", problems)
        recordings = set(data.wav)
        for utt, seg in data.segments.items():
            if seg.recording not in recordings:
                problems.append(
                    f"{data.where('segments', utt)}: recording {seg.recording!r} is not in wav.scp"
                )
                break
    elif data.wav:
        _check_same(data, "wav.scp", data.wav, utts, "utterances of utt2spk", problems)
    for name, table in (("text", data.text), ("utt2dur", data.utt2dur), ("feats.scp", data.feats)):
        if table is not None:
            _check_same(data, name, table, utts, "utterances of utt2spk", problems)
    if (folder / "spk2utt").is_file():
        spk2utt, _ = read_table(folder / "spk2utt")
        derived = data.spk2utt
        for spk, value in spk2utt.items():
            if value.split() != derived.get(spk):
                problems.append(
                    f"{data.where('spk2utt', spk)}: speaker {spk!r} lists {value.split()[:5]}, "
                    f"utt2spk gives {derived.get(spk, [])[:5]}; regenerate it "
                    "(utils/utt2spk_to_spk2utt.pl utt2spk > spk2utt)"
                )
                break
        if set(spk2utt) != set(derived):
            missing = sorted(set(derived) - set(spk2utt))
            if missing:
                problems.append(f"{folder / 'spk2utt'}: speaker {missing[0]!r} of utt2spk missing")
    else:
        problems.append(f"{folder / 'spk2utt'}: missing; regenerate it from utt2spk")
    if data.cmvn is not None:
        _check_same(data, "cmvn.scp", data.cmvn, set(data.utt2spk.values()), "speakers", problems)
    if check_files:
        for key, value in data.wav.items():
            if is_pipe(value):
                continue
            audio = _resolve(value, folder)
            if not audio.is_file():
                problems.append(f"{data.where('wav.scp', key)}: audio file {value!r} not found")
    return problems


def _resolve(value: str, folder: Path) -> Path:
    """A ``wav.scp`` path: absolute, or relative to the working directory (Kaldi's rule)."""
    del folder  # Kaldi resolves against the recipe folder, the process' working directory
    return Path(value).expanduser()


def _write_table(path: Path, rows: Mapping[str, str]) -> None:
    lines = [f"{key} {rows[key]}".rstrip() + "\n" for key in kaldi_sorted(rows)]
    path.write_text("".join(lines), encoding="utf-8")


def write_data_dir(data: KaldiDataDir, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` as a Kaldi data directory, all at once or not at all.

    The tables go to a temporary folder beside ``path`` that replaces ``path`` when every file
    is written; an existing directory is kept (moved aside, then removed) until that moment.
    ``spk2utt`` is derived from ``utt2spk``.

    Returns:
        The directory.
    """
    import shutil
    import tempfile

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _write_table(staging / "wav.scp", {key: _quote_path(v) for key, v in data.wav.items()})
        if data.segments is not None:
            _write_table(
                staging / "segments",
                {
                    utt: f"{seg.recording} {format_seconds(seg.start)} {format_seconds(seg.end)}"
                    for utt, seg in data.segments.items()
                },
            )
        if data.text is not None:
            _write_table(staging / "text", data.text)
        _write_table(staging / "utt2spk", data.utt2spk)
        _write_table(staging / "spk2utt", {s: " ".join(u) for s, u in data.spk2utt.items()})
        if data.utt2dur is not None:
            _write_table(
                staging / "utt2dur", {u: format_seconds(d) for u, d in data.utt2dur.items()}
            )
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old.{os.getpid()}")
            target.rename(old)
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _quote_path(value: str) -> str:
    """A ``wav.scp`` value: paths with spaces cannot be written (Kaldi splits on whitespace)."""
    if not is_pipe(value) and any(ch.isspace() for ch in value):
        raise KaldiDataError(
            f"audio path {value!r} holds whitespace, which Kaldi's wav.scp cannot represent; "
            f"rename the file or use a pipe such as 'cat {shlex.quote(value)} |'"
        )
    return value
