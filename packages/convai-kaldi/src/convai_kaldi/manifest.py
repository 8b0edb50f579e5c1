"""Kaldi data directories to NeMo-style JSON-lines manifests and back.

A manifest row per utterance: ``audio_filepath`` (absolute), ``duration``, ``text``,
``speaker``, ``offset`` when the directory has ``segments``, and two keys that keep the round
trip lossless: ``utt_id`` (the Kaldi utterance id) and ``reco_id`` (the recording id, with
``segments``). convai's manifest readers ignore keys they do not know.

``from-manifest`` turns rows with an ``offset`` (or a ``reco_id``) into ``segments``; rows
without ``utt_id`` get ids ``<speaker>-<file stem>[-<n>]`` so that sorting utterances also
groups them by speaker, as Kaldi recommends.

Durations come from ``segments``, else ``utt2dur``, else the audio file's header.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from convai_kaldi.datadir import (
    KaldiDataDir,
    Segment,
    is_pipe,
    read_data_dir,
    write_data_dir,
)
from convai_kaldi.errors import KaldiDataError

__all__ = ["data_dir_to_rows", "from_manifest", "read_manifest_rows", "to_manifest"]


def _audio_duration(path: Path, where: str) -> float:
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError) as exc:  # soundfile raises LibsndfileError (a RuntimeError)
        raise KaldiDataError(f"{where}: cannot read audio {str(path)!r}: {exc}") from exc
    return float(info.frames) / float(info.samplerate)


def _run_pipe(command: str, where: str, audio_dir: Path, key: str) -> Path:
    """Run a ``wav.scp`` command and keep its audio as ``audio_dir/<key>.wav``."""
    import soundfile

    out = audio_dir / f"{key}.wav"
    if out.is_file():
        return out
    done = subprocess.run(
        command.rstrip().rstrip("|"), shell=True, capture_output=True, check=False, timeout=600
    )
    if done.returncode != 0:
        raise KaldiDataError(
            f"{where}: the command {command!r} failed (exit {done.returncode}): "
            f"{done.stderr.decode(errors='replace').strip()[-300:]}"
        )
    try:
        audio, rate = soundfile.read(io.BytesIO(done.stdout), dtype="float32")
    except (RuntimeError, OSError) as exc:
        raise KaldiDataError(f"{where}: {command!r} did not print audio: {exc}") from exc
    audio_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}.wav")
    soundfile.write(str(tmp), audio, rate, subtype="PCM_16")
    tmp.replace(out)
    return out


def data_dir_to_rows(
    data: KaldiDataDir,
    *,
    root: str | os.PathLike[str] | None = None,
    audio_dir: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Manifest rows of a data directory's utterances (in Kaldi's order).

    Args:
        data: the directory (:func:`~convai_kaldi.datadir.read_data_dir`).
        root: the folder relative ``wav.scp`` paths start from (default: the working
            directory, Kaldi's rule).
        audio_dir: where the output of allowed pipe commands is kept as WAV files (required
            when ``wav.scp`` holds commands).

    Raises:
        KaldiDataError: an utterance without audio or a transcript, unreadable audio, or a
            failing command, naming file and line.
    """
    base = Path(root) if root is not None else Path.cwd()
    rows: list[dict[str, Any]] = []
    resolved: dict[str, Path] = {}
    if not data.wav:
        raise KaldiDataError(f"{data.where('wav.scp', '')}: missing; manifests need audio files")
    for utt in data.utterances:
        recording = data.segments[utt].recording if data.segments is not None else utt
        if recording not in data.wav:
            table = "segments" if data.segments is not None else "utt2spk"
            raise KaldiDataError(
                f"{data.where(table, utt)}: {utt!r} has no audio: {recording!r} is not in wav.scp"
            )
        value, offset, duration = data.audio_of(utt)
        where = data.where("wav.scp", recording)
        if recording not in resolved:
            if is_pipe(value):
                if audio_dir is None:
                    raise KaldiDataError(f"{where}: a command needs an audio_dir for its output")
                resolved[recording] = _run_pipe(value, where, Path(audio_dir), recording)
            else:
                path = Path(value).expanduser()
                resolved[recording] = (path if path.is_absolute() else base / path).resolve()
                if not resolved[recording].is_file():
                    raise KaldiDataError(f"{where}: audio file {value!r} not found")
        if duration is None:
            duration = _audio_duration(resolved[recording], where)
        if data.text is not None and utt not in data.text:
            raise KaldiDataError(f"{data.where('text', '')}: no transcript for {utt!r}")
        row: dict[str, Any] = {
            "audio_filepath": str(resolved[recording]),
            "duration": duration,
            "text": data.text[utt] if data.text is not None else "",
        }
        if data.segments is not None:
            row["offset"] = offset
            row["reco_id"] = recording
        if utt in data.utt2spk:
            row["speaker"] = data.utt2spk[utt]
        row["utt_id"] = utt
        rows.append(row)
    return rows


