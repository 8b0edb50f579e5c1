"""convai-asr-runtime's numpy parts equal convai-asr's torch code: resampling, audio reading,
mel features, greedy decoding, word timestamps and SentencePiece detokenization. (The runtime's
own tests, in its package, need no torch; these compare it with the torch path.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as taf

from convai_asr_runtime import decode
from convai_asr_runtime.audio import read_audio, resample
from convai_asr_runtime.features import mel_features


@pytest.mark.parametrize(("orig", "new"), [(22050, 16000), (8000, 16000), (48000, 16000)])
def test_resample_matches_torchaudio(orig: int, new: int) -> None:
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(orig * 2 + 123).astype(np.float32) * 0.3
    ours = resample(signal, orig, new)
    exact = taf.resample(torch.from_numpy(signal).double(), orig, new).numpy()
    assert ours.shape == exact.shape
    assert np.abs(ours - exact).max() < 1e-6  # the same filter as torchaudio's, within rounding
    # torchaudio in float32 (what load_audio runs) is itself up to ~2e-5 off at 22.05 kHz
    single = taf.resample(torch.from_numpy(signal), orig, new).numpy()
    assert np.abs(ours - single).max() < 1e-4


def test_read_audio_mixes_and_resamples_like_load_audio(tmp_path: Path) -> None:
    from convai_asr.audio import load_audio

    rng = np.random.default_rng(1)
    stereo = (rng.standard_normal((22050 * 3, 2)) * 0.2).astype(np.float32)
    sf.write(tmp_path / "s.wav", stereo, 22050, subtype="FLOAT")
    ours = read_audio(tmp_path / "s.wav", 16000, offset=0.5, duration=1.7)
    ref = load_audio(tmp_path / "s.wav", sample_rate=16000, offset=0.5, duration=1.7).numpy()
    assert ours.shape == ref.shape and np.abs(ours - ref).max() < 1e-4


def test_numpy_features_match_the_preprocessor() -> None:
    from convai_asr.modules.features import MelSpectrogramPreprocessor

    pre = MelSpectrogramPreprocessor(n_mels=64).eval()
    generator = torch.Generator().manual_seed(0)
    audio = torch.randn(3, 24000, generator=generator) * 0.1
    lengths = torch.tensor([24000, 17001, 9000])
    with torch.no_grad():
        ref, ref_len = pre(audio, lengths)
    settings = {
        "n_fft": pre.n_fft,
        "hop_length": pre.hop_length,
        "win_length": pre.win_length,
        "preemph": pre.preemph,
        "log": pre.log,
        "log_zero_guard": pre.log_zero_guard,
        "normalize": pre.normalize,
        "pad_to": pre.pad_to,
        "mag_power": pre.mag_power,
    }
    ours, ours_len = mel_features(
        audio.numpy(), lengths.numpy(), settings, pre.filterbank.numpy(), pre.window.numpy()
    )
    assert ours.shape == tuple(ref.shape)
    assert (ours_len == ref_len.numpy()).all()
    assert np.abs(ours - ref.numpy()).max() < 2e-3


def test_greedy_and_words_match_convai_asr() -> None:
    from convai_asr.decoding.greedy import ctc_greedy_decode, word_timestamps
    from convai_asr.text.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.english()
    tokens, blank = tokenizer.tokens, tokenizer.vocab_size
    rng = np.random.default_rng(3)
    # peaked random paths with runs, blanks and spaces
    path = rng.choice(blank + 1, size=200, p=_peaked(blank + 1))
    path = np.repeat(path, rng.integers(1, 4, size=200))
    log_probs = np.full((len(path), blank + 1), -9.0, dtype=np.float32)
    log_probs[np.arange(len(path)), path] = -0.01
    hyp = ctc_greedy_decode(torch.from_numpy(log_probs)[None], torch.tensor([len(path)]), blank)[0]
    ids, frames = decode.greedy(log_probs, blank)
    assert ids == hyp.token_ids and frames == hyp.token_frames
    assert decode.detokenize(ids, tokens, "char") == tokenizer.decode(ids)
    pieces = [tokens[i] for i in ids]
    expected = word_timestamps(hyp, pieces, tokenizer.word_boundaries(ids), 0.02)
    assert decode.words(ids, frames, tokens, "char", 0.02) == expected


def _peaked(n: int) -> np.ndarray:
    p = np.ones(n)
    p[-1] = n  # blank often
    p[0] = n / 4  # space often
    return p / p.sum()


def test_sentencepiece_detokenize_matches_sentencepiece(tmp_path: Path) -> None:
    from convai_asr.testing import SENTENCES
    from convai_asr.text.tokenizers import SentencePieceTokenizer, train_sentencepiece

    model_file = train_sentencepiece(SENTENCES * 5, vocab_size=40, output_dir=tmp_path / "sp")
    sp = SentencePieceTokenizer(model_file)
    for text in SENTENCES[:6]:
        ids = sp.encode(text)
        assert decode.detokenize(ids, sp.tokens, "sentencepiece") == sp.decode(ids)
        assert decode.word_starts(ids, sp.tokens, "sentencepiece") == sp.word_boundaries(ids)
