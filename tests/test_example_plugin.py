"""examples/convai-toy-plugin, installed beside convai: its parts work by registry key alone.

The stock `asr/demo_ctc` recipe trains with the plugin's encoder, tokenizer, waveform
augmentation and decoder named on the command line; the archive restores and transcribes in a
fresh process; the plugin's own model trains on its own registered dataset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convai_asr.metrics.wer import word_error_rate
from convai_asr.testing import SENTENCES, synthesize_set, tiny_train_set

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "convai-toy-plugin"


@pytest.fixture(scope="module")
def tiny_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 short commands spoken by one espeak-ng voice (manifest path)."""
    return synthesize_set(tmp_path_factory.mktemp("tiny_speech"), SENTENCES, "espeak-ng:en-us")


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("toy_site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(site), str(PLUGIN)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return site


def _run(site: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "CONVAI_STRICT_PLUGINS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_plugin_parts_are_listed_with_their_distribution(plugin_site: Path, tmp_path: Path) -> None:
    for kind, key in [
        ("models", "toy/tone_detector"),
        ("datasets", "toy/tones"),
        ("modules", "toy/conv_gru_encoder"),
        ("augmentations", "toy/random_gain"),
        ("tokenizers", "toy/letters"),
        ("decoders", "toy/ctc_min_run"),
    ]:
        listed = _run(plugin_site, ["-m", "convai_core.cli", "list", kind, "--json"], tmp_path)
        assert listed.returncode == 0, listed.stderr
        entries = {e["key"]: e for e in json.loads(listed.stdout)}
        assert entries[key]["distribution"] == "convai-toy-plugin", (kind, entries)
    models = _run(plugin_site, ["-m", "convai_core.cli", "models", "--json"], tmp_path)
    configs = {c["config"]: c["model"] for c in json.loads(models.stdout)["configs"]}
    assert configs["toy/tone_detector"] == "toy/tone_detector"


def _train_losses(run: Path) -> list[float]:
    header, *rows = (run / "csv" / "metrics.csv").read_text().splitlines()
    column = header.split(",").index("train_loss_step")
    return [float(r.split(",")[column]) for r in rows if r.split(",")[column]]


@pytest.mark.parametrize(
    ("steps", "max_wer"),
    [
        # default suite: a short run that must already learn (loss) and restore elsewhere
        (60, None),
        # make test-all: long enough to transcribe the commands (WER 0.29 measured, 300 steps)
        pytest.param(300, 0.4, marks=pytest.mark.slow),
    ],
)
def test_stock_asr_recipe_trains_with_the_plugin_parts_and_restores_elsewhere(
    plugin_site: Path, tiny_speech: Path, tmp_path: Path, steps: int, max_wer: float | None
) -> None:
    # the short run learns from the 20 single commands (three times cheaper a step than the
    # joined recordings of the tiny training set, which the long run needs to transcribe them)
    train_manifest = tiny_speech if max_wer is None else tiny_train_set(tiny_speech)
    trained = _run(
        plugin_site,
        [
            "-m", "convai_core.cli", "train", "model=asr/demo_ctc",
            f"model.train_ds.manifest={train_manifest}",
            "model.validation_ds=null",
            "model.train_ds.batch_seconds=null", "+model.train_ds.batch_size=10",
            "model.train_ds.num_workers=0",
            "model.encoder.name=toy/conv_gru_encoder", "+model.encoder.hidden=192",
            "model.tokenizer.name=toy/letters",
            "model.decoding.name=toy/ctc_min_run", "+model.decoding.min_frames=1",
            "model.augmentations=[{name:toy/random_gain,prob:0.5},"
            "{name:asr/spec_augment,freq_masks:2,freq_width:10,time_masks:2,time_width:0.05}]",
            "model.optim.lr=3e-3", "model.optim.sched.warmup_steps=30",
            f"trainer.max_steps={steps}", "trainer.accelerator=cpu", "trainer.log_every_n_steps=5",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
            f"exp_manager.exp_dir={tmp_path / 'exp'}",
        ],
        tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-4000:]
    run = tmp_path / "exp" / "asr_ctc" / "version_0"
    archive = run / "asr_ctc.convai"
    assert archive.is_file()
    losses = _train_losses(run)
    assert min(losses[-3:]) < 0.6 * max(losses[:3]), losses

    # a fresh process restores the archive, reports what it is made of, and transcribes
    probe = (
        "import json, sys\n"
        "from convai_core.models import ModelBase\n"
        f"model = ModelBase.restore_from({str(archive)!r})\n"
        "parts = [type(model.encoder).__module__, type(model.tokenizer).__module__,\n"
        "         type(model.decoding).__module__, model.audio_augmentations.keys,\n"
        "         model.augmentations.keys]\n"
        f"texts = [r['text'] for r in model.transcribe({str(tiny_speech)!r})]\n"
        "print(json.dumps({'parts': parts, 'texts': texts}))\n"
    )
    restored = _run(plugin_site, ["-c", probe], tmp_path)
    assert restored.returncode == 0, restored.stderr[-4000:]
    result = json.loads(restored.stdout.strip().splitlines()[-1])
    assert result["parts"] == [
        "convai_toy.encoder", "convai_toy.tokenizer", "convai_toy.decoder",
        ["toy/random_gain"], ["asr/spec_augment"],
    ]
    refs = [json.loads(line)["text"] for line in tiny_speech.read_text().splitlines()]
    assert len(result["texts"]) == len(refs)
    if max_wer is not None:
        # an untrained model outputs nothing (WER 1.0); the GRU encoder learns the commands
        wer = word_error_rate(refs, result["texts"])
        assert wer < max_wer, list(zip(refs, result["texts"], strict=True))

    # without the plugin the archive names what is missing instead of failing obscurely
    missing = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert missing.returncode != 0
    assert "toy/" in missing.stderr and "is not a registered" in missing.stderr


def test_plugin_model_trains_on_its_registered_dataset(plugin_site: Path, tmp_path: Path) -> None:
    trained = _run(
        plugin_site,
        ["-m", "convai_core.cli", "train", "model=toy/tone_detector", "trainer.max_epochs=3",
         "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
         f"exp_manager.exp_dir={tmp_path / 'exp'}"],
        tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    rows = (tmp_path / "exp" / "toy_tone_detector" / "version_0" / "csv" / "metrics.csv").read_text()
    header, *lines = rows.splitlines()
    column = header.split(",").index("val_accuracy")
    accuracy = [float(r.split(",")[column]) for r in lines if r.split(",")[column]]
    assert accuracy[-1] > 0.9, accuracy  # chance is 0.5
