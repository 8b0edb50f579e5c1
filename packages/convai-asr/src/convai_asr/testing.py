"""Helpers for tests of convai-asr and of the packages built on it (convai-export...).

Small speech sets spoken by espeak-ng (installed by `make`), tiny encoder configs and a short
training run. They are functions, so test suites of other packages can use them without sharing
conftest files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Our own short sentences: each word appears in several of them, so a tiny model can fit them.
SENTENCES = [
    "open the door",
    "close the door",
    "open the window",
    "close the window",
    "turn on the light",
    "turn off the light",
    "turn on the radio",
    "turn off the radio",
    "play some music",
    "stop the music",
    "call my mother",
    "call my father",
    "what time is it",
    "what day is it",
    "set an alarm",
    "cancel the alarm",
    "go to the kitchen",
    "go to the garden",
    "read the news",
    "read my mail",
]


def synthesize_set(out: Path, sentences: list[str], voice: str, *, seed: int = 0) -> Path:
    """Speak ``sentences`` with one espeak-ng or flite voice; returns the manifest path."""
    import json

    from convai_asr.synth.voices import Voice, check_engines, synthesize

    v = Voice.parse(voice)
    check_engines([v])
    rows = []
    for i, text in enumerate(sentences):
        wav = out / f"{i:03d}.wav"
        duration = synthesize(v, text, wav, sample_rate=16000, seed=seed + i)
        rows.append({"audio_filepath": wav.name, "duration": round(duration, 3), "text": text})
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


SILENCE_S = 0.4


def concatenate(manifest: Path, indices: list[int], out_wav: Path) -> tuple[str, float]:
    """Join the recordings ``indices`` of ``manifest`` with SILENCE_S pauses: (text, seconds)."""
    import json

    import numpy as np
    import soundfile as sf

    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    silence = np.zeros(int(SILENCE_S * 16000), dtype="float32")
    pieces = []
    for i in indices:
        audio, _ = sf.read(manifest.parent / rows[i]["audio_filepath"], dtype="float32")
        pieces += [audio, silence]
    joined = np.concatenate(pieces[:-1])
    sf.write(out_wav, joined, 16000)
    return " ".join(rows[i]["text"] for i in indices), len(joined) / 16000


TINY_ENCODERS: dict[str, dict[str, Any]] = {
    "quartznet": {
        "name": "asr/jasper_encoder",
        "blocks": [
            {"filters": 128, "repeat": 1, "kernel": 11, "stride": 2, "separable": True},
            {"filters": 128, "repeat": 2, "kernel": 13, "residual": True, "separable": True},
            {"filters": 128, "repeat": 2, "kernel": 17, "residual": True, "separable": True},
            {"filters": 192, "repeat": 1, "kernel": 1, "separable": True},
        ],
    },
    "conformer": {
        "name": "asr/conformer_encoder",
        "d_model": 96,
        "n_layers": 2,
        "n_heads": 4,
        "conv_kernel": 15,
        "subsampling_conv_channels": 64,
        "dropout": 0.0,
        "dropout_att": 0.0,
    },
}
STEPS = {"quartznet": 300, "conformer": 400}
LR = {"quartznet": 5e-3, "conformer": 2e-3}


def fit_tiny(
    kind: str,
    manifest: Path,
    exp_dir: Path,
    extra: list[str] | tuple[str, ...] = (),
    steps: int | None = None,
) -> Any:
    """Train a tiny ``kind`` model (``quartznet`` or ``conformer``) on ``manifest`` for
    ``steps`` (default :data:`STEPS`); returns the :class:`~convai_core.train.TrainResult`,
    its model in eval mode."""
    from omegaconf import OmegaConf

    from convai_core.train import compose_config, train

    cfg = compose_config(
        [
            "model=asr/demo_ctc",
            f"model.train_ds.manifest={manifest}",
            "model.train_ds.batch_seconds=null",
            "+model.train_ds.batch_size=10",
            # light SpecAugment: without it a tiny Conformer memorises the 20 commands and
            # garbles the first sound of a command that follows a pause in long recordings
            "model.augmentations=[{name:asr/spec_augment,freq_masks:2,freq_width:10,"
            "time_masks:2,time_width:0.05}]",
            "model.validation_ds=null",
            f"model.optim.lr={LR[kind]}",
            "model.optim.sched.warmup_steps=30",
            f"trainer.max_steps={steps or STEPS[kind]}",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "trainer.accelerator=cpu",
            "trainer.log_every_n_steps=10",
            f"exp_manager.exp_dir={exp_dir}",
            f"exp_manager.name={kind}",
            *extra,
        ]
    )
    OmegaConf.set_struct(cfg, False)
    cfg.model.encoder = OmegaConf.create(TINY_ENCODERS[kind])
    result = train(cfg)
    result.model.eval()
    return result


def tiny_train_set(tiny_speech: Path) -> Path:
    """The 20 commands of ``tiny_speech``, plus 20 recordings of two commands and 20 of three
    commands joined by pauses.

    The joined recordings teach models that a command need not start the recording and what a
    pause between commands looks like, which the long-recording tests need (a tiny Conformer
    trained on single commands and pairs alone drops the first sound after a pause).
    Returns the training manifest (beside ``tiny_speech``).
    """
    import json

    rows = [json.loads(line) for line in tiny_speech.read_text().splitlines()]
    joined = [(f"pair_{k:02d}.wav", [k, (3 * k + 7) % 20]) for k in range(20)]
    joined += [(f"triple_{k:02d}.wav", [k, (7 * k + 3) % 20, (11 * k + 5) % 20]) for k in range(20)]
    for name, indices in joined:
        text, seconds = concatenate(tiny_speech, indices, tiny_speech.parent / name)
        rows.append({"audio_filepath": name, "duration": round(seconds, 3), "text": text})
    manifest = tiny_speech.parent / "train_manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def tiny_model(kind: str) -> Any:
    """An untrained CTC model of the demo recipe with the tiny ``kind`` encoder, in eval mode."""
    from omegaconf import OmegaConf

    from convai_asr.models.ctc import CTCModel
    from convai_core.train import compose_config

    cfg = compose_config(["model=asr/demo_ctc", "model.train_ds.manifest=unused"])
    OmegaConf.set_struct(cfg, False)
    cfg.model.encoder = OmegaConf.create(TINY_ENCODERS[kind])
    return CTCModel(cfg.model).eval()
