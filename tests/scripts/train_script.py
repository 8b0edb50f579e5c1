"""Train through convai's API from a subprocess, for the distributed and resume tests.

usage: python train_script.py OUT_DIR [hydra overrides...]

Environment (test hooks, read by this script only):
  TEST_STEP_SLEEP_S   seconds to sleep after every training step (stands in for a real model)
  TEST_KILL_AT_STEP   SIGKILL this process once global_step reaches N (after that step's checkpoint)
  TEST_DIE_AT_STEP    with TEST_DIE_RANK: that global rank exits with status 13 at step N
  TEST_RECORD_BATCHES append a line per training step to this file: the step and the sorted
                      sample counts of the batch's audio (which identify its utterances)

Each rank writes OUT_DIR/rank<R>.json with its final global step and a digest of its weights.
Lightning's DDP launcher re-runs this same command line for the other local ranks.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytorch_lightning as pl

from convai_core.train import compose_config, train


class TestHooks(pl.Callback):
    def __init__(self) -> None:
        self.sleep = float(os.environ.get("TEST_STEP_SLEEP_S", "0"))
        self.kill_at = int(os.environ.get("TEST_KILL_AT_STEP", "-1"))
        self.die_at = int(os.environ.get("TEST_DIE_AT_STEP", "-1"))
        self.die_rank = int(os.environ.get("TEST_DIE_RANK", "-1"))
        self.record = os.environ.get("TEST_RECORD_BATCHES")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.record and isinstance(batch, dict) and "audio_len" in batch:
            lengths = sorted(int(n) for n in batch["audio_len"])
            with open(self.record, "a") as f:
                f.write(json.dumps([trainer.global_step, lengths]) + "\n")
        if self.sleep:
            time.sleep(self.sleep)
        step = trainer.global_step
        if step == self.die_at and trainer.global_rank == self.die_rank:
            print(f"rank {trainer.global_rank}: dying at step {step}", file=sys.stderr, flush=True)
            os._exit(13)
        if step == self.kill_at:
            # Let the checkpoint callbacks of this step run first: they follow this callback.
            trainer.strategy.barrier()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.kill_at >= 0 and trainer.global_step > self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def weights_digest(model: pl.LightningModule) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> int:
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = compose_config(sys.argv[2:])
    result = train(cfg, extra_callbacks=[TestHooks()])
    record = {
        "global_rank": result.global_rank,
        "global_step": result.global_step,
        "digest": weights_digest(result.model),
        "run_dir": str(result.run_dir),
        "metrics": result.metrics,
        # batches this rank's loader dealt per epoch (the run's own sampler)
        "train_batches": int(result.model.trainer.num_training_batches),
    }
    (out_dir / f"rank{result.global_rank}.json").write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
