"""The Mandarin TTS frontend: Chinese text to pinyin initials, toned finals and pauses (registered
tokenizer ``tts/mandarin_pinyin``).

Steps: full-width characters folded (NFKC), words of the user lexicon found, every other character
checked (Hanzi, digits, punctuation; anything else is an error or, with ``skip_unknown``, dropped
and counted), numbers read out (:func:`normalize_numbers`), sentences split after 。！？, Hanzi
read by pypinyin (its phrase dictionary picks the reading of polyphones: 银行 hang2, 行走 xing2),
erhua merged, tone sandhi applied, and each syllable split into an initial and a toned final.

Symbols. An initial (21, ``zh``, ``b``...) and a *toned final* (``ang3``): the tone is part of the
final rather than a symbol of its own because the tone is the pitch contour of the final, so one
symbol per final gives the duration model and the aligner one span per rhyme, with nothing
between an initial and its vowel that has no duration of its own; 42 finals x 5 tones is a small
inventory. Finals are written in their full form whatever the spelling: zero-initial ``y``/``w``
syllables become ``i``/``u``/``v`` finals (you -> ``iou``, wei -> ``uei``, yu -> ``v``), ``iu``,
``ui`` and ``un`` are expanded (liu -> l ``iou``), ü after j/q/x and in lü/nü is ``v``, the apical
vowels are ``ii`` (zi ci si) and ``iii`` (zhi chi shi ri), syllabic nasals are ``m``/``n``/``ng``,
the neutral tone is 5 and the erhua suffix (哪儿 nar3) is the symbol ``rr`` after the final.

Word gaps. pypinyin's segmentation only knows the phrases whose reading differs from the reading
of their characters (银行 is one, 朋友 is not), so its boundaries are not word boundaries. A word
gap is therefore written where the text has one: at whitespace (text segmented beforehand, e.g.
by jieba, gets a gap between its words), at "·" in transcribed names, and after every pause mark.

Tone sandhi (our rules, not pypinyin's ``tone_sandhi`` option, which works inside each of its
phrases only and so misses 很好 and changes 一 in numbers read digit by digit): 一 keeps tone 1
at the end, after 第 or a numeral, before a digit and in 一月/一号, becomes 2 before a fourth
(or neutral) tone, 5 between a repeated verb (看一看) and 4 elsewhere; 不 becomes 2 before a
fourth tone, 5 in A-不-A questions and stays 4 elsewhere; in a run of third tones all but the last
become second tones (three or fewer) or every second one from the end does (longer runs), inside
each word, then from right to left across word gaps. User-lexicon syllables are never changed.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from convai_core.errors import ConfigError, ConvaiError
from convai_tts.text.symbols import PAD, PAUSES, WORD_GAP

__all__ = [
    "ERHUA",
    "FINALS",
    "INITIALS",
    "MANDARIN_SYMBOLS",
    "MandarinPhonemizer",
    "cardinal",
    "normalize_numbers",
    "syllable_symbols",
]

#: The 21 initials of pinyin (zero-initial syllables have none).
INITIALS: tuple[str, ...] = (
    "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
    "j", "q", "x", "zh", "ch", "sh", "r", "z", "c", "s",
)  # fmt: skip
#: Finals in their full form (see the module docstring), each used with a tone 1-5.
FINALS: tuple[str, ...] = (
    "a", "o", "e", "ai", "ei", "ao", "ou", "an", "en", "ang", "eng", "ong", "er",
    "i", "ia", "io", "ie", "iao", "iou", "ian", "in", "iang", "ing", "iong",
    "u", "ua", "uo", "uai", "uei", "uan", "uen", "uang", "ueng",
    "v", "ve", "van", "vn", "ii", "iii", "m", "n", "ng",
)  # fmt: skip
#: The rhotic suffix of an erhua syllable (花儿 -> h ua1 rr).
ERHUA = "rr"
#: Every symbol of the Mandarin models, by id: pad, word gap and pauses (shared with English),
#: initials, toned finals (final-major: a1 a2 a3 a4 a5 o1 ...), erhua.
MANDARIN_SYMBOLS: tuple[str, ...] = (
    PAD,
    WORD_GAP,
    *PAUSES,
    *INITIALS,
    *(f"{final}{tone}" for final in FINALS for tone in range(1, 6)),
    ERHUA,
)

_FINAL_SET = frozenset(FINALS)
_SYLLABLE_RE = re.compile(r"([a-zêü:]+)([1-5])")
_CONTRACTED = {"iu": "iou", "ui": "uei", "un": "uen"}

# ------------------------------------------------------------------ characters
#: Characters folded before NFKC (which would turn the ellipsis into three full stops).
_FOLD = {"\u2026": ",", "\u22ef": ",", "\u2014": ",", "\u2013": ",", "\u2015": ","}
_PAUSE_OF = {
    ",": ",", "、": ",", ";": ",", ":": ",", "。": ".", ".": ".", "?": "?", "!": "!",
}  # fmt: skip
_GAPS = frozenset(" \t\n\r\f\v·•・")
_SILENT = frozenset("\"'“”‘’「」『』《》〈〉()[]{}<>【】〔〕~-*_/\\|^`\u200b\u200c\u200d\ufeff")
_NUMBER_MARKS = frozenset("0123456789%¥$€")
#: Private-use code points stand for the user-lexicon words found in a text.
_PLACEHOLDER = 0xE000
_MAX_LEXICON = 0xF8FF - _PLACEHOLDER


@functools.cache
def _readings() -> Mapping[int, str]:
    """pypinyin's reading table by code point (imported on first use: it takes a second)."""
    from pypinyin.constants import PINYIN_DICT

    return PINYIN_DICT


