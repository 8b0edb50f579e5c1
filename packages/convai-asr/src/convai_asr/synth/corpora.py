"""Text corpora for synthetic speech, read from packages (never committed to this repository).

The default English corpus is the Lee news corpus (about 3,000 sentences of Australian news) that
ships in the gensim wheel's test data. It is fetched once with ``pip download --no-deps`` into
``$CONVAI_CACHE/wheels`` (or found there, offline) and read straight from the wheel.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from convai_core.errors import ConvaiError
from convai_core.pretrained import cache_dir

GENSIM_WHEEL_REQUIREMENT = "gensim==4.4.0"
LEE_MEMBER = "gensim/test/test_data/lee_background.cor"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def _gensim_wheel() -> Path:
    folder = cache_dir() / "wheels"
    found = sorted(folder.glob("gensim-*.whl"))
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            GENSIM_WHEEL_REQUIREMENT,
            "-d",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = sorted(folder.glob("gensim-*.whl"))
    if result.returncode != 0 or not found:
        raise ConvaiError(
            f"The news corpus comes from the {GENSIM_WHEEL_REQUIREMENT} wheel, which is not in "
            f"{folder} and could not be downloaded ({result.stderr.strip()[-300:]}). Copy a gensim "
            f"wheel into {folder}, or pass your own text file with --text."
        )
    return found[-1]


def news_sentences(*, min_words: int = 3, max_words: int = 20) -> list[str]:
    """Sentences of the Lee news corpus with ``min_words``..``max_words`` words, in corpus order."""
    with zipfile.ZipFile(_gensim_wheel()) as wheel:
        text = wheel.read(LEE_MEMBER).decode("utf-8", errors="replace")
    return _sentences(text.splitlines(), min_words=min_words, max_words=max_words)


def text_file_sentences(path: Path, *, min_words: int = 1, max_words: int = 40) -> list[str]:
    """One sentence per line of a UTF-8 text file (longer lines are split at sentence ends)."""
    return _sentences(
        Path(path).read_text(encoding="utf-8").splitlines(),
        min_words=min_words,
        max_words=max_words,
    )


def _sentences(lines: list[str], *, min_words: int, max_words: int) -> list[str]:
    result: list[str] = []
    seen: set[str] = set()
    for line in lines:
        for sentence in _SENTENCE_END.split(line.strip()):
            sentence = " ".join(sentence.split())
            words = len(sentence.split()) if " " in sentence else len(sentence)
            if min_words <= words <= max_words and sentence not in seen:
                seen.add(sentence)
                result.append(sentence)
    return result
