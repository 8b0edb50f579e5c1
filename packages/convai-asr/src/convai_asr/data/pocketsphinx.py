"""A manifest of the real recorded speech in Debian's pocketsphinx-testdata package.

Ten 16 kHz recordings with transcripts: five LibriVox sentences (one reader, "Sense and
Sensibility") and five spoken card names ("cards"), under ``/usr/share/pocketsphinx/test/data``.
They are read from the installed package, never copied into this repository.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from convai_asr.errors import ManifestError

DATA_DIR = Path("/usr/share/pocketsphinx/test/data")
_LINE = re.compile(r"^<s>\s*(?P<text>.*?)\s*</s>\s*\((?P<id>[^)]+)\)\s*$")


def _transcripts(path: Path) -> dict[str, str]:
    result = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line.strip())
        if not match:
            raise ManifestError(f"{path}:{number}: not a '<s> text </s> (id)' transcript line")
        result[match["id"]] = " ".join(match["text"].split())
    return result


def pocketsphinx_entries(data_dir: Path = DATA_DIR) -> list[dict[str, object]]:
    """Manifest rows (absolute paths) of the LibriVox and cards recordings."""
    import soundfile as sf

    if not (data_dir / "librivox").is_dir():
        raise ManifestError(
            f"{data_dir} has no recordings: install them with `apt-get install "
            f"pocketsphinx-testdata` (make demo / make test do this when run as root)."
        )
    rows = []
    for folder, transcript in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for utt_id, text in _transcripts(data_dir / folder / transcript).items():
            wav = data_dir / folder / f"{utt_id}.wav"
            rows.append(
                {
                    "audio_filepath": str(wav),
                    "duration": round(sf.info(wav).duration, 3),
                    "text": text,
                    "speaker": folder,
                }
            )
    return rows


def write_pocketsphinx_manifest(out_path: Path, data_dir: Path = DATA_DIR) -> Path:
    rows = pocketsphinx_entries(data_dir)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out_path
