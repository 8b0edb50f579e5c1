"""A character-level CTC model learns Mandarin: Han-character vocabulary built from the text,
speech synthesized by espeak-ng's cmn-latn-pinyin voice (which reads Han characters)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from convai_asr.metrics.wer import char_error_rate
from convai_asr.text.tokenizers import CharTokenizer
from convai_core.models import ModelBase
from convai_core.train import compose_config, train

# Our own short commands (the same as the English ones), with many shared characters.
SENTENCES = [
    "打开门",
    "关上门",
    "打开窗户",
    "关上窗户",
    "打开灯",
    "关掉灯",
    "打开收音机",
    "关掉收音机",
    "播放音乐",
    "停止音乐",
    "给妈妈打电话",
    "给爸爸打电话",
    "现在几点",
    "今天星期几",
    "设置闹钟",
    "取消闹钟",
    "去厨房",
    "去花园",
    "读新闻",
    "读我的邮件",
]


@pytest.fixture(scope="module")
def mandarin_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from convai_asr.synth.voices import Voice, check_engines, synthesize

    out = tmp_path_factory.mktemp("mandarin")
    voice = Voice.parse("espeak-ng:cmn-latn-pinyin")
    check_engines([voice])
    rows = []
    for i, text in enumerate(SENTENCES * 2):  # every command twice, at different speeds
        wav = out / f"{i:03d}.wav"
        duration = synthesize(voice, text, wav, sample_rate=16000, seed=i)
        rows.append(
            {
                "audio_filepath": wav.name,
                "duration": round(duration, 3),
                "text": text,
                "lang": "cmn",
            }
        )
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return manifest


def _train_han_characters(
    manifest: Path, tmp_path: Path, overrides: list[str], blocks: list | None = None
) -> tuple[ModelBase, float, list[str], list[str]]:
    """Train a Han-character CTC model on the commands (300 steps); return the restored model,
    its CER on the commands, the references and the hypotheses."""
    vocabulary = CharTokenizer.from_texts(SENTENCES).tokens
    cfg = compose_config(
        [
            *overrides,
            f"model.train_ds.manifest={manifest}",
            "model.train_ds.batch_seconds=null",
            "+model.train_ds.batch_size=10",
            "model.augmentations=[]",
            "model.validation_ds=null",
            "trainer.max_steps=300",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            f"exp_manager.exp_dir={tmp_path}",
        ]
    )
    OmegaConf.set_struct(cfg, False)
    cfg.model.tokenizer = OmegaConf.create({"name": "asr/char", "vocabulary": vocabulary})
    if blocks is not None:
        cfg.model.encoder.blocks = OmegaConf.create(blocks)
    restored = ModelBase.restore_from(train(cfg).archive)
    hyps = [r["text"] for r in restored.transcribe(manifest)]
    refs = [json.loads(line)["text"] for line in manifest.read_text().splitlines()]
    return restored, char_error_rate(refs, hyps), refs, hyps


def test_han_character_model_learns_mandarin(mandarin_speech: Path, tmp_path: Path) -> None:
    vocabulary = CharTokenizer.from_texts(SENTENCES).tokens
    assert "门" in vocabulary and " " not in vocabulary and len(vocabulary) > 40
    restored, cer, refs, hyps = _train_han_characters(
        mandarin_speech,
        tmp_path,
        ["model=asr/demo_ctc", "model.optim.lr=5e-3", "model.optim.sched.warmup_steps=30"],
        blocks=[
            {"filters": 128, "repeat": 1, "kernel": 11, "stride": 2, "separable": True},
            {"filters": 128, "repeat": 2, "kernel": 13, "residual": True, "separable": True},
            {"filters": 128, "repeat": 2, "kernel": 17, "residual": True, "separable": True},
            {"filters": 192, "repeat": 1, "kernel": 1, "separable": True},
        ],
    )
    assert cer < 0.10, (cer, list(zip(refs, hyps, strict=True))[:6])
    assert restored.tokenizer.tokens == vocabulary


@pytest.mark.slow  # about 3 minutes on 2 cores (and a 145 MB download): `make test-all`
@pytest.mark.timeout(900)
def test_whisper_base_encoder_learns_mandarin_characters(mandarin_speech: Path, tmp_path) -> None:
    """asr/whisper_ctc from the multilingual Whisper base encoder (first 4 of 6 layers fixed)
    with a Han character head learns the Mandarin commands in 300 steps (the issue's bound:
    CER <= 15%; measured 4.3%)."""
    restored, cer, refs, hyps = _train_han_characters(
        mandarin_speech,
        tmp_path,
        [
            "model=asr/whisper_ctc",
            "model.encoder.pretrained=whisper-base",
            "model.encoder.freeze_layers=4",
            "model.train_ds.num_workers=0",
            "model.optim.lr=3e-4",
            "model.optim.sched.warmup_steps=20",
        ],
    )
    assert restored.encoder.d_model == 512 and restored.encoder.n_layers == 6
    print(f"whisper-base + Han characters: CER {cer:.3f}")
    assert cer <= 0.15, (cer, list(zip(refs, hyps, strict=True))[:6])
