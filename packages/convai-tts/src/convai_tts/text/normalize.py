"""English text normalization for speech synthesis: write out what a reader would say.

Unlike the ASR normalizer (which maps transcripts into a character set), this one keeps case and
the punctuation that shapes prosody, and reads aloud what is written in symbols: money ("$3.50" ->
"three dollars fifty cents", "$2 million" -> "two million dollars"), percentages, ordinals
("21st"), years ("1990"), decimals, times ("3:30 pm"), common abbreviations ("Dr." -> "doctor",
"e.g." -> "for example") and symbols ("&" -> "and"). :func:`split_sentences` cuts text into
sentences after normalization (so the periods of abbreviations are gone by then).
"""

from __future__ import annotations

import re
import unicodedata

from convai_core.numbers import number_to_words, spell_integer

__all__ = ["normalize", "split_sentences"]

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"'})

# Abbreviations read as words. Matched case-sensitively at word starts, with their period.
_ABBREVIATIONS: dict[str, str] = {
    "Mr.": "mister", "Mrs.": "missus", "Ms.": "miz", "Dr.": "doctor", "Prof.": "professor",
    "St.": "saint", "Jr.": "junior", "Sr.": "senior", "Gen.": "general", "Col.": "colonel",
    "Lt.": "lieutenant", "Capt.": "captain", "Sgt.": "sergeant", "Gov.": "governor",
    "Sen.": "senator", "Rep.": "representative", "Rev.": "reverend", "Mt.": "mount",
    "Ave.": "avenue", "Blvd.": "boulevard", "Rd.": "road", "Inc.": "incorporated",
    "Ltd.": "limited", "Co.": "company", "Corp.": "corporation", "Dept.": "department",
    "Jan.": "January", "Feb.": "February", "Mar.": "March", "Apr.": "April", "Aug.": "August",
    "Sept.": "September", "Sep.": "September", "Oct.": "October", "Nov.": "November",
    "Dec.": "December", "approx.": "approximately", "etc.": "et cetera", "vs.": "versus",
    "e.g.": "for example", "i.e.": "that is", "a.m.": "a m", "p.m.": "p m",
}  # fmt: skip
_ABBREVIATION_RE = re.compile(
    r"(?<![\w.])("
    + "|".join(re.escape(a) for a in sorted(_ABBREVIATIONS, key=len, reverse=True))
    + r")"
)
_NUMBER_ABBREVIATION_RE = re.compile(r"\bNo\.\s*(?=[0-9])")
_CURRENCIES: dict[str, tuple[str, str, str, str]] = {
    # symbol: (unit, units, cent, cents)
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
}
_SCALE = r"(?:\s+(thousand|million|billion|trillion))?"
_MONEY_RE = re.compile(r"([$£€])\s?([0-9]+(?:,[0-9]{3})*)(?:\.([0-9]{1,2}))?\b" + _SCALE)
_PERCENT_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s?%")
_TIME_RE = re.compile(r"\b([0-9]{1,2}):([0-5][0-9])(?![0-9])(?:\s?([AaPp])(?:\.[Mm]\.|[Mm]\b))?")
_NUMBER_RE = re.compile(r"[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?(?:st|nd|rd|th)?", re.IGNORECASE)
_SYMBOLS = {"&": " and ", "+": " plus ", "@": " at ", "=": " equals ", "#": " number "}
_DASHES_RE = re.compile(r"\s*[\u2012\u2013\u2014\u2015]\s*|\s+-\s+|--+")
_WHITESPACE_RE = re.compile(r"\s+")
# A sentence ends at . ! or ? (possibly with closing quotes) followed by space.
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def _money(match: re.Match[str]) -> str:
    unit, units, cent, cents = _CURRENCIES[match.group(1)]
    whole = int(match.group(2).replace(",", ""))
    fraction = match.group(3)
    scale = match.group(4)
    if scale:  # "$2.5 million" -> "two point five million dollars"
        amount = number_to_words(match.group(2) + (f".{fraction}" if fraction else ""))
        return f" {amount} {scale} {units} "
    parts = []
    if whole or not fraction:
        parts.append(f"{spell_integer(whole)} {unit if whole == 1 else units}")
    if fraction:
        value = int(fraction.ljust(2, "0"))
        if value:
            parts.append(f"{spell_integer(value)} {cent if value == 1 else cents}")
    return " " + " and ".join(parts) + " "


def _time(match: re.Match[str]) -> str:
    hours, minutes, half = int(match.group(1)), int(match.group(2)), match.group(3)
    words = spell_integer(hours)
    if minutes == 0:
        words += "" if half else " o'clock"
    elif minutes < 10:
        words += f" oh {spell_integer(minutes)}"
    else:
        words += f" {spell_integer(minutes)}"
    if half:
        words += f" {half.lower()} m"
    return f" {words} "


def normalize(text: str) -> str:
    """Write out ``text`` as it is read aloud (case and prosodic punctuation kept)."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).translate(_QUOTES)
    text = _TIME_RE.sub(_time, text)
    text = _NUMBER_ABBREVIATION_RE.sub("number ", text)
    text = _ABBREVIATION_RE.sub(lambda m: _ABBREVIATIONS[m.group(1)], text)
    text = _MONEY_RE.sub(_money, text)
    text = _PERCENT_RE.sub(lambda m: f" {number_to_words(m.group(1))} percent ", text)
    text = _NUMBER_RE.sub(lambda m: f" {number_to_words(m.group(0))} ", text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = _DASHES_RE.sub(", ", text)
    text = _WHITESPACE_RE.sub(" ", text).strip()
    return re.sub(r"\s+([,.!?;:])", r"\1", text)


def split_sentences(text: str) -> list[str]:
    """Sentences of normalized ``text`` (cut after . ! ? followed by a space); empty ones dropped."""
    return [s.strip() for s in _SENTENCE_END_RE.split(text) if s.strip()]
