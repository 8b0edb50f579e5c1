"""tts/tacotron2 and its text+mel data: manifest reading and batching, learning, attention, the
stop gate, archive round trip, the exported parts and the runtime loop over them, config errors.

The learning data is synthetic: each symbol is a two-partial tone of its own pitch held for a few
frames, so a short run can learn what every symbol sounds like.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from convai_core.errors import ConfigError, ConvaiError, ExportError
from convai_tts.data.text_mel import TextMelDataset, collate_text_mel
from convai_tts.models.tacotron2 import EXPORT_PARTS, Tacotron2Model

RATE, HOP, FRAMES_PER_SYMBOL = 22050, 256, 3
UTTERANCES = ["AA B | K IY", "M OW S T UW", "F EH L N AY"]
# fmt: off
TINY: dict[str, Any] = {
    "name": "tts/tacotron2",
    "symbols_embedding_dim": 32,
    "encoder": {"channels": 32, "convs": 1, "kernel": 5, "dropout": 0.0, "lstm_hidden": 16},
    "attention": {"rnn_dim": 64, "dim": 32, "location_filters": 8, "location_kernel": 7,
                  "dropout": 0.0},
    "decoder": {"rnn_dim": 64, "dropout": 0.0},
    "prenet": {"dim": 32, "layers": 2, "dropout": 0.5},
    "postnet": {"channels": 32, "kernel": 5, "layers": 3, "dropout": 0.0},
    "max_decoder_steps": 12,
    "optim": {"name": "adam", "lr": 1e-2},
}
# fmt: on


def _tones(symbols: str, tokens: list[str]) -> np.ndarray:
    ids = {token: i for i, token in enumerate(tokens)}
    t = np.arange(FRAMES_PER_SYMBOL * HOP) / RATE
    pieces = []
    for symbol in symbols.split():
        pitch = 150.0 + 45.0 * ids[" " if symbol == "|" else symbol]
        pieces.append(0.3 * np.sin(2 * np.pi * pitch * t) + 0.15 * np.sin(5 * np.pi * pitch * t))
    return np.concatenate(pieces).astype(np.float32)


def _clone(model: Tacotron2Model) -> Tacotron2Model:
    """A copy to change (deepcopy would copy the frontend's dictionary too)."""
    clone = Tacotron2Model(model.cfg)
    clone.load_state_dict(model.state_dict())
    return clone.eval()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of the three tone utterances (relative audio paths)."""
    from convai_tts.text.symbols import SYMBOLS

    folder = tmp_path_factory.mktemp("tones")
    lines = []
    for index, symbols in enumerate(UTTERANCES):
        sf.write(str(folder / f"{index}.wav"), _tones(symbols, list(SYMBOLS)), RATE)
        lines.append(json.dumps({"audio_filepath": f"{index}.wav", "symbols": symbols}))
    return _write(folder / "manifest.jsonl", lines)


@pytest.fixture(scope="module")
def trained(corpus: Path) -> tuple[Tacotron2Model, dict[str, torch.Tensor], dict[str, float]]:
    """The tiny model fitted by Lightning to the three utterances (60 steps, one batch each)."""
    import pytorch_lightning as pl

    torch.manual_seed(0)
    model = Tacotron2Model({**TINY, "train_ds": {"manifest": str(corpus), "batch_size": 3}})
    dataset = TextMelDataset(corpus, model.frontend)
    batch = collate_text_mel([dataset[i] for i in range(len(dataset))])
    history: list[float] = []

    class _Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
            history.append(float(trainer.callback_metrics["train_mel_loss"]))

    trainer = pl.Trainer(
        max_steps=60,
        limit_val_batches=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_Record()],
    )
    trainer.fit(model)
    model.eval()
    keep = (torch.arange(batch["mel"].shape[2])[None] < batch["mel_lengths"][:, None]).unsqueeze(1)
    mean = (batch["mel"] * keep).sum(dim=(0, 2)) / keep.sum()
    constant = ((batch["mel"] - mean[None, :, None]) ** 2 * keep).sum() / (keep.sum() * 80)
    return model, batch, {"start": history[0], "end": history[-1], "constant": float(constant)}


# ---------------------------------------------------------------------------------- data
def test_dataset_reads_symbols_and_text_and_batches_with_stop_targets(
    corpus: Path, tmp_path: Path
) -> None:
    from convai_tts.text.frontend import EnglishPhonemizer

    frontend = EnglishPhonemizer()
    sf.write(str(tmp_path / "short.wav"), _tones("AA B K IY", frontend.tokens), RATE)
    symbols_line = json.dumps(
        {"audio_filepath": str(corpus.parent / "1.wav"), "symbols": "M OW S T UW"}
    )
    text_line = json.dumps({"audio_filepath": "short.wav", "text": "Bob ate."})
    manifest = _write(tmp_path / "mixed.jsonl", [symbols_line, text_line])
    dataset = TextMelDataset(manifest, frontend)
    first, second = dataset[0], dataset[1]
    assert first["symbols"].tolist() == frontend.symbols_to_ids("M OW S T UW".split())
    assert second["symbols"].tolist() == frontend.encode("Bob ate.")
    assert first["mel"].shape == (80, 5 * FRAMES_PER_SYMBOL)  # n hops of audio: n frames
    assert [dataset.frames(i) for i in range(2)] == [15, 12]  # from the header / the cache
    gap = TextMelDataset(corpus, frontend)[0]["symbols"].tolist()
    assert gap == frontend.symbols_to_ids(["AA", "B", " ", "K", "IY"])  # "|" is the word gap

    batch = collate_text_mel([dataset[1], dataset[0]])
    assert batch["symbols"].shape == (2, 8) and batch["symbol_lengths"].tolist() == [8, 5]
    assert batch["symbols"][1, 5] == 0  # padding id
    assert batch["mel_lengths"].tolist() == [12, 15] and batch["mel"].shape == (2, 80, 15)
    floor = math.log(1e-5)
    assert torch.allclose(batch["mel"][0, :, 12:], torch.full((80, 3), floor))
    assert torch.equal(batch["mel"][1], first["mel"])
    assert batch["gate"][0].tolist() == [0.0] * 11 + [1.0] * 4  # 1 from the last frame on
    assert batch["gate"][1].tolist() == [0.0] * 14 + [1.0]


def test_bad_lines_are_named_with_the_fix_or_counted(corpus: Path, tmp_path: Path) -> None:
    from convai_tts.text.frontend import EnglishPhonemizer

    frontend = EnglishPhonemizer()
    good = json.loads(corpus.read_text().splitlines()[0])
    good["audio_filepath"] = str(corpus.parent / good["audio_filepath"])
    cases = {
        "json": ("{oops", "line 1: not valid JSON"),
        "keys": (json.dumps({"audio_filepath": "x.wav"}), r"line 1: missing \['symbols or text'\]"),
        "unknown": (json.dumps({**good, "symbols": "HH QQ"}), r"line 1: unknown symbols \['QQ'\]"),
        "digits": (
            json.dumps({"audio_filepath": "x.wav", "text": "Call 911"}),
            r"line 1: the text has characters the frontend cannot read \['1', '9'\]",
        ),
    }
    for name, (line, message) in cases.items():
        manifest = _write(tmp_path / f"{name}.jsonl", [line])
        with pytest.raises(ConvaiError, match=rf"{name}\.jsonl, {message}"):
            TextMelDataset(manifest, frontend)
    mixed = _write(tmp_path / "mixed.jsonl", [json.dumps(good), "{oops", cases["unknown"][0]])
    dataset = TextMelDataset(mixed, frontend, skip_bad=True)
    assert len(dataset) == 1 and dataset.skipped == {"bad_json": 1, "unknown_symbols": 1}

    audio, _ = sf.read(good["audio_filepath"], dtype="float32")
    sf.write(str(tmp_path / "16k.wav"), audio, 16000)
    rate = _write(tmp_path / "rate.jsonl", [json.dumps({**good, "audio_filepath": "16k.wav"})])
    with pytest.raises(ConvaiError, match=r"line 1: .*16000 Hz, the model reads 22050 Hz.*prepare"):
        TextMelDataset(rate, frontend)[0]

    silence = np.zeros(RATE // 2, dtype=np.float32)
    sf.write(str(tmp_path / "padded.wav"), np.concatenate([silence, audio, silence]), RATE)
    padded = _write(tmp_path / "pad.jsonl", [json.dumps({**good, "audio_filepath": "padded.wav"})])
    plain = TextMelDataset(padded, frontend)[0]["mel"].shape[1]
    trimmed = TextMelDataset(padded, frontend, trim_silence=True)[0]["mel"].shape[1]
    assert plain == 15 + 86 and 15 <= trimmed <= 15 + 10  # 1 s of silence cut to the margins


# ---------------------------------------------------------------------------------- learning
def test_the_model_learns_the_utterances_teacher_forced(trained) -> None:
    """Through Lightning (loader, optimizer, gradient clipping), 60 steps bring the mel error
    below half its start and below half that of the best constant spectrum (each band's
    mean over the clips), so the model learned how each symbol sounds, not just the average."""
    model, batch, record = trained
    assert record["end"] < 0.5 * record["start"], record
    with torch.no_grad():
        losses = model.losses(batch)
    assert float(losses["mel_loss_after"]) < 0.5 * record["constant"], (losses, record)


def test_attention_is_a_distribution_over_the_real_symbols_only(trained) -> None:
    """Every frame's attention sums to 1 and gives padding exactly 0; an item attends (and
    decodes) the same alone as in a padded batch."""
    model, batch, _ = trained
    model = _clone(model)
    model.decoder.prenet.at_inference = False  # deterministic prenet
    with torch.no_grad():
        _, _, _, alignments = model.teacher_forced(batch)
    assert torch.allclose(alignments.sum(dim=2), torch.ones(alignments.shape[:2]), atol=1e-5)
    assert batch["symbol_lengths"].tolist() == [5, 5, 5]
    full = {"symbols": batch["symbols"][0], "mel": batch["mel"][0]}
    cut = {"symbols": batch["symbols"][1, :3], "mel": batch["mel"][1]}
    pair, alone = collate_text_mel([full, cut]), collate_text_mel([cut])
    with torch.no_grad():
        _, _, _, padded = model.teacher_forced(pair)
        _, _, _, single_alignment = model.teacher_forced(alone)
    assert padded.shape[2] == 5 and torch.all(padded[1, :, 3:] == 0.0)
    assert torch.allclose(padded[1, :, :3], single_alignment[0], atol=1e-5)
    with torch.no_grad():
        mel, lengths = model(pair["symbols"], pair["symbol_lengths"])
        single, single_lengths = model(alone["symbols"], alone["symbol_lengths"])
    assert lengths[1] == single_lengths[0]
    assert torch.allclose(mel[1, :, : int(lengths[1])], single[0], atol=1e-4)


def test_inference_stops_at_the_gate_or_at_max_decoder_steps(trained) -> None:
    model, batch, _ = trained
    model = _clone(model)
    with torch.no_grad():
        model.decoder.gate.bias.fill_(30.0)  # the gate fires at once
        mel, lengths = model(batch["symbols"], batch["symbol_lengths"])
        assert lengths.tolist() == [1, 1, 1] and mel.shape == (3, 80, 1)
        model.decoder.gate.bias.fill_(-30.0)  # never fires
        mel, lengths = model(batch["symbols"], batch["symbol_lengths"])
        assert lengths.tolist() == [12, 12, 12] and mel.shape == (3, 80, 12)
        # a gate that fires for the first item only: each item stops on its own
        model.decoder.prenet.at_inference = False
        memory, processed, pad = model.encode(batch["symbols"][:2], batch["symbol_lengths"][:2])
        _, _, state = model.decoder.step(
            model.decoder.prenet(torch.zeros(2, 80)),
            model.decoder.initial_state(memory),
            memory,
            processed,
            pad,
        )
        first, second = state.context[0], state.context[1]
        direction = 50.0 * (first - second) / (first - second).norm() ** 2
        model.decoder.gate.weight.zero_()
        model.decoder.gate.weight[0, -memory.shape[2] :] = direction
        model.decoder.gate.bias.fill_(float(-direction @ (first + second) / 2))
        mel, lengths = model(batch["symbols"][:2], batch["symbol_lengths"][:2])
    assert lengths[0] == 1 and lengths[1] > 1 and mel.shape[2] == lengths[1]
    assert torch.all(mel[0, :, 1:] == math.log(1e-5)) and mel[1, :, 1].std() > 0


# ---------------------------------------------------------------------------------- archive
def test_archive_restores_identical_speech(trained, tmp_path: Path) -> None:
    """Prenet dropout is on at inference: the same seed gives the same spectrogram before and
    after an archive round trip, another seed a different one."""
    from convai_core.models.base import ModelBase
    from convai_tts.synthesize import Synthesizer

    model, _, _ = trained
    text = "Bob ate. Call me."
    before = list(model.mels(text, seed=3))
    restored = ModelBase.restore_from(model.save_to(tmp_path / "voice.convai"))
    assert isinstance(restored, Tacotron2Model)
    after = list(restored.mels(text, seed=3))
    assert len(before) == len(after) == 2
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    other = next(iter(restored.mels(text, seed=4)))
    assert not torch.equal(other, before[0])
    assert "frontend.lexicon" in restored.artifacts
    audio = Synthesizer(restored, griffin_lim_iters=2).synthesize("Bob ate.")
    assert audio.dtype == np.float32 and 0 < len(audio) <= 13 * HOP


# ---------------------------------------------------------------------------------- export
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore:`torch.jit.load`")
def test_each_part_exports_verified_and_the_runtime_loop_reproduces_forward(
    trained, tmp_path: Path
) -> None:
    """Each part is exported (TorchScript, verified by the export target on real and random
    inputs); looping the exported decoder step as the docstring says, with the same dropout
    masks, gives the eager model's spectrogram."""
    model, batch, _ = trained
    with pytest.raises(ExportError, match="part=encoder, part=decoder or part=postnet"):
        model.export_spec()
    graphs = {}
    for part in EXPORT_PARTS:
        report = model.export(tmp_path / f"{part}.pt", format="torchscript", part=part)
        assert report.checks and all(check.passed for check in report.checks)
        assert {check.kind for check in report.checks} == {"real", "random"}
        graphs[part] = torch.jit.load(str(tmp_path / f"{part}.pt"))
    meta = model.export_spec(part="decoder").metadata
    symbols, lengths = batch["symbols"], torch.tensor([5, 4, 3])
    with torch.no_grad():
        expected, expected_lengths = model(symbols, lengths, seed=11)
        memory, processed = graphs["encoder"](symbols, lengths)
        size = symbols.shape[0]
        state = [
            torch.zeros(size, meta["attention_rnn_dim"]), torch.zeros(size, meta["attention_rnn_dim"]),
            torch.zeros(size, meta["decoder_rnn_dim"]), torch.zeros(size, meta["decoder_rnn_dim"]),
            torch.zeros(size, symbols.shape[1]), torch.zeros(size, symbols.shape[1]),
            torch.zeros(size, meta["memory_dim"]),
        ]  # fmt: skip
        frame = torch.zeros(size, meta["n_mels"])
        generator = torch.Generator().manual_seed(11)
        frames, ends = [], torch.full((size,), meta["max_decoder_steps"])
        stopped = torch.zeros(size, dtype=torch.bool)
        for step in range(meta["max_decoder_steps"]):
            keep = torch.bernoulli(
                torch.full((size, meta["prenet_keep_size"]), 1 - meta["prenet_dropout"]),
                generator=generator,
            ) / (1 - meta["prenet_dropout"])
            frame, gate, *state = graphs["decoder"](frame, *state, memory, processed, lengths, keep)
            frames.append(frame)
            stops = (torch.sigmoid(gate) > meta["gate_threshold"]) & ~stopped
            ends = torch.where(stops, torch.full_like(ends, step + 1), ends)
            stopped |= stops
            if bool(stopped.all()):
                break
        mel = graphs["postnet"](torch.stack(frames, dim=2), ends)
    assert torch.equal(ends, expected_lengths)
    assert torch.allclose(mel, expected, atol=1e-4)


