"""Tests of convai_asr.text: normalization, character and SentencePiece tokenizers, configs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from convai_asr.text.normalize import TextNormalizer, number_to_words
from convai_asr.text.tokenizers import (
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    build_tokenizer,
    train_sentencepiece,
)
from convai_core.errors import ConfigError, ConvaiError

ENGLISH = CharTokenizer.english()


# ---- normalization -------------------------------------------------------------------------------


def test_numbers_become_words() -> None:
    normalize = TextNormalizer(ENGLISH.tokens)
    assert normalize("in 1990 I had 3 cats") == "in nineteen ninety i had three cats"
    assert normalize("In 1990, I had 3 cats!") == "in nineteen ninety i had three cats"


@pytest.mark.parametrize(
    ("number", "words"),
    [
        ("1990", "nineteen ninety"),
        ("2024", "twenty twenty four"),
        ("1905", "nineteen oh five"),
        ("1900", "nineteen hundred"),
        ("2000", "two thousand"),
        ("2005", "two thousand five"),
        ("1099", "one thousand and ninety nine"),  # outside the year range: read normally
        ("21", "twenty one"),
        ("21st", "twenty first"),
        ("3.5", "three point five"),
        ("1,000,000", "one million"),
    ],
)
def test_number_to_words(number: str, words: str) -> None:
    assert number_to_words(number) == words
    assert set(words) <= set(ENGLISH.tokens)


def test_unknown_characters_are_removed_and_counted() -> None:
    normalize = TextNormalizer(ENGLISH.tokens)
    assert normalize("It’s  a well-known\tfact; 100%!") == "it's a well known fact one hundred"
    assert normalize("Café") == "cafe"  # accents folded, not dropped
    assert normalize.removed == {"-": 1, ";": 1, "%": 1, "!": 1}


def test_no_vocabulary_keeps_everything_but_whitespace_runs() -> None:
    normalize = TextNormalizer(None, lowercase=False)
    assert normalize("  Hello,   World 7 ") == "Hello, World seven"
    assert not normalize.removed


def test_han_characters_keep_digits_out_of_english() -> None:
    vocabulary = list("你好世界我有只猫三")
    normalize = TextNormalizer(vocabulary)
    assert normalize.numbers_to_words is False  # not an English vocabulary
    assert normalize("你好，世界！ 我有3只猫") == "你好世界我有只猫"
    assert normalize.removed == {",": 1, "!": 1, "3": 1}  # NFKC turns "，" into ","
    forced = TextNormalizer([*vocabulary, " ", *"abcdefghijklmnopqrstuvwxyz"])
    assert forced("我有3只猫") == "我有 three 只猫"


# ---- character tokenizer -------------------------------------------------------------------------


def test_char_round_trip_and_boundaries() -> None:
    text = "hello world it's"
    ids = ENGLISH.encode(text)
    assert ENGLISH.vocab_size == 28 and ENGLISH.tokens[0] == " " and ENGLISH.tokens[-1] == "'"
    assert ENGLISH.decode(ids) == text
    assert ENGLISH.decode([*ids, ENGLISH.vocab_size]) == text  # the CTC blank is skipped
    starts = [i for i, flag in enumerate(ENGLISH.word_boundaries(ids)) if flag]
    assert starts == [0, 6, 12]
    assert isinstance(ENGLISH, Tokenizer)


def test_char_encode_names_unknown_characters() -> None:
    with pytest.raises(ConvaiError, match=r"\['!', 'H'\].*TextNormalizer"):
        ENGLISH.encode("Hi!")


def test_char_from_texts_handles_han() -> None:
    texts = ["你好 世界", "你好", "世界 你好 猫"]
    tokenizer = CharTokenizer.from_texts(texts)
    # space first, then by decreasing count (你 好 x3, 世 界 x2, 猫 x1), ties by code point
    assert tokenizer.tokens == [" ", "你", "好", "世", "界", "猫"]
    assert tokenizer.decode(tokenizer.encode("世界 猫")) == "世界 猫"
    assert CharTokenizer.from_texts(texts, min_count=2).tokens == [" ", "你", "好", "世", "界"]
    with pytest.raises(ConfigError, match="min_count"):
        CharTokenizer.from_texts(texts, min_count=100)


def test_char_vocabulary_validation() -> None:
    with pytest.raises(ConfigError, match="single characters"):
        CharTokenizer(["a", "bc"])
    with pytest.raises(ConfigError, match="more than once"):
        CharTokenizer(["a", "a"])


# ---- SentencePiece -------------------------------------------------------------------------------


def _sentences(count: int = 300) -> list[str]:
    rng = random.Random(0)
    words = (
        "the cat dog sat on a mat and ran to the house big small red blue green quickly "
        "slowly yesterday morning river walked jumped over lazy brown fox"
    ).split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 10))) for _ in range(count)]


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_round_trip(tmp_path: Path, model_type: str) -> None:
    texts = _sentences()
    path = train_sentencepiece(
        texts, vocab_size=48, output_dir=tmp_path / "spm", model_type=model_type
    )
    assert path == tmp_path / "spm" / "tokenizer.model" and path.with_suffix(".vocab").is_file()
    tokenizer = SentencePieceTokenizer(path)
    assert tokenizer.vocab_size == 48 and tokenizer.tokens[0] == "<unk>"
    for text in texts[:50]:
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == text
        assert sum(tokenizer.word_boundaries(ids)) == len(text.split())
    rebuilt = build_tokenizer(tokenizer.to_config())
    assert rebuilt.encode(texts[0]) == tokenizer.encode(texts[0])


def test_sentencepiece_is_deterministic(tmp_path: Path) -> None:
    texts = _sentences(200)
    first = train_sentencepiece(texts, vocab_size=40, output_dir=tmp_path / "a")
    second = train_sentencepiece(texts, vocab_size=40, output_dir=tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()


def test_sentencepiece_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lower vocab_size"):
        train_sentencepiece(_sentences(20), vocab_size=5000, output_dir=tmp_path)
    with pytest.raises(ConfigError, match="no non-empty text"):
        train_sentencepiece(["", "  "], vocab_size=10, output_dir=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        SentencePieceTokenizer(tmp_path / "missing.model")
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a readable SentencePiece model"):
        SentencePieceTokenizer(junk)


# ---- configs -------------------------------------------------------------------------------------


def test_build_tokenizer_from_config() -> None:
    assert build_tokenizer({"name": "asr/char"}).tokens == ENGLISH.tokens
    custom = build_tokenizer({"name": "asr/char", "vocabulary": ["a", "b", " "]})
    assert custom.vocab_size == 3
    assert build_tokenizer(custom.to_config()).tokens == custom.tokens


def test_legacy_tokenizer_type_still_builds_with_a_warning() -> None:
    with pytest.warns(FutureWarning, match=r"tokenizer.name='asr/char'"):
        legacy = build_tokenizer({"type": "char", "vocabulary": ["a", " "]})
    assert legacy.tokens == ["a", " "]


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({}, r"tokenizer.name is missing"),
        ({"name": "asr/chars"}, r"not a registered tokenizers key. Did you mean 'asr/char'"),
        ({"type": "wordpiece"}, r"tokenizer.type='wordpiece' is not known"),
        ({"name": "asr/char", "vocab": ["a"]}, r"tokenizer.vocab for asr/char. Did you mean 'vocabulary'"),
        ({"name": "asr/sentencepiece", "model": "x"}, r"Did you mean 'model_path'"),
        ({"name": "asr/sentencepiece"}, r"needs 'model_path'; set tokenizer.model_path"),
    ],
)
def test_build_tokenizer_errors(cfg: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_tokenizer(cfg)
