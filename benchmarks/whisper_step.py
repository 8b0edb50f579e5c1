"""Seconds per training step of ``asr/whisper_ctc`` under ``convai train``, fp32 against bf16.

Each precision trains the shipped config (with the demo's recipe: the first 3 of 4 encoder layers
frozen) for ``--steps`` steps on a manifest's real batches (length buckets of 60 s of audio) and
times the steps after the first 10. Then the restored archive of the fp32 run transcribes the
first 32 clips of the manifest (batches of 8, no grad, best of 3). Prints a table and writes JSON.

    python benchmarks/whisper_step.py --manifest demo_output/data/train_manifest.jsonl \
        [--steps 60] [--precisions 32 bf16-mixed] [--json benchmarks/results/whisper_step.json]

bf16 pays only on a CPU with native bfloat16 (AVX512-BF16 or AMX); elsewhere torch emulates it
and a step is many times slower than fp32.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

WARMUP_STEPS = 10


def train_seconds_per_step(
    manifest: Path, precision: str, steps: int, out: Path, extra: list[str]
) -> tuple[float, Path]:
    import pytorch_lightning as pl

    from convai_core.train import compose_config, train

    cfg = compose_config(
        [
            "model=asr/whisper_ctc",
            f"model.train_ds.manifest={manifest}",
            "model.validation_ds.manifest=null",
            "model.encoder.freeze_layers=3",
            f"trainer.precision={precision}",
            f"trainer.max_steps={steps}",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            f"exp_manager.exp_dir={out}",
            f"exp_manager.name=step_{precision}",
            *extra,
        ]
    )
    marks: dict[str, float] = {}

    class Clock(pl.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, index: int) -> None:
            if index == WARMUP_STEPS:
                marks["start"] = time.perf_counter()

        def on_train_batch_end(
            self, trainer: Any, module: Any, outputs: Any, batch: Any, index: int
        ) -> None:
            marks["end"], marks["steps"] = time.perf_counter(), index + 1 - WARMUP_STEPS

    result = train(cfg, extra_callbacks=[Clock()])
    return (marks["end"] - marks["start"]) / marks["steps"], Path(result.archive)


def inference_seconds(archive: Path, manifest: Path) -> float:
    import soundfile as sf
    import torch

    from convai_core.models import ModelBase

    model = ModelBase.restore_from(archive).eval()
    rows = [json.loads(line) for line in manifest.read_text().splitlines()[:32]]
    clips = []
    for row in rows:
        path = Path(row["audio_filepath"])
        audio, _ = sf.read(path if path.is_absolute() else manifest.parent / path, dtype="float32")
        clips.append(torch.from_numpy(audio))
    lengths = torch.tensor([len(c) for c in clips])
    audio = torch.nn.utils.rnn.pad_sequence(clips, batch_first=True)
    best = float("inf")
    with torch.no_grad():
        for _ in range(3):
            began = time.perf_counter()
            for i in range(0, len(clips), 8):
                model(audio[i : i + 8], lengths[i : i + 8])
            best = min(best, time.perf_counter() - began)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True, help="a training manifest")
    parser.add_argument("--steps", type=int, default=60, help="steps per precision (>= 20)")
    parser.add_argument("--precisions", nargs="+", default=["32", "bf16-mixed"])
    parser.add_argument("--set", action="append", default=[], help="another Hydra override")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/whisper_step.json"))
    args = parser.parse_args()
    if args.steps < WARMUP_STEPS + 10:
        parser.error(f"--steps must be at least {WARMUP_STEPS + 10}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        archives = {}
        for precision in args.precisions:
            print(f"whisper_step: training {args.steps} steps with precision {precision}")
            seconds, archives[precision] = train_seconds_per_step(
                args.manifest, precision, args.steps, Path(tmp), args.set
            )
            results[precision] = {"train_s_per_step": seconds}
        first = args.precisions[0]
        results[first]["inference_s_32_clips"] = inference_seconds(archives[first], args.manifest)
    print(f"\n{'precision':<12} {'s / training step':>18}")
    for precision, row in results.items():
        print(f"{precision:<12} {row['train_s_per_step']:>18.3f}")
    print(
        f"inference, 32 clips in batches of 8 ({first}): {results[first]['inference_s_32_clips']:.2f} s"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "command": "python benchmarks/whisper_step.py "
                + f"--manifest {args.manifest} --steps {args.steps} --precisions "
                + " ".join(args.precisions)
                + "".join(f" --set {s}" for s in args.set),
                "machine": platform.processor() or platform.machine(),
                "results": results,
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