def to_manifest(
    data_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    allow_pipes: bool = False,
) -> int:
    """Write a data directory's utterances as a JSON-lines manifest (atomically).

    Pipe commands (only with ``allow_pipes``) run once each; their audio is kept as WAV files
    in ``<output>.audio/``. Returns the number of rows written.
    """
    data = read_data_dir(data_dir, allow_pipes=allow_pipes)
    out = Path(output)
    rows = data_dir_to_rows(data, root=root, audio_dir=out.with_name(out.name + ".audio"))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return len(rows)


def read_manifest_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a JSON-lines manifest, with relative ``audio_filepath`` resolved against the
    manifest's folder (NeMo's rule) and each row's line number under ``"_line"``.

    Raises:
        KaldiDataError: a line that is not a JSON object, or one without ``audio_filepath``,
            ``duration`` or ``text``, naming the file and line.
    """
    path = Path(path)
    rows: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KaldiDataError(f"{path}: manifest not found") from None
    except UnicodeDecodeError as exc:
        raise KaldiDataError(f"{path}: not UTF-8 ({exc.reason}); convert it") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise KaldiDataError(f"{path} line {number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise KaldiDataError(f"{path} line {number}: expected a JSON object")
        for key in ("audio_filepath", "duration", "text"):
            if key not in row:
                raise KaldiDataError(f"{path} line {number}: no {key!r}; every row needs one")
        if not isinstance(row["duration"], int | float) or row["duration"] <= 0:
            raise KaldiDataError(
                f"{path} line {number}: duration {row['duration']!r} is not a positive number"
            )
        audio = Path(str(row["audio_filepath"])).expanduser()
        row["audio_filepath"] = str(audio if audio.is_absolute() else path.parent / audio)
        row["_line"] = number
        rows.append(row)
    return rows


def _check_id(value: str, where: str, what: str) -> str:
    if not value or any(ch.isspace() for ch in value):
        raise KaldiDataError(f"{where}: {what} {value!r} is empty or holds whitespace")
    return value


def from_manifest(
    manifest: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    *,
    relative_to: str | os.PathLike[str] | None = None,
) -> KaldiDataDir:
    """Write a JSON-lines manifest as a Kaldi data directory (all files or none).

    Args:
        manifest: the manifest.
        data_dir: the directory to write (replaced only once every file is written).
        relative_to: write ``wav.scp`` paths relative to this folder (the recipe folder Kaldi
            runs from); absolute paths otherwise.

    Raises:
        KaldiDataError: a malformed row, an id with whitespace, two rows with one ``utt_id``,
            or one recording id for two files, naming the manifest line.
    """
    rows = read_manifest_rows(manifest)
    data = KaldiDataDir(text={}, utt2dur={})
    assert data.text is not None and data.utt2dur is not None
    segmented = any(float(row.get("offset") or 0) > 0 or "reco_id" in row for row in rows)
    segments: dict[str, Segment] = {}
    reco_of_file: dict[str, str] = {}
    taken: set[str] = set()
    for row in rows:
        where = f"{manifest} line {row['_line']}"
        audio = row["audio_filepath"]
        shown = os.path.relpath(audio, relative_to) if relative_to is not None else audio
        stem = Path(audio).stem.replace(" ", "_")
        speaker = None
        if row.get("speaker") not in (None, ""):
            speaker = _check_id(str(row["speaker"]), where, "speaker")
        utt = row.get("utt_id")
        if utt is None:
            utt = f"{speaker}-{stem}" if speaker else stem
            if segmented:
                utt += f"-{round(float(row.get('offset') or 0) * 100):07d}"
            candidate, n = utt, 1
            while candidate in taken:
                n += 1
                candidate = f"{utt}-{n}"
            utt = candidate
        utt = _check_id(str(utt), where, "utterance id")
        if utt in taken:
            raise KaldiDataError(f"{where}: utt_id {utt!r} appears twice; ids must be unique")
        taken.add(utt)
        data.text[utt] = str(row["text"])
        data.utt2spk[utt] = speaker if speaker is not None else utt
        duration = float(row["duration"])
        data.utt2dur[utt] = duration
        if segmented:
            reco = row.get("reco_id")
            if reco is None:
                reco = reco_of_file.get(shown) or _unique_reco(stem, shown, reco_of_file)
            reco = _check_id(str(reco), where, "reco_id")
            if data.wav.get(reco, shown) != shown:
                raise KaldiDataError(
                    f"{where}: reco_id {reco!r} names {shown!r} but an earlier row gave it "
                    f"{data.wav[reco]!r}"
                )
            reco_of_file[shown] = reco
            data.wav[reco] = shown
            offset = float(row.get("offset") or 0)
            segments[utt] = Segment(reco, offset, offset + duration)
        else:
            data.wav[utt] = shown
    if segmented:
        data.segments = segments
    write_data_dir(data, data_dir)
    data.path = Path(data_dir)
    return data


def _unique_reco(stem: str, shown: str, taken: dict[str, str]) -> str:
    if stem not in taken.values():
        return stem
    return f"{stem}-{hashlib.sha1(shown.encode()).hexdigest()[:8]}"
