"""English grapheme-to-phoneme conversion: the CMU dictionary, a user lexicon, and rules.

A word is looked up, in order, in the user lexicon (``{"convai": "K AA N V AY"}``), in the CMU
dictionary (134k words, from the pocketsphinx wheel, BSD licensed), then composed: a possessive or
plural of a known word, a known word with a common suffix ("-ness", "-ing"...), or two or three
known words joined ("snowboarder" -> "snow" + "boarder"). Only what none of these covers goes to
letter-to-sound rules; short all-capital words (acronyms) are spelled letter by letter.
:attr:`EnglishG2P.fallbacks` counts the words that needed composition or rules, so a data report
can tell how much text the dictionary did not know.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

from convai_core.errors import ConfigError, ConvaiError
from convai_tts.text.symbols import ARPABET, VOWELS

__all__ = ["CMUDICT_MEMBER", "CMUDICT_REQUIREMENT", "EnglishG2P", "cmudict_path", "load_lexicon"]

CMUDICT_REQUIREMENT = "pocketsphinx==5.1.1"
CMUDICT_MEMBER = "pocketsphinx/model/en-us/cmudict-en-us.dict"
CMUDICT_SHA256 = "20b5c293e1f311fb375fe067e500ec5636f4fc7af5594967263696def9b23bfe"

_PHONEMES = frozenset(ARPABET)
_ALTERNATE = re.compile(r"\(\d+\)$")

# Letter names, for acronyms spelled out ("NASA" is in the dictionary; "XQR" is not).
_LETTER_NAMES: dict[str, str] = {
    "a": "EY", "b": "B IY", "c": "S IY", "d": "D IY", "e": "IY", "f": "EH F", "g": "JH IY",
    "h": "EY CH", "i": "AY", "j": "JH EY", "k": "K EY", "l": "EH L", "m": "EH M", "n": "EH N",
    "o": "OW", "p": "P IY", "q": "K Y UW", "r": "AA R", "s": "EH S", "t": "T IY", "u": "Y UW",
    "v": "V IY", "w": "D AH B AH L Y UW", "x": "EH K S", "y": "W AY", "z": "Z IY",
}  # fmt: skip

# Suffixes whose sound does not depend on the root (the root must be a dictionary word).
_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("ness", "N AH S"), ("less", "L AH S"), ("ment", "M AH N T"), ("ments", "M AH N T S"),
    ("ing", "IH NG"), ("ings", "IH NG Z"), ("ly", "L IY"), ("ful", "F AH L"), ("er", "ER"),
    ("ers", "ER Z"), ("able", "AH B AH L"), ("ish", "IH SH"), ("like", "L AY K"),
    ("ship", "SH IH P"), ("hood", "HH UH D"), ("dom", "D AH M"),
)  # fmt: skip

# Letter-to-sound rules, longest grapheme first. Each is (grapheme, phonemes, where) with where
# one of "any", "start" (word-initial only) or "end" (word-final only).
_RULES: tuple[tuple[str, str, str], ...] = (
    ("tion", "SH AH N", "any"), ("sion", "ZH AH N", "any"), ("ture", "CH ER", "any"),
    ("ough", "AO", "any"), ("augh", "AO", "any"), ("eigh", "EY", "any"), ("tch", "CH", "any"),
    ("igh", "AY", "any"), ("sch", "S K", "any"), ("dge", "JH", "any"), ("que", "K", "end"),
    ("kn", "N", "start"), ("wr", "R", "start"), ("ph", "F", "any"), ("sh", "SH", "any"),
    ("ch", "CH", "any"), ("th", "TH", "any"), ("wh", "W", "any"), ("ck", "K", "any"),
    ("ng", "NG", "any"), ("qu", "K W", "any"), ("gh", "G", "start"), ("gh", "", "any"),
    ("ee", "IY", "any"), ("ea", "IY", "any"), ("oo", "UW", "any"), ("ou", "AW", "any"),
    ("ow", "OW", "any"), ("oi", "OY", "any"), ("oy", "OY", "any"), ("ai", "EY", "any"),
    ("ay", "EY", "any"), ("au", "AO", "any"), ("aw", "AO", "any"), ("ei", "EY", "any"),
    ("ey", "IY", "end"), ("ie", "IY", "any"), ("ue", "UW", "any"), ("ew", "UW", "any"),
    ("er", "ER", "any"), ("ir", "ER", "any"), ("ur", "ER", "any"), ("ar", "AA R", "any"),
    ("or", "AO R", "any"), ("y", "Y", "start"), ("y", "IY", "end"), ("y", "IH", "any"),
    ("a", "AE", "any"), ("b", "B", "any"), ("c", "K", "any"), ("d", "D", "any"),
    ("e", "EH", "any"), ("f", "F", "any"), ("g", "G", "any"), ("h", "HH", "any"),
    ("i", "IH", "any"), ("j", "JH", "any"), ("k", "K", "any"), ("l", "L", "any"),
    ("m", "M", "any"), ("n", "N", "any"), ("o", "AA", "any"), ("p", "P", "any"),
    ("q", "K", "any"), ("r", "R", "any"), ("s", "S", "any"), ("t", "T", "any"),
    ("u", "AH", "any"), ("v", "V", "any"), ("w", "W", "any"), ("x", "K S", "any"),
    ("z", "Z", "any"),
)  # fmt: skip
_LONG_VOWEL = {"a": "EY", "e": "IY", "i": "AY", "o": "OW", "u": "UW"}
_SOFT = frozenset("eiy")


def cmudict_path() -> Path:
    """The CMU dictionary file, extracted once from the pocketsphinx wheel into the cache."""
    from convai_core.pretrained import cache_dir
    from convai_core.wheels import extract_members

    folder = extract_members(
        CMUDICT_REQUIREMENT,
        {CMUDICT_MEMBER: CMUDICT_SHA256},
        cache_dir() / "cmudict-pocketsphinx-5.1.1",
        use="the CMU pronouncing dictionary (English G2P)",
    )
    return folder / Path(CMUDICT_MEMBER).name


def _check_phonemes(phonemes: list[str], where: str) -> list[str]:
    unknown = [p for p in phonemes if p not in _PHONEMES]
    if unknown or not phonemes:
        what = f"unknown phonemes {unknown}" if unknown else "no phonemes"
        raise ConfigError(
            f"{where}: {what}; a pronunciation is ARPAbet phonemes without stress, separated by "
            f"spaces (known: {' '.join(ARPABET)})"
        )
    return phonemes


def _strip_stress(phoneme: str) -> str:
    return phoneme.rstrip("012")


@lru_cache(maxsize=4)
def _read_lexicon(path: str) -> dict[str, tuple[str, ...]]:
    entries: dict[str, tuple[str, ...]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            word, *phonemes = line.split()
            if not phonemes:
                raise ConvaiError(f"{path}, line {number}: {word!r} has no pronunciation")
            word = _ALTERNATE.sub("", word).lower()
            pron = [_strip_stress(p).upper() for p in phonemes]
            _check_phonemes(pron, f"{path}, line {number} ({word!r})")
            entries.setdefault(word, tuple(pron))  # the first pronunciation is the usual one
    return entries


def load_lexicon(path: str | Path) -> dict[str, tuple[str, ...]]:
    """A CMU-format lexicon (``word PH ON EMES`` per line, ``word(2)`` for alternates, stress
    digits dropped) as ``{word: phonemes}``, keeping each word's first pronunciation.

    Raises:
        ConvaiError: a line without a pronunciation or with an unknown phoneme (names the line).
    """
    return dict(_read_lexicon(str(Path(path).expanduser().resolve())))


class EnglishG2P:
    """Words to ARPAbet phonemes.

    Args:
        lexicon: a CMU-format dictionary file; ``None`` uses the CMU dictionary of the
            pocketsphinx wheel (fetched once into the cache).
        user_lexicon: ``{word: "PH ON EMES"}`` entries that win over the dictionary.

    Attributes:
        fallbacks: words not in either lexicon, by how they were pronounced (``composed``,
            ``rules`` or ``spelled``), summed over every call.
    """

    def __init__(
        self,
        lexicon: str | Path | None = None,
        user_lexicon: Mapping[str, str] | None = None,
    ) -> None:
        self.lexicon_path = Path(lexicon) if lexicon is not None else cmudict_path()
        self._lexicon = _read_lexicon(str(self.lexicon_path.expanduser().resolve()))
        self.user_lexicon: dict[str, tuple[str, ...]] = {}
        for word, pron in (user_lexicon or {}).items():
            phonemes = _check_phonemes(pron.upper().split(), f"user_lexicon[{word!r}]")
            self.user_lexicon[word.lower()] = tuple(phonemes)
        self.fallbacks: Counter[str] = Counter()

    def known(self, word: str) -> bool:
        """Whether ``word`` (any case) is in the user lexicon or the dictionary."""
        lowered = word.lower()
        return lowered in self.user_lexicon or lowered in self._lexicon

    def lookup(self, word: str) -> tuple[str, ...] | None:
        lowered = word.lower()
        return self.user_lexicon.get(lowered) or self._lexicon.get(lowered)

    def __call__(self, word: str) -> list[str]:
        """The phonemes of one word (letters, digits spelled out beforehand, apostrophes)."""
        found = self.lookup(word)
        if found is not None:
            return list(found)
        letters = word.strip("'")
        if not letters:
            return []
        found = self.lookup(letters)  # "dogs'" -> "dogs"
        if found is not None:
            return list(found)
        if letters.isupper() and len(letters) <= 5 and letters.isalpha():
            self.fallbacks["spelled"] += 1
            return self.spell(letters)
        composed = self._compose(letters.lower())
        if composed is not None:
            self.fallbacks["composed"] += 1
            return composed
        self.fallbacks["rules"] += 1
        return letter_to_sound(letters.lower())

    @staticmethod
    def spell(word: str) -> list[str]:
        """Letter names ("FBI" -> EH F B IY AY)."""
        return [p for c in word.lower() if c in _LETTER_NAMES for p in _LETTER_NAMES[c].split()]

    def _compose(self, word: str) -> list[str] | None:
        for ending, sound in (("'s", None), ("s'", "Z"), ("'", "")):
            if word.endswith(ending) and len(word) > len(ending):
                root = self.lookup(word[: -len(ending)])
                if root is not None:
                    tail = sound if sound is not None else _plural_sound(root)
                    return [*root, *tail.split()]
        if word.endswith("s") and not word.endswith("ss"):
            root = self.lookup(word[:-1])
            if root is not None:
                return [*root, *_plural_sound(root).split()]
        for suffix, sound in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                stem = word[: -len(suffix)]
                root = self.lookup(stem) or (
                    self.lookup(stem + "e") if suffix[0] in "aei" else None
                )
                if root is not None:
                    return [*root, *sound.split()]
        return self._split_compound(word)

    def _split_compound(self, word: str) -> list[str] | None:
        """The fewest known words (three letters or more, at most three) that make ``word``."""
        best: dict[int, tuple[int, list[str]]] = {0: (0, [])}
        for end in range(3, len(word) + 1):
            for start in range(0, end - 2):
                if start not in best or best[start][0] >= 3:
                    continue
                pron = self.lookup(word[start:end])
                if pron is None:
                    continue
                pieces, phonemes = best[start]
                if end not in best or best[end][0] > pieces + 1:
                    best[end] = (pieces + 1, [*phonemes, *pron])
        found = best.get(len(word))
        return found[1] if found is not None and found[0] >= 2 else None


def _plural_sound(root: Iterable[str]) -> str:
    last = list(root)[-1]
    if last in {"S", "Z", "SH", "ZH", "CH", "JH"}:
        return "IH Z"
    return "S" if last in {"P", "T", "K", "F", "TH"} else "Z"


def letter_to_sound(word: str) -> list[str]:
    """Rule-based pronunciation of a lower-case word the lexicons do not know.

    Longest-match grapheme rules with a few context rules: a final silent "e" lengthens the
    vowel before the last consonant ("bake"), "c" and "g" soften before e/i/y, doubled consonants
    sound once. It is a guess meant to be intelligible, not a learned model.
    """
    letters = "".join(c for c in word if c.isalpha())
    silent_e = len(letters) > 2 and letters.endswith("e") and letters[-2] not in "aeiouy"
    if silent_e:
        letters = letters[:-1]
    long_at = -1
    if silent_e and len(letters) >= 2 and letters[-2] in _LONG_VOWEL:
        long_at = len(letters) - 2
    phonemes: list[str] = []
    i = 0
    while i < len(letters):
        if i == long_at:
            phonemes.append(_LONG_VOWEL[letters[i]])
            i += 1
            continue
        if i > 0 and letters[i] == letters[i - 1] and letters[i] not in "aeiou":
            i += 1  # doubled consonant
            continue
        nxt = letters[i + 1] if i + 1 < len(letters) else ""
        if letters[i] == "c" and nxt in _SOFT:
            phonemes.append("S")
            i += 1
            continue
        if letters[i] == "g" and nxt in _SOFT:
            phonemes.append("JH")
            i += 1
            continue
        for grapheme, sound, where in _RULES:
            if not letters.startswith(grapheme, i):
                continue
            if where == "start" and i != 0:
                continue
            if where == "end" and i + len(grapheme) != len(letters):
                continue
            phonemes.extend(sound.split())
            i += len(grapheme)
            break
        else:
            i += 1  # not a letter we have a rule for
    if not any(p in VOWELS for p in phonemes) and phonemes:
        phonemes.insert(1 if len(phonemes) > 1 else 0, "AH")
    return phonemes