@pytest.mark.slow
def test_each_part_exports_to_onnx_verified(trained, tmp_path: Path) -> None:
    model, _, _ = trained
    for part in EXPORT_PARTS:
        report = model.export(tmp_path / f"{part}.onnx", format="onnx", part=part)
        assert report.checks and all(check.passed for check in report.checks)


# ---------------------------------------------------------------------------------- config
def test_config_typos_are_named_and_the_default_config_is_the_papers_size() -> None:
    from omegaconf import OmegaConf

    with pytest.raises(ConfigError, match=r"model\.max_decoder_step\. Did you mean"):
        Tacotron2Model({**TINY, "max_decoder_step": 5})
    with pytest.raises(ConfigError, match=r"model\.encoder\.chanels\. Did you mean"):
        Tacotron2Model({**TINY, "encoder": {"chanels": 8}})
    with pytest.raises(ConfigError, match=r"model\.train_ds\.batchsize\. Did you mean"):
        Tacotron2Model({**TINY, "train_ds": {"manifest": "x", "batchsize": 2}}).train_dataloader()
    import convai_tts

    path = Path(convai_tts.__file__).parent / "conf" / "model" / "tts" / "tacotron2.yaml"
    cfg = OmegaConf.load(path)
    assert cfg.optim.name == "adam" and cfg.train_ds.batch_size == 48
    model = Tacotron2Model(cfg)
    count = sum(p.numel() for p in model.parameters())
    assert 27_500_000 < count < 28_500_000, count  # the paper's ~28M


def test_gradient_clipping_defaults_to_the_models_norm_unless_the_trainer_sets_one() -> None:
    model = Tacotron2Model(TINY)
    calls: list[tuple[Any, Any]] = []
    model.clip_gradients = lambda optimizer, gradient_clip_val, gradient_clip_algorithm: (  # type: ignore[method-assign]
        calls.append((gradient_clip_val, gradient_clip_algorithm))
    )
    optimizer = torch.optim.Adam(model.parameters())
    model.configure_gradient_clipping(optimizer, None, None)
    model.configure_gradient_clipping(optimizer, 0.25, "value")
    assert calls == [(1.0, "norm"), (0.25, "value")]
