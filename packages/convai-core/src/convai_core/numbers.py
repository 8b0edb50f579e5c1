"""English number words, shared by the domains that turn text into speech or speech into text.

ASR normalizes training transcripts with :func:`number_to_words`; TTS reads numbers, money and
ordinals aloud with it. Spelling comes from ``inflect``, imported on first use (so importing this
module stays light).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import inflect

__all__ = ["number_to_words", "spell_integer"]

_ORDINAL_SUFFIXES = ("st", "nd", "rd", "th")


@lru_cache(maxsize=1)
def _engine() -> inflect.engine:
    import inflect

    return inflect.engine()


def _clean(words: str) -> str:
    """Drop the hyphens and commas inflect writes ("twenty-one, ..." -> "twenty one ...")."""
    return " ".join(words.replace("-", " ").replace(",", " ").split())


def _spell(number: int | str, **options: Any) -> str:
    """inflect's ``number_to_words`` (which returns a list only when asked for one)."""
    return cast(str, _engine().number_to_words(str(number), **options))


def spell_integer(number: int) -> str:
    """A non-negative integer in words, without "and" or hyphens ("121" -> "one hundred twenty
    one")."""
    return _clean(_spell(number, andword=""))


def _year_to_words(year: int) -> str:
    century, rest = divmod(year, 100)
    if year == 2000:
        return "two thousand"
    if 2000 < year < 2010:
        return f"two thousand {_spell(rest)}"
    if rest == 0:
        return f"{_spell(century)} hundred"
    if rest < 10:
        return f"{_spell(century)} oh {_spell(rest)}"
    return _clean(_spell(year, group=2))


def number_to_words(token: str) -> str:
    """Spell one ASCII number in English words, in the letters+space+apostrophe alphabet.

    Integers from 1100 to 2099 are read as years ("1990" -> "nineteen ninety", "1905" ->
    "nineteen oh five", "2005" -> "two thousand five"); ordinals ("21st" -> "twenty first"),
    decimals ("3.5" -> "three point five") and thousands separators ("1,000") are handled.

    Args:
        token: a match of ``[0-9]+(,[0-9]{3})*(.[0-9]+)?(st|nd|rd|th)?``.
    """
    lowered = token.lower()
    if lowered.endswith(_ORDINAL_SUFFIXES) and "." not in lowered:
        number = int(lowered[:-2].replace(",", ""))
        return _clean(_spell(_engine().ordinal(str(number))))
    if lowered.isdigit() and len(lowered) == 4 and 1100 <= int(lowered) <= 2099:
        return _year_to_words(int(lowered))
    return _clean(_spell(lowered.replace(",", "")))
