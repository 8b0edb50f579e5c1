"""Scale-out through Lightning / torch.distributed on CPU (gloo), run as subprocess scripts.

- 2-process DDP on one machine: every rank ends with identical weights;
- 2 nodes simulated on localhost (one process each, NODE_RANK 0 and 1): identical weights;
- a rank that dies makes the run fail quickly instead of hanging.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "train_script.py"
COMMON = [
    "model=core/mlp_classifier",
    "trainer.accelerator=cpu",
    "trainer.strategy=ddp",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LOCAL_RANK", "NODE_RANK", "RANK", "WORLD_SIZE", "CONVAI_RUN_DIR")
    }
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def _records(out: Path, world: int) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]


def _train_two_ranks(tmp_path: Path, overrides: list[str]) -> list[dict]:
    """Run the training script with 2 DDP processes on this machine; both ranks' records."""
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(tmp_path / "out"),
            *overrides,
            "trainer.devices=2",
            f"exp_manager.exp_dir={tmp_path / 'exp'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return _records(tmp_path / "out", 2)


def test_ddp_two_processes_identical_weights(tmp_path: Path) -> None:
    records = _train_two_ranks(tmp_path, COMMON)
    assert records[0]["digest"] == records[1]["digest"]
    assert records[0]["run_dir"] == records[1]["run_dir"]
    # 2048 samples / 2 ranks / batch 64 = 16 steps per epoch
    assert records[0]["global_step"] == records[1]["global_step"] == 32
    assert records[0]["metrics"]["val_accuracy"] > 0.7
    events = (Path(records[0]["run_dir"]) / "events.jsonl").read_text()
    assert '"world_size": 2' in events


# slow (24 s): the two-node launch; the default suite keeps the two-process one
@pytest.mark.slow
def test_two_nodes_simulated_on_localhost(tmp_path: Path) -> None:
    env = _env()
    args = [
        sys.executable,
        str(SCRIPT),
        str(tmp_path / "out"),
        *COMMON,
        "trainer.devices=1",
        "trainer.num_nodes=2",
        "exp_manager.version=run1",
        f"exp_manager.exp_dir={tmp_path / 'exp'}",
    ]
    procs = [
        subprocess.Popen(
            args,
            env={**env, "NODE_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-4000:]
    records = _records(tmp_path / "out", 2)
    assert records[0]["digest"] == records[1]["digest"]
    assert records[0]["global_step"] == 32
    assert records[0]["run_dir"].endswith("run1")


def test_a_dead_rank_fails_the_run_instead_of_hanging(tmp_path: Path) -> None:
    start = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(tmp_path / "out"),
            *COMMON,
            "trainer.devices=2",
            "trainer.ddp_timeout_s=30",
            f"exp_manager.exp_dir={tmp_path / 'exp'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(TEST_DIE_AT_STEP="3", TEST_DIE_RANK="1"),
    )
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert "rank 1: dying at step 3" in result.stderr
    assert elapsed < 120, f"took {elapsed:.0f} s to notice the dead rank"
    assert not (tmp_path / "out" / "rank0.json").exists()


# slow (30 s): DDP of a domain recipe; the default suite keeps the core's
@pytest.mark.slow
def test_ddp_asr_with_the_bucketing_sampler(tmp_path: Path) -> None:
    """An ASR model, whose duration-bucketing batch sampler deals each rank its own batches,
    trains under 2-process DDP (Lightning must not put its DistributedSampler into that loader)
    and validates on both ranks."""
    from convai_asr.testing import SENTENCES, synthesize_set

    data = {}
    for split, sentences in (("train", SENTENCES[:12]), ("val", SENTENCES[12:18])):
        (tmp_path / split).mkdir()
        data[split] = synthesize_set(tmp_path / split, sentences, "espeak-ng:en-us")
    records = _train_two_ranks(
        tmp_path,
        [
            "model=asr/demo_ctc",
            f"model.train_ds.manifest={data['train']}",
            "model.train_ds.batch_seconds=null",
            "+model.train_ds.batch_size=3",
            "model.train_ds.num_workers=0",
            f"model.validation_ds.manifest={data['val']}",
            "model.validation_ds.batch_size=2",
            "trainer.accelerator=cpu",
            "trainer.strategy=ddp",
            "trainer.max_steps=4",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
    )
    assert records[0]["digest"] == records[1]["digest"]
    # 12 utterances in batches of 3 dealt to 2 ranks: 2 steps per epoch, so 2 epochs
    assert records[0]["global_step"] == records[1]["global_step"] == 4
    assert [r["train_batches"] for r in records] == [2, 2]
    # validation WER is pooled over the ranks (summed edit counts), so both report one figure
    assert records[0]["metrics"]["val_wer"] == records[1]["metrics"]["val_wer"]
    assert records[0]["metrics"]["val_wer"] > 0.0 and records[0]["metrics"]["val_loss"] > 0


# slow (40 s): DDP of a domain recipe; the default suite keeps the core's
@pytest.mark.slow
def test_ddp_nlp_token_classification(tmp_path: Path) -> None:
    """A BERT-family task model (MiniLM NER on 64 real CoNLL-2003 sentences) trains under
    2-process DDP: its length-bucketing sampler deals each rank its own batches, the ranks end
    with identical weights, and validation F1 is pooled over both ranks."""
    from convai_nlp.data.sources import prepare
    from convai_nlp.testing import subset

    files = prepare("conll2003")
    data = {
        key: subset(files[key], tmp_path / f"{key}.txt", 64 if key.startswith("train") else 40)
        for key in ("train_text", "train_labels", "dev_text", "dev_labels")
    }
    records = _train_two_ranks(
        tmp_path,
        [
            "model=nlp/token_classification",
            f"model.train_ds.text_file={data['train_text']}",
            f"model.train_ds.labels_file={data['train_labels']}",
            "model.train_ds.batch_size=8",
            f"model.validation_ds.text_file={data['dev_text']}",
            f"model.validation_ds.labels_file={data['dev_labels']}",
            "model.validation_ds.batch_size=8",
            "trainer.accelerator=cpu",
            "trainer.strategy=ddp",
            "trainer.max_steps=4",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
    )
    assert records[0]["digest"] == records[1]["digest"]
    # 64 sentences in batches of 8 dealt to 2 ranks: 4 batches each
    assert [r["train_batches"] for r in records] == [4, 4]
    assert records[0]["global_step"] == records[1]["global_step"] == 4
    assert records[0]["metrics"]["val_f1"] == records[1]["metrics"]["val_f1"]
    assert records[0]["metrics"]["val_loss"] > 0
