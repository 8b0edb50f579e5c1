"""The Mandarin frontend: pinyin symbols, polyphones, tone sandhi, erhua, numbers, pauses,
sentences, unreadable characters, the user lexicon, the config round trip and the registry."""

from __future__ import annotations

import itertools

import pytest

from convai_core.components import build
from convai_core.errors import ConfigError, ConvaiError
from convai_tts.text.mandarin import (
    ERHUA,
    FINALS,
    INITIALS,
    MANDARIN_SYMBOLS,
    MandarinPhonemizer,
    cardinal,
    normalize_numbers,
    syllable_symbols,
)
from convai_tts.text.symbols import PAD, PAUSES, WORD_GAP


@pytest.fixture(scope="module")
def frontend() -> MandarinPhonemizer:
    return MandarinPhonemizer()


def test_inventory_shares_the_english_conventions() -> None:
    assert MANDARIN_SYMBOLS[:6] == (PAD, WORD_GAP, *PAUSES)
    assert len(MANDARIN_SYMBOLS) == len(set(MANDARIN_SYMBOLS)) == 6 + 21 + 42 * 5 + 1
    assert MANDARIN_SYMBOLS[6:27] == INITIALS and MANDARIN_SYMBOLS[-1] == ERHUA
    assert {f"{final}{tone}" for final in FINALS for tone in range(1, 6)} <= set(MANDARIN_SYMBOLS)


@pytest.mark.parametrize(
    ("syllable", "symbols"),
    [
        ("zhuang1", ["zh", "uang1"]),
        ("ma5", ["m", "a5"]),
        ("you3", ["iou3"]),  # zero initial: y/w spellings become full finals
        ("yi1", ["i1"]),
        ("ying2", ["ing2"]),
        ("ye4", ["ie4"]),
        ("wu3", ["u3"]),
        ("wei4", ["uei4"]),
        ("wen2", ["uen2"]),
        ("wong1", ["ueng1"]),
        ("yu2", ["v2"]),  # ü
        ("yue4", ["ve4"]),
        ("yuan2", ["van2"]),
        ("yun2", ["vn2"]),
        ("ju4", ["j", "v4"]),
        ("xue2", ["x", "ve2"]),
        ("qun2", ["q", "vn2"]),
        ("lv4", ["l", "v4"]),
        ("lü4", ["l", "v4"]),
        ("nve4", ["n", "ve4"]),
        ("liu2", ["l", "iou2"]),  # contracted finals expanded
        ("gui4", ["g", "uei4"]),
        ("lun2", ["l", "uen2"]),
        ("zhi1", ["zh", "iii1"]),  # apical vowels
        ("ri4", ["r", "iii4"]),
        ("zi3", ["z", "ii3"]),
        ("si4", ["s", "ii4"]),
        ("er2", ["er2"]),
        ("huar1", ["h", "ua1", ERHUA]),
        ("n2", ["n2"]),  # syllabic nasals
        ("hm5", ["h", "m5"]),
    ],
)
def test_syllables_split_into_an_initial_and_a_toned_final(syllable: str, symbols: list) -> None:
    assert syllable_symbols(syllable) == symbols
    assert set(symbols) <= set(MANDARIN_SYMBOLS)


def test_every_reading_of_pypinyin_fits_the_inventory_and_bad_syllables_are_refused() -> None:
    from pypinyin.constants import PINYIN_DICT
    from pypinyin.contrib.tone_convert import to_tone3

    readings = {
        to_tone3(r, neutral_tone_with_five=True) for v in PINYIN_DICT.values() for r in v.split(",")
    }
    assert len(readings) > 1400
    known = set(MANDARIN_SYMBOLS)
    assert all(set(syllable_symbols(r)) <= known for r in readings)
    for bad in ("hao", "hao6", "zh3", "xyz1", ""):
        with pytest.raises(ValueError, match="pinyin"):
            syllable_symbols(bad)


@pytest.mark.parametrize(
    ("text", "pinyin"),
    [
        ("银行", "yin2 hang2"),  # polyphones from the phrase dictionary
        ("行走", "xing2 zou3"),
        ("重要", "zhong4 yao4"),
        ("重新", "chong2 xin1"),
        ("长大", "zhang3 da4"),
        ("长度", "chang2 du4"),
        ("你好", "ni2 hao3"),  # third-tone sandhi
        ("展览馆", "zhan2 lan2 guan3"),
        ("我也很好", "wo2 ye3 hen2 hao3"),
        ("我 很好", "wo3 hen2 hao3"),  # across a word gap, from the right
        ("我们的", "wo3 men5 de5"),  # a neutral tone breaks the run
        ("一个", "yi2 ge4"),  # 一
        ("一天", "yi4 tian1"),
        ("一起", "yi4 qi3"),
        ("第一", "di4 yi1"),
        ("统一的", "tong3 yi1 de5"),
        ("看一看", "kan4 yi5 kan4"),
        ("一月", "yi1 yue4"),
        ("一万", "yi2 wan4"),
        ("一百一十", "yi4 bai3 yi1 shi2"),
        ("一九", "yi1 jiu3"),
        ("不是", "bu2 shi4"),  # 不
        ("不好", "bu4 hao3"),
        ("是不是", "shi4 bu5 shi4"),
        ("哪儿", "nar3"),  # erhua
        ("花儿", "huar1"),
        ("一点儿", "yi4 dianr3"),
        ("一会儿", "yi2 huir4"),
        ("女儿", "nv3 er2"),  # a full syllable
        ("婴儿", "ying1 er2"),
        ("儿子", "er2 zi5"),
        ("2024年", "er4 ling2 er4 si4 nian2"),
    ],
)
def test_readings_after_sandhi_and_erhua(
    frontend: MandarinPhonemizer, text: str, pinyin: str
) -> None:
    assert frontend.syllables(text) == pinyin.split()


