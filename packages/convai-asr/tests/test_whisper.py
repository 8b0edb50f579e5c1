"""Whisper encoders from CTranslate2 models: the reader, the modules, archives and fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from convai_asr.models.ctc import CTCModel
from convai_asr.modules.whisper import WhisperEncoder, WhisperMelPreprocessor
from convai_asr.pretrained.ct2 import read_ct2_model, write_ct2_model
from convai_asr.pretrained.importers import import_whisper_ct2, whisper_ctc_config
from convai_core.errors import ConvaiError
from convai_core.models.base import ModelBase

POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data/goforward.raw")


def tiny_whisper_variables(n_mels=16, d=32, layers=2, heads=4, frames=50, seed=0) -> dict:
    """Random variables of a tiny CTranslate2 Whisper model (encoder, and a decoder stub)."""
    rng = np.random.default_rng(seed)

    def rand(*shape, dtype="<f2"):
        return (rng.standard_normal(shape) * 0.2).astype(dtype)

    v = {
        "encoder/conv1/weight": rand(d, n_mels, 3),
        "encoder/conv1/bias": rand(d),
        "encoder/conv2/weight": rand(d, d, 3),
        "encoder/conv2/bias": rand(d),
        "encoder/position_encodings/encodings": rand(frames, d, dtype="<f4"),
        "encoder/layer_norm/gamma": 1 + rand(d),
        "encoder/layer_norm/beta": rand(d),
        "encoder/num_heads": np.array(heads, dtype="<i2"),
        "decoder/embeddings/weight": rand(10, d),
    }
    for i in range(layers):
        s = f"encoder/layer_{i}"
        qkv_bias = rand(3 * d)
        qkv_bias[d : 2 * d] = 0  # Whisper's key has no bias
        v.update(
            {
                f"{s}/self_attention/layer_norm/gamma": 1 + rand(d),
                f"{s}/self_attention/layer_norm/beta": rand(d),
                f"{s}/self_attention/linear_0/weight": rand(3 * d, d),
                f"{s}/self_attention/linear_0/bias": qkv_bias,
                f"{s}/self_attention/linear_1/weight": rand(d, d),
                f"{s}/self_attention/linear_1/bias": rand(d),
                f"{s}/ffn/layer_norm/gamma": 1 + rand(d),
                f"{s}/ffn/layer_norm/beta": rand(d),
                f"{s}/ffn/linear_0/weight": rand(4 * d, d),
                f"{s}/ffn/linear_0/bias": rand(4 * d),
                f"{s}/ffn/linear_1/weight": rand(d, 4 * d),
                f"{s}/ffn/linear_1/bias": rand(d),
            }
        )
    return v


@pytest.fixture(scope="module")
def tiny_ct2(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("tiny_ct2")
    variables = tiny_whisper_variables(n_mels=80)
    write_ct2_model(
        folder / "model.bin",
        "WhisperSpec",
        variables,
        revision=3,
        aliases={"decoder/projection/weight": "decoder/embeddings/weight"},
    )
    return folder, variables


# ------------------------------------------------------------------ the model.bin reader
def test_reader_returns_every_variable_and_alias(tiny_ct2) -> None:
    folder, variables = tiny_ct2
    model = read_ct2_model(folder)
    assert (model.spec, model.revision, model.version) == ("WhisperSpec", 3, 6)
    assert set(model.variables) == set(variables)
    for name, value in variables.items():
        got = model.variables[name]
        assert got.shape == value.shape
        np.testing.assert_array_equal(got, value.astype(got.dtype))
    assert model.variables["encoder/conv1/weight"].dtype == np.float32  # float16 converted
    assert int(model.get("encoder/num_heads")) == 4
    np.testing.assert_array_equal(
        model.get("decoder/projection/weight"), model.variables["decoder/embeddings/weight"]
    )


def test_reader_joins_parts_in_order(tiny_ct2, tmp_path) -> None:
    data = (tiny_ct2[0] / "model.bin").read_bytes()
    cut = len(data) // 3
    (tmp_path / "model.bin.part1").write_bytes(data[:cut])
    (tmp_path / "model.bin.part2").write_bytes(data[cut:])
    joined = read_ct2_model([tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"])
    whole = read_ct2_model(tiny_ct2[0])
    assert joined.variables.keys() == whole.variables.keys()
    with pytest.raises(ConvaiError, match="in order"):
        read_ct2_model([tmp_path / "model.bin.part2", tmp_path / "model.bin.part1"])


def test_reader_names_the_file_of_a_truncated_or_foreign_model(tiny_ct2, tmp_path) -> None:
    data = (tiny_ct2[0] / "model.bin").read_bytes()
    short = tmp_path / "short.bin"
    short.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ConvaiError, match=r"short\.bin is truncated: the data of .* at byte"):
        read_ct2_model(short)
    foreign = tmp_path / "foreign.bin"
    foreign.write_bytes(b"\x09\x00\x00\x00" + data[4:])
    with pytest.raises(ConvaiError, match=r"foreign\.bin: binary version 9"):
        read_ct2_model(foreign)
    with pytest.raises(ConvaiError, match="does not exist"):
        read_ct2_model(tmp_path / "missing")


# ------------------------------------------------------------------ the modules
def test_encoder_takes_the_ct2_weights_and_sizes(tiny_ct2) -> None:
    folder, variables = tiny_ct2
    encoder = WhisperEncoder(80, pretrained=str(folder), d_model=999, n_layers=9, n_heads=3)
    assert (encoder.d_model, encoder.n_layers, encoder.n_heads, encoder.max_frames) == (
        32,
        2,
        4,
        50,
    )
    state = encoder.state_dict()
    np.testing.assert_array_equal(
        state["layers.1.self_attn.in_proj_weight"].numpy(),
        variables["encoder/layer_1/self_attention/linear_0/weight"].astype(np.float32),
    )
    np.testing.assert_array_equal(
        state["ln_post.bias"].numpy(), variables["encoder/layer_norm/beta"].astype(np.float32)
    )
    with pytest.raises(ValueError, match="n_mels=80"):
        WhisperEncoder(64, pretrained=str(folder))


def test_mel_frames_do_not_depend_on_the_batch() -> None:
    torch.manual_seed(0)
    mel = WhisperMelPreprocessor().eval()
    short, long = torch.randn(8000) * 0.1, torch.randn(16000) * 0.1
    batch = torch.zeros(2, 16000)
    batch[0, :8000], batch[1] = short, long
    feats, lengths = mel(batch, torch.tensor([8000, 16000]))
    alone, alone_len = mel(short[None], torch.tensor([8000]))
    assert lengths.tolist() == [50, 100] and alone_len.tolist() == [50]
    torch.testing.assert_close(feats[0, :, :50], alone[0], atol=1e-5, rtol=1e-5)
    # past the clip: silence as Whisper pads it (the floor, 8 below the clip's peak, scaled)
    peak = alone[0].max()
    torch.testing.assert_close(feats[0, :, 50:], torch.full_like(feats[0, :, 50:], peak - 2.0))
    with pytest.raises(ValueError, match="16000"):
        WhisperMelPreprocessor(sample_rate=8000)


def test_clip_window_gives_each_clip_the_same_output_alone_or_batched(tiny_ct2) -> None:
    encoder = WhisperEncoder(80, pretrained=str(tiny_ct2[0])).eval()
    torch.manual_seed(1)
    feats = torch.randn(2, 80, 60)
    with torch.no_grad():
        batched, lengths = encoder(feats, torch.tensor([40, 60]))
        alone, _ = encoder(feats[:1, :, :40], torch.tensor([40]))
    assert lengths.tolist() == [20, 30]
    torch.testing.assert_close(batched[0, :, :20], alone[0], atol=1e-5, rtol=1e-4)
    assert batched[0, :, 20:].abs().max() == 0  # frames past the clip are zero
    with pytest.raises(ValueError, match="exceed Whisper's window"):
        encoder(torch.randn(1, 80, 101), torch.tensor([101]))


def test_freeze_layers_keeps_the_lower_layers_fixed(tiny_ct2) -> None:
    encoder = WhisperEncoder(80, pretrained=str(tiny_ct2[0]), freeze_layers=1)
    encoder.train()
    fixed = {n for n, p in encoder.named_parameters() if not p.requires_grad}
    assert any(n.startswith("conv1.") for n in fixed) and any(
        n.startswith("layers.0.") for n in fixed
    )
    assert not any(n.startswith(("layers.1.", "ln_post.")) for n in fixed)
    frozen = WhisperEncoder(80, pretrained=str(tiny_ct2[0]), freeze=True)
    assert not any(p.requires_grad for p in frozen.parameters())
    node = frozen.config_for_archive()  # what an archive rebuilds it from
    rebuilt = WhisperEncoder(80, **{k: v for k, v in node.items() if k != "name"})
    assert not any(p.requires_grad for p in rebuilt.parameters())


# ------------------------------------------------------------------ archives and the CLI
def test_import_writes_an_archive_that_restores_without_the_source(tiny_ct2, tmp_path) -> None:
    folder = tmp_path / "ct2"
    folder.mkdir()
    (folder / "model.bin").write_bytes((tiny_ct2[0] / "model.bin").read_bytes())
    from convai_asr.pretrained.cli import import_main

    out = tmp_path / "whisper.convai"
    assert import_main(["whisper-ct2", str(folder), "--output", str(out)]) == 0
    model = CTCModel(whisper_ctc_config(str(folder))).eval()
    (folder / "model.bin").unlink()  # the archive must not need the source any more
    restored = ModelBase.restore_from(out).eval()
    assert restored.cfg.encoder.pretrained is None
    audio = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([12000, 16000])
    with torch.no_grad():
        ours = restored.encoder(*restored.preprocessor(audio, lengths))[0]
        fresh = model.encoder(*model.preprocessor(audio, lengths))[0]
    torch.testing.assert_close(ours, fresh)
    with pytest.raises(ConvaiError, match="neither a known Whisper source"):
        import_whisper_ct2(str(folder), tmp_path / "x.convai")


# ------------------------------------------------------------------ the real model
@pytest.fixture(scope="module")
def tiny_en_folder() -> Path:
    from convai_asr.pretrained.whisper import whisper_model_folder

    return whisper_model_folder("whisper-tiny.en")


def _recording() -> torch.Tensor:
    if not POCKETSPHINX.is_file():
        pytest.skip("pocketsphinx-testdata is not installed (make installs it)")
    audio = np.fromfile(POCKETSPHINX, dtype="<i2").astype(np.float32) / 32768.0
    return torch.from_numpy(audio)


def test_imported_tiny_en_matches_ctranslate2_on_a_real_recording(tiny_en_folder) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    audio = _recording()
    padded = torch.zeros(1, 480000)  # Whisper's 30 s window, silence after the speech
    padded[0, : audio.numel()] = audio
    features, _ = WhisperMelPreprocessor().eval()(padded, torch.tensor([480000]))
    reference = ctranslate2.models.Whisper(
        str(tiny_en_folder), device="cpu", compute_type="float32"
    )
    expected = np.array(
        reference.encode(ctranslate2.StorageView.from_array(features.numpy()), to_cpu=True)
    )  # (1, 1500, 384)
    encoder = WhisperEncoder(80, pretrained="whisper-tiny.en", window="full").eval()
    with torch.no_grad():
        ours, _ = encoder(features, torch.tensor([3000]))
    ours_np = ours.transpose(1, 2).numpy()
    assert ours_np.shape == expected.shape == (1, 1500, 384)
    # stated tolerance: 1e-3 absolute on outputs of magnitude ~10 (measured 4e-5: float32 both)
    assert np.abs(ours_np - expected).max() < 1e-3


def test_whisper_transcribes_a_real_recording_from_our_features(tiny_en_folder) -> None:
    """The mel front end is Whisper's: Whisper's own decoder (CTranslate2) reads the right words
    from asr/whisper_mel's features."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    tokenizers = pytest.importorskip("tokenizers")
    audio = _recording()
    padded = torch.zeros(1, 480000)
    padded[0, : audio.numel()] = audio
    features, _ = WhisperMelPreprocessor().eval()(padded, torch.tensor([480000]))
    whisper = ctranslate2.models.Whisper(str(tiny_en_folder), device="cpu", intra_threads=1)
    start_of_transcript, no_timestamps = 50257, 50362  # tiny.en's special tokens
    result = whisper.generate(
        ctranslate2.StorageView.from_array(features.numpy()),
        [[start_of_transcript, no_timestamps]],
        beam_size=1,
    )
    tokenizer = tokenizers.Tokenizer.from_file(str(tiny_en_folder / "tokenizer.json"))
    text = tokenizer.decode(result[0].sequences_ids[0]).strip().lower().rstrip(".")
    assert text == "go forward 10 meters"


