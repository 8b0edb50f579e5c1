"""CTC models really learn: tiny QuartzNet and Conformer fit 20 utterances, then every
inference path (archive round trip, batching, chunking, timestamps, vocabulary swap) is checked
on the trained models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

from convai_asr.metrics.wer import word_error_rate
from convai_core.models import ModelBase
from convai_core.train import compose_config, train


def _references(manifest: Path) -> list[str]:
    return [json.loads(line)["text"] for line in manifest.read_text().splitlines()]


# The tiny Conformer's fit takes 140 s of a single core (the QuartzNet's 55 s): `make test-all`
# runs it; the default suite exports and checks untrained Conformers (test_export_targets.py).
@pytest.fixture(
    scope="module", params=["quartznet", pytest.param("conformer", marks=pytest.mark.slow)]
)
def fitted(request, tiny_fits):
    return request.param, tiny_fits(request.param)


def test_tiny_model_fits_twenty_utterances(fitted, tiny_speech) -> None:
    kind, result = fitted
    hyps = [r["text"] for r in result.model.transcribe(tiny_speech)]
    wer = word_error_rate(_references(tiny_speech), hyps)
    assert wer < 0.10, (kind, wer, hyps[:5])


def test_archive_round_trip_gives_identical_transcripts(fitted, tiny_speech) -> None:
    _, result = fitted
    restored = ModelBase.restore_from(result.archive)
    assert restored.transcribe(tiny_speech) == result.model.transcribe(tiny_speech)


def test_batched_transcription_equals_one_by_one(fitted, tiny_speech) -> None:
    _, result = fitted
    batched = result.model.transcribe(tiny_speech, batch_size=8)
    single = result.model.transcribe(tiny_speech, batch_size=1)
    assert [r["text"] for r in batched] == [r["text"] for r in single]
    for a, b in zip(batched, single, strict=True):
        for wa, wb in zip(a["words"], b["words"], strict=True):
            assert wa["word"] == wb["word"] and abs(wa["start"] - wb["start"]) < 1e-6


def test_word_timestamps_are_inside_the_audio_and_in_order(fitted, tiny_speech) -> None:
    _, result = fitted
    for item in result.model.transcribe(tiny_speech):
        duration = sf.info(item["audio_filepath"]).duration
        words = item["words"]
        assert [w["word"] for w in words] == item["text"].split()
        previous_end = 0.0
        for w in words:
            assert 0.0 <= w["start"] < w["end"] <= duration + 1e-6
            assert w["start"] >= previous_end - 1e-6
            previous_end = w["end"]


def test_chunked_long_audio_matches_the_concatenated_reference(
    fitted, tiny_speech, concat, tmp_path
) -> None:
    _, result = fitted
    long_wav = tmp_path / "long.wav"
    order = [3, 8, 12, 1, 17, 5, 14, 10, 19, 6, 0, 15, 9, 18]  # 14 commands, about 20 s
    reference, duration = concat(tiny_speech, order, long_wav)
    assert duration > 15
    chunked = result.model.transcribe([long_wav], chunk_seconds=6.0, overlap_seconds=2.0)[0]
    assert word_error_rate([reference], [chunked["text"]]) < 0.10, chunked["text"]
    ends = [w["end"] for w in chunked["words"]]
    assert ends == sorted(ends) and ends[-1] <= duration + 1e-6


def test_change_vocabulary_keeps_the_encoder(fitted) -> None:
    _, result = fitted
    model = result.model
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    digits = [" ", *"abcdefghijklmnopqrstuvwxyz", "'", *"0123456789"]
    model_copy = ModelBase.restore_from(result.archive)
    model_copy.change_vocabulary({"name": "asr/char", "vocabulary": digits})
    for key, value in model_copy.encoder.state_dict().items():
        assert torch.equal(value, encoder_before[key]), key
    log_probs, _ = model_copy(torch.randn(1, 16000), torch.tensor([16000]))
    assert log_probs.shape[-1] == len(digits) + 1
    assert model_copy.cfg.tokenizer.vocabulary[-1] == "9"


def test_transcribe_command_writes_json_lines(fitted, tiny_speech, tmp_path) -> None:
    from convai_core.cli import main as convai

    _, result = fitted
    out = tmp_path / "out.jsonl"
    assert (
        convai(
            [
                "transcribe",
                "--model",
                str(result.archive),
                "--manifest",
                str(tiny_speech),
                "--output",
                str(out),
                "--batch-size",
                "4",
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    expected = result.model.transcribe(tiny_speech)
    assert [r["text"] for r in lines] == [r["text"] for r in expected]
    assert all(set(r) == {"audio_filepath", "text", "words"} for r in lines)


def test_sentencepiece_tokenizer_travels_in_the_archive(tiny_speech, tmp_path) -> None:
    from convai_asr.cli import asr_main

    assert (
        asr_main(
            [
                "tokenizer",
                "--manifest",
                str(tiny_speech),
                "--vocab-size",
                "40",
                "--out",
                str(tmp_path / "sp"),
            ]
        )
        == 0
    )
    model_file = tmp_path / "sp" / "tokenizer.model"
    cfg = compose_config(["model=asr/demo_ctc", "model.train_ds.manifest=unused"])
    OmegaConf.set_struct(cfg, False)
    cfg.model.tokenizer = OmegaConf.create(
        {"name": "asr/sentencepiece", "model_path": str(model_file)}
    )
    from convai_asr.models.ctc import CTCModel

    model = CTCModel(cfg.model).eval()
    assert model.tokenizer.vocab_size == 40
    ids = model.tokenizer.encode("open the door")
    assert model.tokenizer.decode(ids) == "open the door"
    archive = model.save_to(tmp_path / "sp.convai")
    model_file.unlink()  # the archive carries its own copy
    restored = ModelBase.restore_from(archive)
    assert restored.tokenizer.encode("open the door") == ids
    audio = torch.randn(1, 16000)
    assert torch.equal(
        restored(audio, torch.tensor([16000]))[0], model(audio, torch.tensor([16000]))[0]
    )


def test_fine_tune_from_archive_with_a_new_vocabulary(fitted, tiny_speech, tmp_path) -> None:
    """`init_from.archive` + a new tokenizer: the encoder starts from the archive, the head anew."""
    _, result = fitted
    digits = [" ", *"abcdefghijklmnopqrstuvwxyz", "'", *"0123456789"]
    source = ModelBase.restore_from(result.archive)
    cfg = compose_config(
        [
            "model=asr/demo_ctc",
            f"model.train_ds.manifest={tiny_speech}",
            "model.train_ds.batch_seconds=null",
            "+model.train_ds.batch_size=10",
            "model.validation_ds=null",
            "model.augmentations=[]",
            "model.optim.lr=0.0",
            "model.optim.sched.name=none",
            "trainer.max_steps=2",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            f"init_from.archive={result.archive}",
            "init_from.prefixes=[encoder]",
            f"exp_manager.exp_dir={tmp_path}",
        ]
    )
    OmegaConf.set_struct(cfg, False)
    cfg.model.encoder = source.cfg.encoder
    cfg.model.tokenizer = OmegaConf.create({"name": "asr/char", "vocabulary": digits})
    tuned = train(cfg).model
    for key, value in source.encoder.state_dict().items():
        if key.endswith("num_batches_tracked") or "running_" in key:
            continue  # batch-norm statistics move during the two steps (lr 0 keeps weights)
        assert torch.equal(tuned.encoder.state_dict()[key], value), key
    log_probs, _ = tuned(torch.randn(1, 16000), torch.tensor([16000]))
    assert log_probs.shape[-1] == len(digits) + 1


def test_configs_of_release_0_1_still_build_the_same_model() -> None:
    """`type:` keys and top-level spec_augment / spec_cutout (saved in 0.1 archives) load with a
    FutureWarning naming each new key, and give the model the registry-built config gives."""
    from convai_asr.models.ctc import CTCModel

    new = compose_config(["model=asr/quartznet_5x5", "model.train_ds.manifest=unused"]).model
    old = OmegaConf.to_container(new)
    old["tokenizer"] = {"type": "char", "vocabulary": old["tokenizer"]["vocabulary"]}
    old["encoder"] = {"type": "quartznet", "arch": {"b": 5, "r": 5, "dropout": 0.0}}
    spec_augment = {k: v for k, v in old.pop("augmentations")[0].items() if k != "name"}
    old["spec_augment"], old["spec_cutout"] = spec_augment, None
    del old["preprocessor"]["name"], old["head"], old["decoding"]  # 0.1 had no such keys
    with pytest.warns(FutureWarning) as warned:
        legacy = CTCModel(old)
    messages = " ".join(str(w.message) for w in warned)
    for hint in (
        "model.tokenizer.name='asr/char'",
        "model.encoder.name='asr/quartznet_encoder'",
        "model.spec_augment is deprecated",
    ):
        assert hint in messages
    assert legacy.augmentations.keys == ["asr/spec_augment"]
    assert legacy.cfg.encoder == {"name": "asr/quartznet_encoder", "b": 5, "r": 5, "dropout": 0.0}
    current = CTCModel(new)
    assert {k: v.shape for k, v in legacy.state_dict().items()} == {
        k: v.shape for k, v in current.state_dict().items()
    }
