"""tts/fastpitch: mel features, Griffin-Lim, the length regulator, learning, archive, export, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from convai_core.errors import ConvaiError
from convai_tts.audio import GriffinLim, MelSpectrogram
from convai_tts.data.dataset import DurationDataset, collate_durations
from convai_tts.models.fastpitch import FastPitchModel
from convai_tts.modules.fastspeech import regulate_length

TINY = {
    "name": "tts/fastpitch",
    "d_model": 96,
    "heads": 2,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "ff_dim": 256,
    "dropout": 0.0,
    "duration_predictor": {"hidden": 96, "dropout": 0.0},
    "optim": {"name": "adamw", "lr": 2e-3},
}


def test_a_clip_of_n_hops_gives_n_frames() -> None:
    mel = MelSpectrogram()
    for frames in (1, 7, 100):
        out = mel(torch.randn(2, frames * 256))
        assert out.shape == (2, 80, frames) and mel.frames(frames * 256) == frames


def test_griffin_lim_inverts_a_teacher_mel(teacher_corpus: Path) -> None:
    """Re-analysed, Griffin-Lim's audio has nearly the mel it was made from (log-mel L1 well
    below that of the same magnitudes with random phase)."""
    first = json.loads(teacher_corpus.read_text().splitlines()[0])
    audio, _ = sf.read(first["audio_filepath"], dtype="float32")
    analysis = MelSpectrogram()
    target = analysis(torch.from_numpy(audio)[None])
    rebuilt = GriffinLim(n_iter=32, power=1.0)(target)
    noise = GriffinLim(n_iter=0, power=1.0)(target)  # no iteration: random phase
    frames = target.shape[2] - 2

    def error(wave: torch.Tensor) -> float:
        return float((analysis(wave)[..., :frames] - target[..., :frames]).abs().mean())

    assert error(rebuilt) < 0.55 * error(noise), (error(rebuilt), error(noise))


def test_length_regulator_repeats_each_symbol_for_its_frames() -> None:
    x = torch.arange(6, dtype=torch.float32).reshape(1, 3, 2).repeat(2, 1, 1)
    durations = torch.tensor([[2, 0, 3], [1, 1, 0]])
    out, lengths = regulate_length(x, durations)
    assert lengths.tolist() == [5, 2] and out.shape == (2, 5, 2)
    assert out[0, :, 0].tolist() == [0, 0, 4, 4, 4]
    assert out[1, :, 0].tolist() == [0, 2, 0, 0, 0]  # zeros after the end


def _mel_l1(model: FastPitchModel, batch: dict[str, torch.Tensor]) -> float:
    with torch.no_grad():
        return float(model.losses(batch)["mel_l1"])


@pytest.fixture(scope="module")
def trained(teacher_corpus: Path) -> tuple[FastPitchModel, dict[str, torch.Tensor], dict]:
    """The tiny model fitted to the eight teacher sentences (teacher durations), 300 steps.
    Measured here at 300: mel L1 0.30 x the constant spectrum's and 0.09 x the start's, duration
    loss 0.001, predicted lengths within 1.2% (at 200 steps: 0.52 x, 0.16 x, 0.02, 4.6%)."""
    return _fit(teacher_corpus)


def _fit(
    teacher_corpus: Path, **config: object
) -> tuple[FastPitchModel, dict[str, torch.Tensor], dict]:
    """TINY (with ``config`` laid over it) fitted to the teacher sentences for 300 steps."""
    torch.manual_seed(0)
    model = FastPitchModel({**TINY, **config, "train_ds": {"manifest": str(teacher_corpus)}})
    dataset = DurationDataset(teacher_corpus)
    batch = collate_durations([dataset[i] for i in range(len(dataset))])
    keep = (torch.arange(batch["mel"].shape[2])[None] < batch["mel_lengths"][:, None]).unsqueeze(1)
    mean = (batch["mel"] * keep).sum(dim=(0, 2)) / keep.sum()
    constant = float(((batch["mel"] - mean[None, :, None]).abs() * keep).sum() / (keep.sum() * 80))
    start = {"mel_l1": _mel_l1(model, batch), "constant_l1": constant}
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(300):
        losses = model.losses(batch)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
    model.eval()
    start["duration_loss_end"] = float(losses["duration_loss"])
    return model, batch, start


def test_the_model_learns_the_sentences_mels_and_durations(trained) -> None:
    """Fitted to eight sentences, the mel error is far below that of the best constant
    spectrum (each band's mean), so it learned what each symbol sounds like, and the predicted
    durations add up to the teacher's lengths."""
    model, batch, start = trained
    l1 = _mel_l1(model, batch)
    assert l1 < 0.5 * start["constant_l1"] and l1 < 0.2 * start["mel_l1"], (l1, start)
    assert start["duration_loss_end"] < 0.1
    with torch.no_grad():
        _, lengths = model(batch["symbols"], batch["symbol_lengths"])
    ratio = lengths.float() / batch["mel_lengths"].float()
    assert ((ratio - 1).abs() < 0.15).all(), ratio


def test_two_frames_per_decoder_step_learn_as_well_and_export(
    teacher_corpus: Path, tmp_path: Path
) -> None:
    """reduction_factor=2: the decoder runs over half as many steps, the fitted model meets the
    same bounds as the one-frame model, each utterance gets its exact frame count (odd ones
    too), an utterance comes out the same alone as in a padded batch, and the export verifies."""
    model, batch, start = _fit(teacher_corpus, reduction_factor=2)
    l1 = _mel_l1(model, batch)
    assert l1 < 0.5 * start["constant_l1"] and l1 < 0.2 * start["mel_l1"], (l1, start)
    assert start["duration_loss_end"] < 0.1
    seen: list[int] = []
    hook = model.decoder.register_forward_hook(lambda m, args, out: seen.append(out.shape[1]))
    with torch.no_grad():
        mel, lengths = model(batch["symbols"], batch["symbol_lengths"])
        hook.remove()
        # the padded frame count is rounded up to whole decoder steps
        assert seen == [(int(lengths.max()) + 1) // 2] and mel.shape[2] == 2 * seen[0]
        ratio = lengths.float() / batch["mel_lengths"].float()
        assert ((ratio - 1).abs() < 0.15).all(), ratio
        # with the teacher's durations: odd and even frame counts, each decoded alone as in
        # the padded batch (a short last group of frames is the mean of its real frames only)
        encoded, _, _ = model._encode(batch["symbols"], batch["symbol_lengths"])
        together, counts = model._decode(encoded, batch["durations"])
        assert len({int(n) % 2 for n in counts}) == 2
        for row in range(len(counts)):
            n, frames = int(batch["symbol_lengths"][row]), int(counts[row])
            alone, _ = model._decode(
                encoded[row : row + 1, :n], batch["durations"][row : row + 1, :n]
            )
            assert alone.shape[2] == frames + frames % 2
            torch.testing.assert_close(
                alone[0, :, :frames], together[row, :, :frames], atol=1e-4, rtol=0
            )
    report = model.export(tmp_path / "voice_r2.onnx", format="onnx")
    assert report.passed and report.max_abs_diff < 1e-3
    with pytest.raises(ConvaiError, match=r"model\.reduction_factor=0"):
        FastPitchModel({**TINY, "reduction_factor": 0})


def test_archive_restores_identical_speech_and_export_is_verified(trained, tmp_path: Path) -> None:
    from convai_core.models.base import ModelBase

    model, _, _ = trained
    text = "Nothing ever changes. How much wood?"
    before = list(model.mels(text))
    path = model.save_to(tmp_path / "voice.convai")
    restored = ModelBase.restore_from(path)
    after = list(restored.mels(text))
    assert len(before) == len(after) == 2
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert "frontend.lexicon" in restored.artifacts  # the dictionary travels in the archive
    report = model.export(tmp_path / "voice.onnx", format="onnx")
    assert report is not None


def test_cli_speaks_long_text_into_a_wav(trained, tmp_path: Path, capsys) -> None:
    from convai_tts.cli import tts_main

    model, _, _ = trained
    archive = model.save_to(tmp_path / "voice.convai")
    out = tmp_path / "out.wav"
    code = tts_main(["Thank you. Please call Stella!", "--model", str(archive), "-o", str(out)])
    assert code == 0 and "s of audio" in capsys.readouterr().out
    audio, rate = sf.read(str(out))
    assert rate == 22050 and 0.5 < len(audio) / rate < 10 and np.abs(audio).max() > 0.1
    with pytest.raises(SystemExit):  # no text at all: argparse's usage error
        tts_main(["--model", str(archive), "-o", str(tmp_path / "none.wav")])
    assert tts_main(["☃ ...", "--model", str(archive), "-o", str(tmp_path / "none.wav")]) == 1
    assert "nothing to say" in capsys.readouterr().err and not (tmp_path / "none.wav").exists()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_manifest_lines_are_named_or_counted(teacher_corpus: Path, tmp_path: Path) -> None:
    good = json.loads(teacher_corpus.read_text().splitlines()[0])
    cases = {
        "not json": ("{oops", "line 1: not valid JSON"),
        "missing": (json.dumps({"audio_filepath": "x.wav"}), r"line 1: missing \['symbols'"),
        "unknown": (json.dumps({**good, "symbols": "HH QQ"}), r"line 1: unknown symbols \['QQ'\]"),
        "ragged": (json.dumps({**good, "durations": [1, 2]}), "line 1: durations must be"),
    }
    for name, (line, message) in cases.items():
        manifest = _write(tmp_path / f"{name}.jsonl", [line])
        with pytest.raises(ConvaiError, match=rf"{name}\.jsonl, {message}"):
            DurationDataset(manifest)
    mixed = _write(tmp_path / "mixed.jsonl", [json.dumps(good), "{oops", cases["ragged"][0]])
    dataset = DurationDataset(mixed, skip_bad=True)
    assert len(dataset) == 1 and dataset.skipped == {"bad_json": 1, "bad_durations": 1}
    shifted = _write(
        tmp_path / "shifted.jsonl",
        [json.dumps({**good, "durations": [d + 3 for d in good["durations"]]})],
    )
    with pytest.raises(ConvaiError, match=r"line 1: durations sum to .* frames but"):
        DurationDataset(shifted)[0]


def test_audio_at_another_rate_is_refused_with_the_fix(
    teacher_corpus: Path, tmp_path: Path
) -> None:
    good = json.loads(teacher_corpus.read_text().splitlines()[0])
    audio, _ = sf.read(good["audio_filepath"], dtype="float32")
    sf.write(str(tmp_path / "16k.wav"), audio, 16000)
    manifest = _write(
        tmp_path / "rate.jsonl", [json.dumps({**good, "audio_filepath": str(tmp_path / "16k.wav")})]
    )
    with pytest.raises(ConvaiError, match=r"line 1: .*16000 Hz, the model reads 22050 Hz.*prepare"):
        DurationDataset(manifest)[0]


def test_data_prepare_resamples_trims_and_refuses_narrowband(tmp_path: Path) -> None:
    from convai_tts.data.tools import prepare_manifest, report_manifest

    rate = 16000
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    silence = np.zeros(rate // 2, dtype=np.float32)
    sf.write(str(tmp_path / "a.wav"), np.concatenate([silence, tone, silence]), rate)
    sf.write(str(tmp_path / "short.wav"), tone[: rate // 10], rate)
    manifest = _write(
        tmp_path / "in.jsonl",
        [
            json.dumps({"audio_filepath": "a.wav", "text": "Hello there."}),
            json.dumps({"audio_filepath": "short.wav", "text": "Hi."}),
        ],
    )
    report = prepare_manifest(manifest, tmp_path / "out")
    assert report["kept"] == 1 and report["dropped"] == {"too_short": 1}
    assert report["warnings"] and "up-sampled" in report["warnings"][0]
    info = sf.info(str(tmp_path / "out" / "wavs" / "000000.wav"))
    assert info.samplerate == 22050 and 1.0 <= info.duration <= 1.2  # 0.5 s silences trimmed
    summary = report_manifest(tmp_path / "out" / "manifest.jsonl")
    assert summary["clips"] == 1 and summary["sample_rates"] == {"22050": 1}
    assert "HH" not in summary["missing_phonemes"] and summary["phoneme_coverage"] < 0.5
    sf.write(str(tmp_path / "phone.wav"), tone[:8000], 8000)
    narrow = _write(tmp_path / "narrow.jsonl", [json.dumps({"audio_filepath": "phone.wav"})])
    with pytest.raises(
        ConvaiError, match=r"narrow\.jsonl, line 1: phone\.wav is recorded at 8000 Hz"
    ):
        prepare_manifest(narrow, tmp_path / "out2")


def test_config_typos_are_named_with_the_closest_key() -> None:
    from convai_core.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"model\.encoder_layer\. Did you mean model\.encoder_layers"
    ):
        FastPitchModel({**TINY, "encoder_layer": 2})
    with pytest.raises(ConfigError, match=r"model\.duration_predictor\.hiden\. Did you mean"):
        FastPitchModel({**TINY, "duration_predictor": {"hiden": 8}})
    with pytest.raises(ConfigError, match=r"model\.train_ds\.batchsize\. Did you mean"):
        FastPitchModel({**TINY, "train_ds": {"manifest": "x", "batchsize": 2}}).train_dataloader()


def test_the_frontend_sets_the_symbol_inventory(tmp_path: Path) -> None:
    """A Mandarin frontend gives the model its pinyin inventory; the model speaks Chinese text
    sentence by sentence, and the frontend travels in the archive."""
    from convai_core.models.base import ModelBase
    from convai_tts.text.mandarin import MandarinPhonemizer

    model = FastPitchModel({**TINY, "frontend": {"name": "tts/mandarin_pinyin"}})
    assert model.embedding.num_embeddings == len(MandarinPhonemizer.SYMBOLS) > 200
    english = FastPitchModel(TINY)
    assert english.embedding.num_embeddings == len(english.frontend.tokens)
    mels = list(model.mels("你好，今天天气怎么样？我很好。"))
    assert len(mels) == 2 and all(m.shape[0] == 80 for m in mels)
    restored = ModelBase.restore_from(model.save_to(tmp_path / "zh.convai"))
    assert restored.frontend.tokens == model.frontend.tokens