def _fit(manifest: Path, exp_dir: Path, steps: int = 90):

    from convai_core.train import compose_config, train

    cfg = compose_config(
        [
            "model=asr/whisper_ctc",
            f"model.train_ds.manifest={manifest}",
            "model.train_ds.batch_seconds=null",
            "+model.train_ds.batch_size=8",
            "model.train_ds.num_workers=0",
            "model.validation_ds=null",
            "model.optim.lr=3e-4",
            "model.optim.sched.warmup_steps=10",
            f"trainer.max_steps={steps}",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "trainer.accelerator=cpu",
            f"exp_manager.exp_dir={exp_dir}",
            "exp_manager.name=whisper_ctc",
        ]
    )
    return train(cfg).model.eval()


def _cer(model, manifest: Path) -> float:
    from convai_asr.lm.tune import manifest_log_probs, wer_of_decoder

    log_probs, refs = manifest_log_probs(model, manifest, batch_size=8)
    return wer_of_decoder(model.decoding, model.tokenizer, log_probs, refs)[1]


@pytest.fixture(scope="module")
def fine_tuned(tiny_speech, tmp_path_factory):
    """asr/whisper_ctc fine-tuned from tiny.en for 90 steps on the 20 commands (the single
    commands only: 48 s here, against 132 s with the joined recordings of the tiny training set,
    and CER 0.07 against 0.15)."""
    return _fit(tiny_speech, tmp_path_factory.mktemp("whisper_fit"))


