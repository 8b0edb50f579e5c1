"""The symbol inventory of convai's English TTS models: ARPAbet phonemes, word gaps, punctuation.

The CMU dictionary that ships inside the pocketsphinx wheel writes pronunciations in the 39
ARPAbet phonemes without stress marks, so the models read those. :data:`ARPABET_TO_IPA` gives each
phoneme's IPA form (espeak-ng's spelling of General American), used to show pronunciations and to
drive IPA-based teacher voices.
"""

from __future__ import annotations

__all__ = [
    "ARPABET",
    "ARPABET_TO_IPA",
    "PAD",
    "PAUSES",
    "SYMBOLS",
    "VOWELS",
    "WORD_GAP",
]

#: The 39 phonemes of the CMU dictionary (ARPAbet, no stress).
ARPABET: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH",
    "UW", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip

VOWELS: frozenset[str] = frozenset(
    {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
)

#: IPA of each ARPAbet phoneme as espeak-ng writes General American; AH and ER have an
#: unstressed form too (see :data:`UNSTRESSED_IPA`).
ARPABET_TO_IPA: dict[str, str] = {
    "AA": "ɑː", "AE": "æ", "AH": "ʌ", "AO": "ɔː", "AW": "aʊ", "AY": "aɪ", "B": "b", "CH": "tʃ",
    "D": "d", "DH": "ð", "EH": "ɛ", "ER": "ɜː", "EY": "eɪ", "F": "f", "G": "ɡ", "HH": "h",
    "IH": "ɪ", "IY": "iː", "JH": "dʒ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ",
    "OW": "oʊ", "OY": "ɔɪ", "P": "p", "R": "ɹ", "S": "s", "SH": "ʃ", "T": "t", "TH": "θ",
    "UH": "ʊ", "UW": "uː", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ",
}  # fmt: skip
UNSTRESSED_IPA: dict[str, str] = {"AH": "ə", "ER": "ɚ", "IY": "i"}

#: Padding (id 0): never produced by the frontend.
PAD = "<pad>"
#: The gap between two words (a short pause or none).
WORD_GAP = " "
#: Punctuation that shapes prosody: a pause and the sentence's intonation. Other marks are mapped
#: onto these (";" and ":" to ",") or dropped by the frontend.
PAUSES: tuple[str, ...] = (",", ".", "?", "!")

#: Every symbol a model reads, by id.
SYMBOLS: tuple[str, ...] = (PAD, WORD_GAP, *PAUSES, *ARPABET)
