"""Bad NLP data gets an error naming the file and line, or a counted skip when asked."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from convai_nlp.data.readers import (
    read_intent_slot,
    read_label_dict,
    read_text_classification,
    read_token_classification,
)
from convai_nlp.errors import DataError


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_text_classification_lines(tmp_path: Path) -> None:
    good = _write(tmp_path / "a.tsv", "sentence\tlabel\ngreat film\tpos\ndull\tneg\n")
    assert read_text_classification(good) == [("great film", "pos"), ("dull", "neg")]
    cases = {
        "no tab": ("great film pos\n", ":1: no tab"),
        "empty line": ("great\tpos\n\n", ":2: empty line"),
        "no text": ("\tpos\n", ":1: no text"),
        "unknown label": ("great\tmaybe\n", ":1: unknown label 'maybe'"),
        "too long": ("a b c d e\tpos\n", ":1: 5 words, more than max_words=4"),
    }
    for name, (text, message) in cases.items():
        path = _write(tmp_path / f"{name}.tsv", text)
        with pytest.raises(DataError, match=message) as info:
            read_text_classification(path, labels=["pos", "neg"], max_words=4)
        assert path in str(info.value) and "skip_bad" in str(info.value), name
    with pytest.raises(DataError, match="does not exist"):
        read_text_classification(tmp_path / "missing.tsv")


def test_skip_bad_counts_what_it_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path / "a.tsv", "good\tpos\nbad line\n\nalso good\tneg\nx\tunknown\n")
    with caplog.at_level(logging.WARNING):
        rows = read_text_classification(path, labels=["pos", "neg"], skip_bad=True)
    assert rows == [("good", "pos"), ("also good", "neg")]
    assert "skipped 3 bad line(s)" in caplog.text and path in caplog.text


def test_token_classification_files(tmp_path: Path) -> None:
    text = _write(tmp_path / "text.txt", "EU rejects German call\nPeter Blackburn\n")
    labels = _write(tmp_path / "labels.txt", "B-ORG O B-MISC O\nB-PER I-PER\n")
    rows = read_token_classification(text, labels)
    assert rows[1] == (["Peter", "Blackburn"], ["B-PER", "I-PER"])
    ragged = _write(tmp_path / "ragged.txt", "B-ORG O B-MISC O\nB-PER\n")
    with pytest.raises(DataError, match=r"text.txt:2: 2 words but 1 labels on line 2 of .*ragged"):
        read_token_classification(text, ragged)
    short = _write(tmp_path / "short.txt", "B-ORG O B-MISC O\n")
    with pytest.raises(DataError, match="fewer lines"):
        read_token_classification(text, short)
    with pytest.raises(DataError, match=r"labels.txt:1: unknown label\(s\) B-MISC, B-ORG"):
        read_token_classification(text, labels, labels=["O", "B-PER", "I-PER"])
    blank_text = _write(tmp_path / "blank.txt", "EU rejects German call\n \n")
    with pytest.raises(DataError, match=r"blank\.txt:2: empty line"):
        read_token_classification(blank_text, labels)


def test_intent_slot_files(tmp_path: Path) -> None:
    intents = _write(tmp_path / "dict.intents.csv", "flight\nfare\n")
    assert read_label_dict(intents) == ["flight", "fare"]
    tsv = _write(tmp_path / "train.tsv", "sentence\tlabel\nflights to boston\t0\ncheap fares\t1\n")
    slots = _write(tmp_path / "train_slots.tsv", "2 2 0\n1 2\n")
    rows = read_intent_slot(tsv, slots, num_intents=2, num_slots=3)
    assert rows == [(["flights", "to", "boston"], 0, [2, 2, 0]), (["cheap", "fares"], 1, [1, 2])]
    bad_intent = _write(
        tmp_path / "bad.tsv", "sentence\tlabel\nflights to boston\t7\ncheap fares\t1\n"
    )
    with pytest.raises(DataError, match=r"bad.tsv:2: intent id '7' is not in 0..1"):
        read_intent_slot(bad_intent, slots, num_intents=2, num_slots=3)
    ragged = _write(tmp_path / "ragged_slots.tsv", "2 2\n1 2\n")
    with pytest.raises(DataError, match=r"ragged_slots.tsv:1: 2 slot ids but 3 words"):
        read_intent_slot(tsv, ragged, num_intents=2, num_slots=3)
    out_of_range = _write(tmp_path / "range_slots.tsv", "2 2 9\n1 2\n")
    with pytest.raises(DataError, match=r"range_slots.tsv:1: a slot id is not in 0..2"):
        read_intent_slot(tsv, out_of_range, num_intents=2, num_slots=3)
    missing_line = _write(tmp_path / "few_slots.tsv", "2 2 0\n")
    with pytest.raises(DataError, match=r"has 1 lines but .* has 2 sentences"):
        read_intent_slot(tsv, missing_line, num_intents=2, num_slots=3)
