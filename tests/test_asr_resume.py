"""ASR training killed mid-epoch resumes with the batches that come next, and every epoch gets
its own shuffle (the bucketing sampler's epoch follows the trainer's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).parent / "scripts" / "train_script.py"


def _batches(path: Path) -> list[tuple[int, list[int]]]:
    """(global step, sorted sample counts of that step's batch) per line of TEST_RECORD_BATCHES."""
    return [(step, lengths) for step, lengths in map(json.loads, path.read_text().splitlines())]


def test_asr_kill_mid_epoch_resumes_the_sampler_position(tmp_path: Path) -> None:
    from convai_asr.models.ctc import SAMPLER_STATE_KEY
    from convai_asr.testing import SENTENCES, synthesize_set

    manifest = synthesize_set(tmp_path, SENTENCES[:12], "espeak-ng:en-us")

    def run(name: str, **env: str) -> subprocess.CompletedProcess[str]:
        args = [
            sys.executable,
            str(SCRIPT),
            str(tmp_path / "out" / name),
            "model=asr/demo_ctc",
            f"model.train_ds.manifest={manifest}",
            "model.train_ds.batch_seconds=null",
            "+model.train_ds.batch_size=3",  # 4 batches per epoch
            "model.train_ds.num_workers=0",
            "trainer.accelerator=cpu",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            f"exp_manager.exp_dir={tmp_path / name}",
            "exp_manager.name=asr",
            "exp_manager.checkpoint.every_n_train_steps=2",
        ]
        full_env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
        return subprocess.run(args, capture_output=True, text=True, timeout=600, env=full_env)

    reference = run("reference", TEST_RECORD_BATCHES=str(tmp_path / "reference.jsonl"))
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = dict(_batches(tmp_path / "reference.jsonl"))
    assert sorted(expected) == list(range(1, 9))  # global step after each batch
    # each epoch deals its own shuffle
    assert [expected[s] for s in range(1, 5)] != [expected[s] for s in range(5, 9)]

    log = tmp_path / "interrupted.jsonl"
    killed = run("interrupted", TEST_RECORD_BATCHES=str(log), TEST_KILL_AT_STEP="6")
    assert killed.returncode == -9, killed.stderr[-3000:]
    last = tmp_path / "interrupted" / "asr" / "version_0" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    # step 6 = epoch 1 (the second), 2 of its 4 batches consumed
    assert checkpoint["global_step"] == 6 and checkpoint["epoch"] == 1
    state = checkpoint[SAMPLER_STATE_KEY]
    assert (state["epoch"], state["position"]) == (1, 2)

    resumed = run("interrupted", TEST_RECORD_BATCHES=str(log))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "convai: resuming" in resumed.stderr
    seen = _batches(log)
    # the killed run got past step 6 (its kill comes at the start of a later batch); the resumed
    # run starts from the step-6 checkpoint and trains the last two batches of epoch 1
    assert [step for step, _ in seen[-2:]] == [7, 8]
    for step, lengths in seen:
        assert lengths == expected[step], (step, lengths, expected[step])