def _is_placeholder(char: str) -> bool:
    return _PLACEHOLDER <= ord(char) <= _PLACEHOLDER + _MAX_LEXICON


# ------------------------------------------------------------------ numbers
_DIGITS = "零一二三四五六七八九"
_MAX_CARDINAL = 10**12


def _below_10k(n: int) -> str:
    parts: list[str] = []
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = (n // value) % 10
        if digit == 0:
            zero = bool(parts)
            continue
        if zero:
            parts.append("零")
            zero = False
        parts.append(_DIGITS[digit] + unit)
    return "".join(parts)


def _grouped(n: int) -> str:
    for unit, name in ((10**8, "亿"), (10**4, "万")):
        if n >= unit:
            high, rest = divmod(n, unit)
            text = _grouped(high) + name
            if rest:
                text += ("零" if rest < unit // 10 else "") + _grouped(rest)
            return text
    return _below_10k(n)


def cardinal(n: int) -> str:
    """``n`` (0 to 10^12) in Chinese numerals: 10 -> 十, 1010 -> 一千零一十, 2000 -> 两千,
    100010000 -> 一亿零一万.

    Raises:
        ValueError: ``n`` is negative or above 10^12.
    """
    if not 0 <= n <= _MAX_CARDINAL:
        raise ValueError(f"cardinal() reads 0 to 10^12, got {n}")
    if n == 0:
        return "零"
    text = _grouped(n)
    if text.startswith("一十"):  # 10-19 at the start: 十五, 十万
        text = text[1:]
    if text.startswith("二") and text[1:2] in ("百", "千", "万", "亿"):
        text = "两" + text[1:]
    return text


def _digits(digits: str, phone: bool = False) -> str:
    """Digit by digit; phone numbers say 1 as 幺 (yao1), as is usual on the mainland."""
    return "".join("幺" if phone and d == "1" else _DIGITS[int(d)] for d in digits)


def _number(integer: str, fraction: str | None = None) -> str:
    value = int(integer)
    if value > _MAX_CARDINAL or (len(integer) > 1 and integer.startswith("0")):
        text = _digits(integer)
    else:
        text = cardinal(value)
    return text + ("点" + _digits(fraction) if fraction else "")


_NUM = r"([0-9]+)(?:\.([0-9]+))?"
_ISO_DATE_RE = re.compile(r"(?<![0-9])([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?![0-9])")
_DASHED_RE = re.compile(r"(?<![0-9.])\+?[0-9]+(?:-[0-9]+)+(?![0-9])")
_MOBILE_RE = re.compile(r"(?<![0-9.])1[3-9][0-9]{9}(?![0-9])")
_LONG_ZERO_RE = re.compile(r"(?<![0-9.])0[0-9]{6,}(?![0-9])")
_THOUSANDS_RE = re.compile(r"(?<![0-9])[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])")
_MONEY_RE = re.compile(r"([¥$€])\s?" + _NUM)
_CURRENCY = {"¥": "元", "$": "美元", "€": "欧元"}
_PERCENT_RE = re.compile(_NUM + r"\s?%")
_TIME_RE = re.compile(r"(?<![0-9])([0-9]{1,2}):([0-5][0-9])(?::([0-5][0-9]))?(?![0-9])")
_YEAR_RE = re.compile(r"(?<![0-9.])([0-9]{4})(?=\s?年)")
_RANGE_RE = re.compile(r"(?<![0-9.])" + _NUM + r"\s?[~-]\s?" + _NUM + r"(?![0-9])")
_NEGATIVE_RE = re.compile(r"(?<![0-9A-Za-z.])-(?=[0-9])")
_NUMBER_RE = re.compile(r"(?<![0-9])" + _NUM)
#: After a bare 2, these words take 两 (两个, 两万) rather than 二 (二月, 二号, 二楼).
_LIANG_BEFORE = re.compile(
    r"\s?(?:个|位|只|条|张|本|件|次|天|周|年(?!级)|岁|名|种|台|辆|家|块|元|点|小时|分钟|倍|斤|"
    r"公斤|千克|米|公里|瓶|杯|碗|双|对|套|层|份|句|首|百|千|万|亿)"
)


def _dashed(match: re.Match[str]) -> str:
    groups = match.group(0).lstrip("+").split("-")
    if sum(len(g) for g in groups) >= 7:  # a telephone number: 010-12345678
        return ("加" if match.group(0).startswith("+") else "") + _digits("".join(groups), True)
    return match.group(0)  # a range or a code: left to the rules below


def _time(match: re.Match[str]) -> str:
    hours, minutes, seconds = int(match.group(1)), int(match.group(2)), match.group(3)
    if hours > 24:
        return match.group(0)
    text = ("两" if hours == 2 else cardinal(hours)) + "点"
    if minutes or seconds:
        text += ("零" if minutes < 10 else "") + cardinal(minutes) + "分"
    if seconds:
        text += ("零" if int(seconds) < 10 else "") + cardinal(int(seconds)) + "秒"
    return text


def _plain_number(match: re.Match[str]) -> str:
    integer, fraction = match.group(1), match.group(2)
    before = match.string[: match.start()]
    if (
        integer == "2"
        and not fraction
        and not before.endswith("第")
        and _LIANG_BEFORE.match(match.string, match.end())
    ):
        return "两"
    return _number(integer, fraction)


def normalize_numbers(text: str) -> str:
    """Write out the numbers of Chinese ``text`` in Chinese numerals, as they are read.

    Cardinals up to 10^12 with the 零 rules (1010 -> 一千零一十) and 两 where usual (200 ->
    两百, "2个" -> 两个), decimals (3.5 -> 三点五), percentages (50% -> 百分之五十), money
    (¥5 -> 五元), times (8:05 -> 八点零五分), ranges (3-5 -> 三到五), negative numbers, years
    (2024年 -> 二零二四年) and dates (2024-01-05), and digit by digit: telephone numbers (11-digit
    mobiles, dashed numbers of 7 digits or more, with 幺 for 1), numbers with a leading zero
    and numbers above 10^12. Thousands separators ("1,000") are removed first. Expects ASCII
    digits (fold full-width text with NFKC first).
    """
    text = _ISO_DATE_RE.sub(
        lambda m: (
            f"{_digits(m.group(1))}年{cardinal(int(m.group(2)))}月{cardinal(int(m.group(3)))}日"
        ),
        text,
    )
    text = _DASHED_RE.sub(_dashed, text)
    text = _MOBILE_RE.sub(lambda m: _digits(m.group(0), phone=True), text)
    text = _LONG_ZERO_RE.sub(lambda m: _digits(m.group(0), phone=True), text)
    text = _THOUSANDS_RE.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _MONEY_RE.sub(lambda m: _number(m.group(2), m.group(3)) + _CURRENCY[m.group(1)], text)
    text = _PERCENT_RE.sub(lambda m: "百分之" + _number(m.group(1), m.group(2)), text)
    text = _TIME_RE.sub(_time, text)
    text = _YEAR_RE.sub(lambda m: _digits(m.group(1)), text)
    text = _RANGE_RE.sub(
        lambda m: _number(m.group(1), m.group(2)) + "到" + _number(m.group(3), m.group(4)), text
    )
    text = _NEGATIVE_RE.sub("负", text)
    return _NUMBER_RE.sub(_plain_number, text)


# ------------------------------------------------------------------ syllables
def _split_syllable(base: str) -> tuple[str, str]:
    """Toneless pinyin (no erhua) -> (initial or "", final in its full form)."""
    if base in ("m", "n", "ng"):
        return "", base
    if base in ("hm", "hng"):
        return "h", base[1:]
    if base == "ê":
        return "", "e"
    if base.startswith("y"):
        rest = base[1:]
        if rest.startswith("u"):  # yu yue yuan yun
            return "", "v" + rest[1:]
        return "", rest if rest.startswith("i") else "i" + rest  # yi yin / ya you yong
    if base.startswith("w"):
        rest = base[1:]
        if rest == "ong":
            return "", "ueng"
        return "", rest if rest.startswith("u") else "u" + rest  # wu / wa wei wen
    initial = base[:2] if base[:2] in ("zh", "ch", "sh") else base[:1]
    if initial not in INITIALS:
        initial = ""
    final = base[len(initial) :]
    if initial in ("j", "q", "x") and final.startswith("u"):
        final = "v" + final[1:]
    final = _CONTRACTED.get(final, final)
    if final == "i" and initial in ("zh", "ch", "sh", "r"):
        final = "iii"
    elif final == "i" and initial in ("z", "c", "s"):
        final = "ii"
    return initial, final


def syllable_symbols(syllable: str) -> list[str]:
    """One pinyin syllable with its tone number to symbols: "zhuang1" -> ["zh", "uang1"],
    "you3" -> ["iou3"], "lv4" / "lü4" -> ["l", "v4"], "huar1" -> ["h", "ua1", "rr"].

    Raises:
        ValueError: not a pinyin syllable with a tone number 1-5.
    """
    match = _SYLLABLE_RE.fullmatch(syllable.strip().lower())
    if match is None:
        raise ValueError(f"{syllable!r} is not pinyin with a tone number 1-5 (e.g. 'hao3')")
    base = match.group(1).replace("u:", "v").replace("ü", "v")
    erhua = base.endswith("r") and base != "er"
    initial, final = _split_syllable(base[:-1] if erhua else base)
    if final not in _FINAL_SET:
        raise ValueError(f"{syllable!r} is not a pinyin syllable (no final {final!r})")
    symbols = [initial] if initial else []
    symbols.append(f"{final}{match.group(2)}")
    if erhua:
        symbols.append(ERHUA)
    return symbols


@dataclass
class _Syllable:
    """One syllable of a phrase while its tone is decided."""

    char: str  # its Hanzi ("" for user-lexicon syllables)
    base: str  # toneless pinyin
    tone: int
    word: int  # index of its word (whitespace-delimited) in the sentence
    fixed: bool = False  # from the user lexicon: never changed
    erhua: bool = False

    @property
    def pinyin(self) -> str:
        return f"{self.base}{'r' if self.erhua else ''}{self.tone}"


# 儿 is a full syllable, not erhua, after these (女儿, 婴儿, 新生儿, 混血儿, 幸运儿...) and
# before these (儿子, 儿童).
_FULL_ER_AFTER = frozenset("女婴孤幼健宠胎患男少育弃生血妻乳运产")
_FULL_ER_BEFORE = frozenset("子童女科时歌孙媳戏郎化")
_ER = frozenset("儿兒")
_NUMERALS = frozenset("零〇一二三四五六七八九十百千万亿两幺")
_DIGIT_CHARS = frozenset("零〇一二三四五六七八九幺")
# 一 keeps its first tone after these (统一, 唯一, 之一, 如一...).
_YI_FIRST_AFTER = frozenset("第统唯之单同专划合归纯初如逐独")


def _merge_erhua(phrase: list[_Syllable]) -> list[_Syllable]:
    out: list[_Syllable] = []
    for i, syllable in enumerate(phrase):
        previous = out[-1] if out else None
        after = phrase[i + 1].char if i + 1 < len(phrase) else ""
        if (
            syllable.char in _ER
            and syllable.base == "er"
            and not syllable.fixed
            and previous is not None
            and previous.word == syllable.word
            and not previous.erhua
            and previous.base != "er"
            and (
                syllable.tone == 5
                or (previous.char not in _FULL_ER_AFTER and after not in _FULL_ER_BEFORE)
            )
        ):
            previous.erhua = True
            continue
        out.append(syllable)
    return out


def _yi_bu(phrase: list[_Syllable]) -> None:
    citation = [1 if s.char == "一" else 4 if s.char == "不" else s.tone for s in phrase]
    for i, syllable in enumerate(phrase):
        if syllable.fixed or syllable.tone == 5 or syllable.char not in ("一", "不"):
            continue
        last = i + 1 == len(phrase)
        before = phrase[i - 1].char if i > 0 else ""
        after = "" if last else phrase[i + 1].char
        following = 0 if last else citation[i + 1]
        if before and before == after and before not in _NUMERALS:
            syllable.tone = 5  # 看一看, 是不是
        elif syllable.char == "不":
            syllable.tone = 2 if following in (4, 5) else 4
        elif (
            last
            or before in _NUMERALS
            or before in _YI_FIRST_AFTER
            or after in _DIGIT_CHARS
            or after in ("月", "号")
        ):
            syllable.tone = 1
        else:
            syllable.tone = 2 if following in (4, 5) else 4


def _third_tone(phrase: list[_Syllable]) -> None:
    start = 0
    while start < len(phrase):  # runs of third tones inside each word
        end = start
        while (
            end < len(phrase) and phrase[end].tone == 3 and phrase[end].word == phrase[start].word
        ):
            end += 1
        run = phrase[start:end]
        for syllable in run[:-1] if len(run) <= 3 else run[-2::-2]:
            if not syllable.fixed:
                syllable.tone = 2
        start = max(end, start + 1)
    for left, right in reversed(list(itertools.pairwise(phrase))):  # across words
        if left.word != right.word and left.tone == 3 and right.tone == 3 and not left.fixed:
            left.tone = 2


# ------------------------------------------------------------------ sentences
_SENTENCE_RE = re.compile(r"[^.!?。]*(?:[.!?。]+[\"'”’」』)\]》]*|$)")


def _cut(symbols: list[str], limit: int) -> list[list[str]]:
    """Cut a sentence into pieces of at most ``limit`` symbols: at the last comma of a window
    (if past its first third), else at its last word gap, else between two syllables."""
    initials = frozenset(INITIALS)
    out: list[list[str]] = []
    while len(symbols) > limit:
        window = symbols[:limit]
        cut = max((i for i, s in enumerate(window) if s == ","), default=-1)
        if cut < limit // 3:
            cut = max((i for i, s in enumerate(window) if s == WORD_GAP and i > 0), default=-1)
        if cut >= limit // 3:
            head = window[: cut + 1]
            head[-1] = ","
            rest = symbols[cut + 1 :]
        else:  # a syllable starts at an initial, or at a final without one
            cut = max(
                i
                for i in range(2, limit)
                if window[i] in initials
                or (window[i][-1:].isdigit() and window[i - 1] not in initials)
            )
            head = [*window[:cut], ","]
            rest = symbols[cut:]
        out.append(head)
        symbols = [WORD_GAP, *(rest[1:] if rest[:1] == [WORD_GAP] else rest)]
    out.append(symbols)
    return out


class MandarinPhonemizer:
    """Mandarin text to pinyin symbols and ids (the core ``Tokenizer`` protocol).

    Args:
        user_lexicon: ``{word: "pinyin with tone numbers"}`` (``{"银行": "yin2 hang2"}``), found
            in the text before anything else, longest first, and never changed by tone sandhi.
            A word may hold any characters (``{"GPU": "ji1 pi1 you1"}``).
        max_symbols: longest sentence a model takes in one piece; longer ones are cut.
        skip_unknown: drop characters the frontend cannot read (Latin letters, emoji) and count
            them in :attr:`dropped`, instead of refusing the text.
        tone_sandhi: apply the tone sandhi rules (see the module docstring); ``False`` gives the
            citation tones (一 yi1, 不 bu4, third tones kept), for corpora labelled that way.

    Attributes:
        dropped: characters dropped (unreadable ones with ``skip_unknown``, stray currency or
            percent signs), counted over every call.

    Raises:
        ConfigError: a user-lexicon entry is not pinyin, or ``max_symbols`` is below 16.
    """

    #: The symbol inventory by id (models size their embeddings from it without building one).
    SYMBOLS: tuple[str, ...] = MANDARIN_SYMBOLS
    #: Sentences a model's export is verified on.
    EXAMPLE_SENTENCES: tuple[str, ...] = ("你好，今天天气怎么样？", "我们一起去公园散步吧。")

    def __init__(
        self,
        user_lexicon: Mapping[str, str] | None = None,
        max_symbols: int = 400,
        skip_unknown: bool = False,
        tone_sandhi: bool = True,
    ) -> None:
        self.max_symbols = int(max_symbols)
        if self.max_symbols < 16:
            raise ConfigError(f"max_symbols must be at least 16, got {max_symbols}")
        self.skip_unknown = bool(skip_unknown)
        self.tone_sandhi = bool(tone_sandhi)
        self.user_lexicon: dict[str, tuple[str, ...]] = {}
        for word, pinyin in (user_lexicon or {}).items():
            key = unicodedata.normalize("NFKC", str(word)).strip()
            syllables = str(pinyin).lower().split()
            where = f"user_lexicon[{word!r}]"
            if not key or not syllables or any(_is_placeholder(c) for c in key):
                raise ConfigError(f"{where}: needs a word and its pinyin, e.g. 'yin2 hang2'")
            for syllable in syllables:
                try:
                    syllable_symbols(syllable)
                except ValueError as error:
                    raise ConfigError(
                        f"{where}: {error}; write syllables with tone numbers separated by "
                        "spaces, e.g. 'yin2 hang2' ('lv4' or 'lü4' for ü, 'huar1' for erhua)"
                    ) from None
            self.user_lexicon[key] = tuple(syllables)
        if len(self.user_lexicon) > _MAX_LEXICON:
            raise ConfigError(f"user_lexicon holds more than {_MAX_LEXICON} words")
        self._words = list(self.user_lexicon)
        self._word_index = {w: i for i, w in enumerate(self._words)}
        self._lexicon_re = (
            re.compile("|".join(re.escape(w) for w in sorted(self._words, key=len, reverse=True)))
            if self._words
            else None
        )
        self._ids = {symbol: i for i, symbol in enumerate(MANDARIN_SYMBOLS)}
        self.dropped: Counter[str] = Counter()

    # -------------------------------------------------------------- Tokenizer protocol
    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol, by id (:data:`MANDARIN_SYMBOLS`)."""
        return MANDARIN_SYMBOLS

    @property
    def vocab_size(self) -> int:
        return len(MANDARIN_SYMBOLS)

    @property
    def tokens(self) -> list[str]:
        return list(MANDARIN_SYMBOLS)

    def encode(self, text: str) -> list[int]:
        """One sentence of text to symbol ids (use :meth:`sentences` for longer text)."""
        return self.symbols_to_ids(self.phonemize(text))

    def decode(self, ids: Sequence[int]) -> str:
        """Ids to their symbols, separated by spaces (word gaps shown as ``|``)."""
        return " ".join(
            "|" if MANDARIN_SYMBOLS[i] == WORD_GAP else MANDARIN_SYMBOLS[i] for i in ids if i > 0
        )

    def word_boundaries(self, ids: Sequence[int]) -> list[bool]:
        previous = WORD_GAP
        starts = []
        for i in ids:
            symbol = MANDARIN_SYMBOLS[i]
            starts.append(previous == WORD_GAP and symbol not in (WORD_GAP, *PAUSES))
            previous = symbol if symbol not in PAUSES else WORD_GAP
        return starts

    def to_config(self) -> dict[str, Any]:
        return {
            "name": "tts/mandarin_pinyin",
            "user_lexicon": {w: " ".join(p) for w, p in self.user_lexicon.items()},
            "max_symbols": self.max_symbols,
            "skip_unknown": self.skip_unknown,
            "tone_sandhi": self.tone_sandhi,
        }

    # -------------------------------------------------------------- text -> symbols
    def symbols_to_ids(self, symbols: Sequence[str]) -> list[int]:
        unknown = sorted({s for s in symbols if s not in self._ids})
        if unknown:
            raise ConvaiError(
                f"unknown Mandarin TTS symbols {unknown}; known symbols are "
                f"{' '.join(MANDARIN_SYMBOLS[1:])}"
            )
        return [self._ids[s] for s in symbols]

    def phonemize(self, sentence: str) -> list[str]:
        """Symbols of one sentence (raw text: numbers are read, nothing is split or cut): a
        leading word gap, words separated by gaps, pauses for punctuation, a final pause.

        Raises:
            ConvaiError: a character the frontend cannot read (see ``skip_unknown``), or
                nothing to say.
        """
        return self._symbols(self._prepare(sentence), sentence)

    def syllables(self, sentence: str) -> list[str]:
        """The pinyin syllables of one sentence as they are said (after sandhi and erhua):
        "你好" -> ["ni2", "hao3"], "哪儿" -> ["nar3"]."""
        return [s.pinyin for words in self._phrases(self._prepare(sentence)) for s in words]

    def sentences(self, text: str) -> list[list[str]]:
        """Raw text to sentences of symbols, each at most ``max_symbols`` long.

        Raises:
            ConvaiError: a character the frontend cannot read, or nothing to say.
        """
        pieces: list[list[str]] = []
        for sentence in _SENTENCE_RE.findall(self._prepare(text)):
            if not sentence.strip():
                continue
            try:
                symbols = self._symbols(sentence, sentence)
            except ConvaiError:
                continue  # a stray mark between sentences
            pieces.extend(_cut(symbols, self.max_symbols))
        if not pieces:
            raise ConvaiError(
                f"nothing to say in {text[:80]!r}: it has no Chinese character or number"
            )
        return pieces

    # -------------------------------------------------------------- steps
    def _prepare(self, text: str) -> str:
        """Fold, find user-lexicon words (-> placeholders), check characters, read numbers."""
        folded: list[str] = []
        origin: list[int] = []
        for position, char in enumerate(text):
            for piece in _FOLD.get(char) or unicodedata.normalize("NFKC", char):
                folded.append(piece)
                origin.append(position)
        flat = "".join(folded)
        spans = list(self._lexicon_re.finditer(flat)) if self._lexicon_re else []
        out: list[str] = []
        unknown: list[int] = []
        start = 0
        for match in [*spans, None]:
            end = match.start() if match else len(flat)
            for i in range(start, end):
                char = flat[i]
                if self._readable(char):
                    out.append(char)
                elif self.skip_unknown:
                    self.dropped[text[origin[i]]] += 1
                elif not unknown or origin[i] != unknown[-1]:
                    unknown.append(origin[i])
            if match:
                out.append(chr(_PLACEHOLDER + self._word_index[match.group(0)]))
                start = match.end()
        if unknown:
            char = text[unknown[0]]
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise ConvaiError(
                f"the Mandarin frontend cannot read {char!r} (U+{ord(char):04X}) at index "
                f"{unknown[0]} of {text[:60]!r}{more}: it reads Chinese characters, digits and "
                "punctuation. Write it in Chinese characters, add the word to user_lexicon "
                "(e.g. {'GPU': 'ji1 pi1 you1'}), or build the frontend with skip_unknown=True "
                "to drop such characters."
            )
        return normalize_numbers(re.sub(r"\.{2,}", ",", "".join(out)))

    @staticmethod
    def _readable(char: str) -> bool:
        return (
            ord(char) in _readings()
            or char in _PAUSE_OF
            or char in _GAPS
            or char in _SILENT
            or char in _NUMBER_MARKS
            or char in "+.,:"
        )

    def _phrases(self, prepared: str) -> list[list[_Syllable]]:
        """The syllables of a prepared sentence, one list per phrase (between pauses), with
        erhua merged and tones decided."""
        from pypinyin import Style, lazy_pinyin

        readable = _readings()
        phrases: list[list[_Syllable]] = [[]]
        word = 0
        hanzi = ""

        def flush() -> None:
            nonlocal hanzi
            if hanzi:
                readings = lazy_pinyin(
                    hanzi, style=Style.TONE3, neutral_tone_with_five=True, errors="default"
                )
                for char, reading in zip(hanzi, readings, strict=True):
                    if not _SYLLABLE_RE.fullmatch(reading):
                        raise ConvaiError(f"pypinyin read {char!r} as {reading!r}, not pinyin")
                    phrases[-1].append(_Syllable(char, reading[:-1], int(reading[-1]), word))
                hanzi = ""

        for char in prepared:
            if ord(char) in readable:
                hanzi += char
                continue
            flush()
            if _is_placeholder(char):
                for pinyin in self.user_lexicon[self._words[ord(char) - _PLACEHOLDER]]:
                    phrases[-1].append(_Syllable("", pinyin[:-1], int(pinyin[-1]), word, True))
            elif char in _PAUSE_OF:
                phrases.append([])
                word += 1
            elif char in _GAPS:
                word += 1
            elif char not in _SILENT:
                self.dropped[char] += 1
        flush()
        for i, phrase in enumerate(phrases):
            phrase = phrases[i] = _merge_erhua(phrase)
            if self.tone_sandhi:
                _yi_bu(phrase)
                _third_tone(phrase)
            else:
                for syllable in phrase:
                    if not syllable.fixed and syllable.tone != 5:
                        syllable.tone = {"一": 1, "不": 4}.get(syllable.char, syllable.tone)
        return phrases

    def _symbols(self, prepared: str, original: str) -> list[str]:
        phrases = self._phrases(prepared)
        marks = iter(_PAUSE_OF[c] for c in prepared if c in _PAUSE_OF)
        symbols: list[str] = [WORD_GAP]
        for index, phrase in enumerate(phrases):
            if index > 0:
                pause = next(marks)
                if symbols[-1] in PAUSES:  # "?!" or ",." -> the stronger (later) mark
                    symbols[-1] = pause
                elif len(symbols) > 1:
                    if symbols[-1] == WORD_GAP:
                        symbols.pop()
                    symbols.append(pause)
            previous_word = -1
            for syllable in phrase:
                if syllable.word != previous_word and symbols[-1] != WORD_GAP:
                    symbols.append(WORD_GAP)
                previous_word = syllable.word
                symbols.extend(syllable_symbols(syllable.pinyin))
        if len(symbols) == 1:
            raise ConvaiError(
                f"nothing to say in {original[:80]!r}: it has no Chinese character or number"
            )
        if symbols[-1] not in PAUSES:
            if symbols[-1] == WORD_GAP:
                symbols.pop()
            symbols.append(".")
        return symbols