def test_without_tone_sandhi_the_citation_tones_are_kept() -> None:
    plain = MandarinPhonemizer(tone_sandhi=False)
    assert plain.syllables("你好一个不是") == ["ni3", "hao3", "yi1", "ge4", "bu4", "shi4"]


def test_symbols_of_a_sentence(frontend: MandarinPhonemizer) -> None:
    assert frontend.phonemize("你好，世界！") == [
        " ", "n", "i2", "h", "ao3", ",", " ", "sh", "iii4", "j", "ie4", "!",
    ]  # fmt: skip
    assert frontend.phonemize("哪儿好") == [" ", "n", "a2", ERHUA, "h", "ao3", "."]
    assert frontend.phonemize("我 爱 北京") == [
        " ", "uo3", " ", "ai4", " ", "b", "ei3", "j", "ing1", ".",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "pauses"),
    [
        ("一、二；三：四", ", , , ."),  # 、；： -> ","; a final "." added
        ("好……吧", ", ."),  # an ellipsis is a comma
        ("真的？！", "!"),  # the stronger (later) mark
        ("你好吗?", "?"),
        ("《红楼梦》“很好”——是的。", ", ."),  # quotes and titles dropped, dashes a comma
        ("（注）好", "."),
    ],
)
def test_punctuation_becomes_pauses(frontend: MandarinPhonemizer, text: str, pauses: str) -> None:
    symbols = frontend.phonemize(text)
    assert [s for s in symbols if s in PAUSES] == pauses.split()
    assert set(symbols) <= set(MANDARIN_SYMBOLS)


@pytest.mark.parametrize(
    ("n", "hanzi"),
    [
        (0, "零"),
        (2, "二"),
        (10, "十"),
        (15, "十五"),
        (22, "二十二"),
        (101, "一百零一"),
        (110, "一百一十"),
        (200, "两百"),
        (1001, "一千零一"),
        (1010, "一千零一十"),
        (2222, "两千二百二十二"),
        (10010, "一万零一十"),
        (10100, "一万零一百"),
        (20000, "两万"),
        (101000, "十万一千"),
        (1000100, "一百万零一百"),
        (100010000, "一亿零一万"),
        (110000000, "一亿一千万"),
        (1200000000, "十二亿"),
        (10**12, "一万亿"),
    ],
)
def test_cardinals(n: int, hanzi: str) -> None:
    assert cardinal(n) == hanzi


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("3.5", "三点五"),
        ("0.25", "零点二五"),
        ("10.05", "十点零五"),
        ("50%", "百分之五十"),
        ("涨了3.5%", "涨了百分之三点五"),
        ("2024年", "二零二四年"),
        ("2024-01-05", "二零二四年一月五日"),
        ("13812345678", "幺三八幺二三四五六七八"),
        ("010-12345678", "零幺零幺二三四五六七八"),
        ("007", "零零七"),
        ("1234567890123456", "一二三四五六七八九零一二三四五六"),
        ("2个人", "两个人"),
        ("第2个", "第二个"),
        ("2月2号", "二月二号"),
        ("12个", "十二个"),
        ("2万人", "两万人"),
        ("1,000,000元", "一百万元"),
        ("¥5", "五元"),
        ("8:05", "八点零五分"),
        ("2:00", "两点"),
        ("3-5个", "三到五个"),
        ("-5度", "负五度"),
    ],
)
def test_numbers_are_read_out(text: str, said: str) -> None:
    assert normalize_numbers(text) == said


def test_cardinal_refuses_numbers_out_of_range() -> None:
    with pytest.raises(ValueError, match="10\\^12"):
        cardinal(10**12 + 1)


def test_full_width_digits_and_punctuation_are_folded(frontend: MandarinPhonemizer) -> None:
    assert frontend.phonemize("２０２４年！") == frontend.phonemize("2024年!")


