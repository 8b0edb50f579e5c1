"""Kaldi data directories built from real (espeak-ng) speech, as Kaldi recipes lay them out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from convai_asr.testing import SENTENCES, synthesize_set

SPEAKERS = ("spk_a", "spk_b")


def _write(path: Path, rows: dict[str, str]) -> None:
    keys = sorted(rows, key=lambda k: k.encode())
    path.write_text("".join(f"{k} {rows[k]}".rstrip() + "\n" for k in keys), encoding="utf-8")


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    """The 20 commands spoken by espeak-ng (rows with absolute paths)."""
    manifest = synthesize_set(tmp_path_factory.mktemp("kaldi_speech"), SENTENCES, "espeak-ng:en-us")
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for row in rows:
        row["audio_filepath"] = str(manifest.parent / str(row["audio_filepath"]))
    return rows


@pytest.fixture()
def plain_dir(tmp_path: Path, speech: list[dict[str, object]]) -> Path:
    """A data directory without segments: one file per utterance, two speakers."""
    folder = tmp_path / "plain"
    folder.mkdir()
    wav, text, utt2spk, utt2dur = {}, {}, {}, {}
    for i, row in enumerate(speech):
        spk = SPEAKERS[i % 2]
        utt = f"{spk}-utt{i:03d}"
        wav[utt], text[utt], utt2spk[utt] = str(row["audio_filepath"]), str(row["text"]), spk
        utt2dur[utt] = f"{float(str(row['duration'])):.6f}".rstrip("0").rstrip(".")
    _write(folder / "wav.scp", wav)
    _write(folder / "text", text)
    _write(folder / "utt2spk", utt2spk)
    _write(folder / "utt2dur", utt2dur)
    spk2utt = {s: " ".join(sorted(u for u in utt2spk if utt2spk[u] == s)) for s in SPEAKERS}
    _write(folder / "spk2utt", spk2utt)
    return folder


@pytest.fixture()
def segmented_dir(tmp_path: Path, speech: list[dict[str, object]]) -> Path:
    """A data directory with segments: two long recordings (one per speaker) holding ten
    commands each with 0.3 s pauses."""
    folder = tmp_path / "segmented"
    folder.mkdir()
    wav, segments, text, utt2spk, utt2dur = {}, {}, {}, {}, {}
    for r, spk in enumerate(SPEAKERS):
        pieces, t = [], 0.0
        reco = f"{spk}-rec{r}"
        for i in range(r, len(speech), 2):
            audio, rate = sf.read(str(speech[i]["audio_filepath"]), dtype="float32")
            start, end = t, t + len(audio) / rate
            utt = f"{reco}-{i:03d}"
            times = [f"{v:.6f}".rstrip("0").rstrip(".") for v in (start, end)]
            segments[utt] = " ".join([reco, *times])
            text[utt], utt2spk[utt] = str(speech[i]["text"]), spk
            seconds = float(times[1]) - float(times[0])
            utt2dur[utt] = f"{seconds:.6f}".rstrip("0").rstrip(".")
            pieces += [audio, np.zeros(int(0.3 * rate), dtype="float32")]
            t = end + 0.3
        path = folder / f"{reco}.wav"
        sf.write(str(path), np.concatenate(pieces), 16000)
        wav[reco] = str(path)
    _write(folder / "wav.scp", wav)
    _write(folder / "segments", segments)
    _write(folder / "text", text)
    _write(folder / "utt2spk", utt2spk)
    _write(folder / "utt2dur", utt2dur)
    spk2utt = {s: " ".join(sorted(u for u in utt2spk if utt2spk[u] == s)) for s in SPEAKERS}
    _write(folder / "spk2utt", spk2utt)
    return folder
