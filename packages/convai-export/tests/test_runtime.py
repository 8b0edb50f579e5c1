"""The torch-free runtime: its numpy parts match convai-asr's torch code, and an exported bundle
transcribes real recordings with the same text as `model.transcribe`, also from a fresh venv that
has only onnxruntime, numpy and soundfile."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as taf

from convai_export.runtime import decode
from convai_export.runtime.audio import read_audio, resample
from convai_export.runtime.features import mel_features

SRC = Path(__file__).resolve().parents[1] / "src"


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


def test_bundle_transcribes_like_the_model(trained, real_recordings, tmp_path: Path) -> None:
    from convai_export.runtime import Bundle

    _, model = trained
    expected = model.transcribe(real_recordings)
    assert any(
        r["text"] for r in expected
    )  # the model emits words, so the comparison means something
    for opset, inside in ((18, True), (16, False)):  # opset 16 has no STFT: numpy features
        out = tmp_path / f"bundle{opset}"
        report = model.export(out, format="asr-bundle", opset=opset, verify_audio=real_recordings)
        assert report.passed
        meta = json.loads((out / "bundle.json").read_text())
        assert meta["includes_preprocessor"] is inside
        assert (out / "filterbank.npy").exists() is not inside
        got = Bundle(out).transcribe(real_recordings)
        assert [r["text"] for r in got] == [r["text"] for r in expected]
        assert [r["words"] for r in got] == [r["words"] for r in expected]


def test_bundle_long_audio_is_chunked_like_the_model(trained, real_recordings, tmp_path) -> None:
    from convai_export.runtime import Bundle

    _, model = trained
    joined = np.concatenate([sf.read(p, dtype="float32")[0] for p in real_recordings[:5]] * 2)
    sf.write(tmp_path / "long.wav", joined, 16000)
    assert len(joined) / 16000 > 40  # longer than one 30 s chunk
    model.export(tmp_path / "b", format="asr-bundle", verify_audio=real_recordings[:2])
    got = Bundle(tmp_path / "b").transcribe([tmp_path / "long.wav"])
    assert got[0]["text"] == model.transcribe([tmp_path / "long.wav"])[0]["text"]


def test_runtime_in_a_fresh_venv_without_torch(trained, real_recordings, tmp_path: Path) -> None:
    """The runtime's promise: only onnxruntime, numpy and soundfile installed, no torch."""
    _, model = trained
    bundle = tmp_path / "bundle"
    model.export(bundle, format="asr-bundle", verify_audio=real_recordings)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "onnxruntime", "numpy", "soundfile"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = str(SRC)  # the convai_export sources; nothing else of convai
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u; print(u.find_spec('torch'), u.find_spec('convai_core'))",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert probe.stdout.split() == ["None", "None"], probe.stdout + probe.stderr
    out = tmp_path / "out.jsonl"
    run = subprocess.run(
        [
            str(python),
            "-m",
            "convai_export.runtime",
            "transcribe",
            "--bundle",
            str(bundle),
            *map(str, real_recordings),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = [json.loads(line) for line in out.read_text().splitlines()]
    expected = model.transcribe(real_recordings)
    assert [r["text"] for r in got] == [r["text"] for r in expected]
    assert [r["audio_filepath"] for r in got] == [str(p) for p in real_recordings]
    assert "torch" not in run.stderr
