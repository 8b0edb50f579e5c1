"""Greedy CTC decoding, detokenization, word times and resampling, on hand-made inputs (their
equality with convai-asr's torch code is tested in convai-asr's test_runtime_parity.py)."""

from __future__ import annotations

import numpy as np
import pytest

from convai_asr_runtime import decode
from convai_asr_runtime.audio import AudioReadError, read_audio, resample


def _one_hot(path: list[int], vocab: int) -> np.ndarray:
    log_probs = np.full((len(path), vocab), -5.0, dtype=np.float32)
    log_probs[np.arange(len(path)), path] = -0.1
    return log_probs


def test_greedy_merges_repeats_and_drops_blanks() -> None:
    blank = 3
    ids, frames = decode.greedy(_one_hot([3, 0, 0, 3, 0, 1, 1, 3, 2], 4), blank)
    assert ids == [0, 0, 1, 2]  # the blank between the two 0s separates them
    assert frames == [1, 4, 5, 8]
    assert decode.greedy(_one_hot([3, 3], 4), blank) == ([], [])


def test_sentencepiece_pieces_become_words() -> None:
    tokens = ["<unk>", "\u2581he", "llo", "\u2581w", "or", "ld", "<0xC3>", "<0xA9>", "\u2581caf"]
    ids = [1, 2, 3, 4, 5, 8, 6, 7]
    assert decode.detokenize(ids, tokens, "sentencepiece") == "hello world café"
    assert decode.word_starts(ids, tokens, "sentencepiece") == [
        True, False, True, False, False, True, False, False
    ]  # fmt: skip
    words = decode.words(ids, list(range(0, 16, 2)), tokens, "sentencepiece", 0.04)
    assert [w["word"] for w in words[:2]] == ["hello", "world"] and len(words) == 3
    assert words[0] == {"word": "hello", "start": 0.0, "end": 0.12}
    assert decode.detokenize([0], tokens, "sentencepiece") == "\u2047"


def test_characters_split_at_spaces() -> None:
    tokens = [" ", "a", "b"]
    ids = [1, 2, 0, 0, 2]
    assert decode.detokenize(ids, tokens, "char") == "ab  b"
    words = decode.words(ids, [0, 1, 3, 4, 6], tokens, "char", 0.5)
    assert words == [
        {"word": "ab", "start": 0.0, "end": 1.0},
        {"word": "b", "start": 3.0, "end": 3.5},
    ]


@pytest.mark.parametrize(("orig", "new"), [(22050, 16000), (8000, 16000), (48000, 16000)])
def test_resample_keeps_a_tone_and_its_length(orig: int, new: int) -> None:
    seconds = 0.5
    t = np.arange(int(orig * seconds)) / orig
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = resample(tone, orig, new)
    assert out.shape == (int(np.ceil(len(tone) * new / orig)),)
    expected = np.sin(2 * np.pi * 440 * np.arange(len(out)) / new)
    middle = slice(len(out) // 4, 3 * len(out) // 4)  # away from the zero-padded edges
    assert np.abs(out[middle] - expected[middle]).max() < 1e-2
    assert resample(tone, orig, orig) is tone


def test_unreadable_audio_is_named(tmp_path) -> None:
    with pytest.raises(AudioReadError, match="does not exist or is not a file"):
        read_audio(tmp_path / "nope.wav", 16000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioReadError, match=r"cannot read audio file .*bad\.wav"):
        read_audio(tmp_path / "bad.wav", 16000)