def test_long_text_is_split_into_sentences_and_long_sentences_are_cut() -> None:
    frontend = MandarinPhonemizer(max_symbols=20)
    split = MandarinPhonemizer().sentences("你好。今天天气很好！你去吗？“去。”好")
    assert [p[-1] for p in split] == [".", "!", "?", ".", "."]  # the closing quote stays
    assert split[3] == [WORD_GAP, "q", "v4", "."] and split[4] == [WORD_GAP, "h", "ao3", "."]
    text = (
        "我们今天去公园散步，天气很好，孩子们在草地上跑来跑去。中华人民共和国中央人民政府今天成立了"
    )
    pieces = frontend.sentences(text)
    assert len(pieces) >= 5 and all(len(p) <= 20 for p in pieces)
    assert all(p[0] == WORD_GAP and p[-1] in PAUSES for p in pieces)
    initials = set(INITIALS)
    for piece in pieces:  # no syllable is cut between its initial and its final
        assert all(
            b not in initials and b[-1].isdigit()
            for a, b in itertools.pairwise(piece)
            if a in initials
        )
    first, second = text.split("。")
    whole = [s for part in (first, second) for s in frontend.phonemize(part) if s not in " ,."]
    assert [s for p in pieces for s in p if s not in " ,."] == whole  # nothing lost or repeated


def test_ids_round_trip(frontend: MandarinPhonemizer) -> None:
    symbols = frontend.phonemize("我 爱 北京")
    ids = frontend.encode("我 爱 北京")
    assert [frontend.tokens[i] for i in ids] == symbols == [frontend.symbols[i] for i in ids]
    assert frontend.decode(ids) == "| uo3 | ai4 | b ei3 j ing1 ."
    assert all(0 < i < frontend.vocab_size for i in ids)
    assert frontend.vocab_size == len(frontend.symbols) == len(MANDARIN_SYMBOLS)
    assert MandarinPhonemizer.SYMBOLS == frontend.symbols  # read by models without building one
    for sentence in MandarinPhonemizer.EXAMPLE_SENTENCES:
        assert frontend.decode(frontend.encode(sentence)).split() == [
            "|" if s == WORD_GAP else s for s in frontend.phonemize(sentence)
        ]
    assert frontend.symbols_to_ids(list(frontend.symbols)) == list(range(frontend.vocab_size))
    starts = frontend.word_boundaries(ids)
    assert [frontend.tokens[i] for i, s in zip(ids, starts, strict=True) if s] == [
        "uo3",
        "ai4",
        "b",
    ]
    with pytest.raises(ConvaiError, match=r"unknown Mandarin TTS symbols \['HH'\]"):
        frontend.symbols_to_ids(["b", "HH"])


def test_unreadable_characters_are_named_or_skipped() -> None:
    strict = MandarinPhonemizer()
    with pytest.raises(
        ConvaiError, match=r"cannot read 'G' \(U\+0047\) at index 3 .*and 3 more.*skip_unknown=True"
    ):
        strict.phonemize("我爱 GPU😀")
    with pytest.raises(ConvaiError, match=r"'Ｇ' \(U\+FF27\) at index 6 "):
        strict.sentences("你好。中文：ＧＰＵ")
    with pytest.raises(ConvaiError, match="nothing to say"):
        strict.sentences("。？！")
    lenient = MandarinPhonemizer(skip_unknown=True)
    assert lenient.phonemize("我爱 GPU😀") == strict.phonemize("我爱")
    assert lenient.dropped == {"G": 1, "P": 1, "U": 1, "😀": 1}
    with pytest.raises(ConvaiError, match="nothing to say"):
        lenient.sentences("abc 😀")


def test_user_lexicon_wins_and_bad_entries_are_named() -> None:
    frontend = MandarinPhonemizer(user_lexicon={"银行": "yin2 xing2", "GPU": "ji1 pi1 you1"})
    assert frontend.syllables("银行家") == ["yin2", "xing2", "jia1"]
    assert frontend.phonemize("用GPU") == [" ", "iong4", "j", "i1", "p", "i1", "iou1", "."]
    fixed = MandarinPhonemizer(user_lexicon={"你": "ni3"})
    assert fixed.syllables("你好") == ["ni3", "hao3"]  # never changed by sandhi
    with pytest.raises(ConfigError, match=r"user_lexicon\['x'\].*'zh3'"):
        MandarinPhonemizer(user_lexicon={"x": "zh3"})
    with pytest.raises(ConfigError, match=r"user_lexicon\['y'\].*needs a word and its pinyin"):
        MandarinPhonemizer(user_lexicon={"y": ""})


def test_builds_from_the_registry_and_to_config_round_trips() -> None:
    node = {
        "name": "tts/mandarin_pinyin",
        "user_lexicon": {"银行": "yin2 xing2"},
        "max_symbols": 64,
        "skip_unknown": True,
        "tone_sandhi": False,
    }
    frontend = build("tokenizers", node, path="model.frontend")
    assert isinstance(frontend, MandarinPhonemizer)
    assert frontend.to_config() == node
    again = build("tokenizers", frontend.to_config(), path="model.frontend")
    assert again.symbols == frontend.symbols and again.to_config() == node
    text = "银行你好x。"
    assert again.sentences(text) == frontend.sentences(text)
    with pytest.raises(ConfigError, match="max_symbols"):
        build(
            "tokenizers", {"name": "tts/mandarin_pinyin", "max_symbol": 64}, path="model.frontend"
        )
    with pytest.raises(ConfigError, match="at least 16"):
        MandarinPhonemizer(max_symbols=8)
