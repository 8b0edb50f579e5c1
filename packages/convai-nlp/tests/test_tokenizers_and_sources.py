"""Tokenizers keep word ids and special tokens; corpus converters keep the real labels."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from convai_core.errors import ConfigError
from convai_nlp.data.datasets import encode_tagged, overlapping_windows, word_windows
from convai_nlp.data.sources import atis_utterances, conll_sentences, punctuation_labels
from convai_nlp.tokenizers import (
    CharTokenizer,
    HFTokenizer,
    SentencePieceTokenizer,
    WordTokenizer,
    case_class,
)


@pytest.fixture(scope="module")
def wordpiece() -> HFTokenizer:
    from convai_nlp.backbones import backbone_folder

    return HFTokenizer(str(backbone_folder("minilm-l6-h384") / "tokenizer.json"))


def test_wordpiece_from_the_pretrained_folder(wordpiece: HFTokenizer) -> None:
    assert wordpiece.vocab_size == 30522
    assert (wordpiece.pad_id, wordpiece.cls_id, wordpiece.sep_id) == (0, 101, 102)
    ids = wordpiece.encode("Unbelievable results")
    assert wordpiece.decode(ids) == "unbelievable results"
    (encoded,) = wordpiece.encode_words([["Blackburn", "rejects"]])
    assert encoded.ids[0] == 101 and encoded.ids[-1] == 102
    assert encoded.word_ids[0] is None and encoded.word_ids[-1] is None
    assert sorted({w for w in encoded.word_ids if w is not None}) == [0, 1]
    starts = wordpiece.word_boundaries(wordpiece.encode("tokenization"))
    assert starts == [True, False]  # "token ##ization"


def test_the_letter_case_an_uncased_tokenizer_drops_is_kept(wordpiece: HFTokenizer) -> None:
    assert [case_class(t) for t in ("", "1996", "eu", "Tokens", "A", "EU", "McDonald")] == [
        1,
        1,
        2,
        3,
        3,
        4,
        5,
    ]
    (words,) = wordpiece.encode_words([["EU", "Tokenization", "rejects", "1996"]])
    # [CLS] eu token ##ization rejects 1996 [SEP]: "Token" is Title, "ization" lower case
    assert words.case_ids == [0, 4, 3, 2, 2, 1, 0]
    (text,) = wordpiece.encode_texts(["EU Tokenization rejects 1996"])
    assert text.ids == words.ids and text.case_ids == words.case_ids


def test_labels_go_on_the_first_sub_token_and_long_sentences_are_cut(
    wordpiece: HFTokenizer,
) -> None:
    (item,) = encode_tagged(wordpiece, [["Tokenization", "said"]], {"tags": [[4, 0]]})
    assert item["tags"] == [-100, 4, -100, 0, -100]  # [CLS] token ##ization said [SEP]
    wordpiece.max_length = 8
    try:
        items = encode_tagged(wordpiece, [["word"] * 20], {"tags": [list(range(20))]})
    finally:
        wordpiece.max_length = 512
    assert all(len(i["input_ids"]) <= 8 for i in items)
    labelled = [t for i in items for t in i["tags"] if t != -100]
    assert labelled == list(range(20))  # every word labelled exactly once, in order


def test_windows() -> None:
    assert word_windows([2, 2, 2, 2], 4) == [(0, 2), (2, 4)]
    assert word_windows([9, 1], 4) == [(0, 1), (1, 2)]  # an over-long word stands alone
    windows = overlapping_windows([1] * 10, 4)
    assert windows[0] == (0, 4) and windows[-1][1] == 10
    assert all(b[0] < a[1] for a, b in itertools.pairwise(windows))  # they overlap


def test_char_word_and_sentencepiece_tokenizers(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\n" * 50 + "a dog ran in the park\n" * 50)
    chars = CharTokenizer(text_files=[str(text)])
    assert chars.decode(chars.encode("the cat")) == "the cat"
    assert chars.encode("thé")[-1] == 0  # unknown -> <unk>
    assert chars.word_boundaries(chars.encode("a cat")) == [True, False, True, False, False]
    words = WordTokenizer(vocabulary=["the", "cat"])
    assert words.encode("the cat sat") == [1, 2, 0]
    assert (
        WordTokenizer(**{k: v for k, v in words.to_config().items() if k != "name"}).tokens
        == words.tokens
    )
    pieces = SentencePieceTokenizer(text_files=[str(text)], vocab_size=20, output_dir=str(tmp_path))
    assert pieces.decode(pieces.encode("the cat sat")) == "the cat sat"
    assert Path(pieces.to_config()["model_file"]).is_file()
    with pytest.raises(ConfigError, match="does not exist"):
        HFTokenizer(str(tmp_path / "missing.json"))


def test_corpus_converters() -> None:
    conll = (
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"
    )
    assert conll_sentences(conll) == [(["EU", "rejects"], ["B-ORG", "O"]), (["Peter"], ["B-PER"])]
    atis = (
        "i:O fly:O to:O st.:B-toloc.city_name louis:I-toloc.city_name <=> atis_flight;atis_airfare"
    )
    ((words, tags, intent),) = atis_utterances(atis)
    assert words[3] == "st." and tags[4] == "I-toloc.city_name" and intent == "atis_flight"
    words, labels = punctuation_labels(
        'The game (NFL) was played on February 7, 2016, at "Levi\'s" — yes?'
    )
    assert words == [
        "the",
        "game",
        "nfl",
        "was",
        "played",
        "on",
        "february",
        "7",
        "2016",
        "at",
        "levi's",
        "yes",
    ]
    assert labels == ["OU", "OO", "OU", "OO", "OO", "OO", "OU", ",O", ",O", "OO", "OU", "?O"]


def test_a_corpus_written_by_an_older_converter_is_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from convai_nlp.data import sources

    calls: list[int] = []

    def convert(folder: Path) -> dict[str, Path]:
        calls.append(1)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "train.txt").write_text(f"written {len(calls)}\n")
        return {"train": folder / "train.txt"}

    monkeypatch.setitem(sources.CORPORA, "toy", convert)
    first = sources.prepare("toy", tmp_path)
    assert sources.prepare("toy", tmp_path) == first and len(calls) == 1  # cached
    monkeypatch.setitem(sources.CORPUS_VERSIONS, "toy", 2)
    again = sources.prepare("toy", tmp_path)
    assert len(calls) == 2 and again["train"].read_text() == "written 2\n"
    assert sources.prepare("toy", tmp_path) == again and len(calls) == 2
    # a marker of a release before versions (no version line) reads as version 1
    (tmp_path / ".complete").write_text(f"train\t{again['train']}\n")
    monkeypatch.setitem(sources.CORPUS_VERSIONS, "toy", 1)
    assert sources.prepare("toy", tmp_path) == again and len(calls) == 2