@pytest.mark.timeout(600)
def test_whisper_ctc_fine_tunes_from_tiny_en(fine_tuned, tiny_speech) -> None:
    """The pretrained encoder with a new head learns the 20 commands within 90 steps (the
    untrained model's CER is about 1)."""
    untrained = CTCModel(whisper_ctc_config("whisper-tiny.en")).eval()
    before, after = _cer(untrained, tiny_speech), _cer(fine_tuned, tiny_speech)
    print(f"whisper_ctc CER {before:.3f} untrained, {after:.3f} after 90 steps")
    assert after < 0.25 and before > after + 0.5, (before, after)


def test_whisper_ctc_exports_to_a_bundle_the_runtime_transcribes_alike(
    fine_tuned, tiny_speech, tmp_path
) -> None:
    from convai_asr_runtime import Bundle

    files = [
        tiny_speech.parent / json.loads(line)["audio_filepath"]
        for line in tiny_speech.read_text().splitlines()[:6]
    ]
    expected = fine_tuned.transcribe(files)
    assert any(r["text"] for r in expected)  # words come out: the comparison means something
    report = fine_tuned.export(tmp_path / "bundle", format="asr-bundle", verify_audio=files)
    assert report.passed and report.max_abs_diff < 1e-3
    meta = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert meta["includes_preprocessor"] is True and "preprocessor" not in meta
    assert meta["frame_shift_s"] == pytest.approx(0.02)
    got = Bundle(tmp_path / "bundle").transcribe(files)
    assert [r["text"] for r in got] == [r["text"] for r in expected]
    with pytest.raises(ConvaiError, match="not a front end convai-asr-runtime computes"):
        fine_tuned.export(tmp_path / "b2", format="asr-bundle", opset=16)


def test_from_pretrained_resolves_the_named_encoders(tiny_en_folder) -> None:
    model = ModelBase.from_pretrained("whisper-tiny.en-encoder")
    assert isinstance(model, CTCModel)
    assert (model.encoder.n_layers, model.encoder.d_model) == (4, 384)
    assert model.cfg.encoder.pretrained is None  # the archive holds the weights
    with pytest.raises(ConvaiError, match="No pretrained model named 'whisper-huge-encoder'"):
        ModelBase.from_pretrained("whisper-huge-encoder")
