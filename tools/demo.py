"""`make demo`: speech recognition end to end on the embedded default data, on CPU.

1. Synthesize a speech dataset from the Lee news corpus with offline voices (espeak-ng and flite),
   split by voice: the test voices never speak in training (`convai asr synth`).
2. Train the demo CTC model (`model=asr/demo_ctc`) for a fixed wall-clock budget.
3. Print WER/CER on the unseen-voice test split and on real recordings (pocketsphinx-testdata).
4. Save the model as demo_output/asr.convai and check that the archive transcribes identically.

Settings come from the environment: DEMO_STEPS (default 3400 optimizer steps, about 8.5 minutes
on 2 cores), DEMO_MAX_MINUTES (default 10: a slower machine stops there), DEMO_DATA (default
demo_output/data; reused when it exists).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("demo_output")
DATA = Path(os.environ.get("DEMO_DATA", OUT / "data"))
STEPS = int(os.environ.get("DEMO_STEPS", "3400"))
MAX_MINUTES = float(os.environ.get("DEMO_MAX_MINUTES", "10"))


def synthesize() -> None:
    if (DATA / "dataset.json").is_file():
        print(f"convai demo: reusing the dataset in {DATA}")
        return
    print("convai demo: synthesizing speech from the news corpus (about a minute)...")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "convai_core.cli",
            "asr",
            "synth",
            "--out",
            str(DATA),
            "--voices-per-sentence",
            "2",
        ],
        check=True,
    )


def evaluate(model, manifest: Path) -> tuple[float, float, list[tuple[str, str]]]:
    from convai_asr.metrics.wer import char_error_rate, word_error_rate

    refs = [json.loads(line)["text"] for line in manifest.read_text().splitlines()]
    hyps = [r["text"] for r in model.transcribe(manifest, batch_size=16)]
    return (
        word_error_rate(refs, hyps),
        char_error_rate(refs, hyps),
        list(zip(refs, hyps, strict=True)),
    )


def main() -> int:
    from convai_asr.data.pocketsphinx import write_pocketsphinx_manifest
    from convai_core.models import ModelBase
    from convai_core.train import compose_config, train

    synthesize()
    summary = json.loads((DATA / "dataset.json").read_text())
    if (OUT / "experiments").exists():
        shutil.rmtree(OUT / "experiments")
    seconds = int(MAX_MINUTES * 60)
    cfg = compose_config(
        [
            "model=asr/demo_ctc",
            f"model.train_ds.manifest={DATA / 'train_manifest.jsonl'}",
            f"model.validation_ds.manifest={DATA / 'dev_manifest.jsonl'}",
            f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}",
            f"trainer.max_steps={STEPS}",
            "trainer.max_epochs=1000",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "trainer.log_every_n_steps=50",
            f"exp_manager.exp_dir={OUT / 'experiments'}",
            "exp_manager.name=asr_demo",
        ]
    )
    start = time.perf_counter()
    result = train(cfg)
    train_s = time.perf_counter() - start
    archive = OUT / "asr.convai"
    shutil.copyfile(result.archive, archive)
    model = ModelBase.restore_from(archive)
    ps_manifest = write_pocketsphinx_manifest(OUT / "pocketsphinx_manifest.jsonl")
    rows = []
    for name, manifest in (
        ("dev: held-out sentences, training voices", DATA / "dev_manifest.jsonl"),
        ("test: held-out sentences, unseen voices", DATA / "test_manifest.jsonl"),
        ("real speech: pocketsphinx-testdata", ps_manifest),
    ):
        wer, cer, pairs = evaluate(model, manifest)
        rows.append((name, len(pairs), wer, cer, pairs[:2]))
    train_hours = summary["splits"]["train"]["hours"]
    print()
    print(
        f"convai demo: asr/demo_ctc, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
        f"parameters, trained {train_s / 60:.1f} min on {train_hours:.2f} h of synthetic speech "
        f"({result.global_step} steps)"
    )
    print(f"  {'split':<44} {'utts':>5} {'WER':>7} {'CER':>7}")
    for name, n, wer, cer, _ in rows:
        print(f"  {name:<44} {n:>5} {wer:>7.1%} {cer:>7.1%}")
    print("  examples (reference -> hypothesis):")
    for name, _, _, _, pairs in rows:
        for ref, hyp in pairs:
            print(
                f"    [{name.split(':')[0]}] {ref}\n    {'':>{len(name.split(':')[0]) + 2}} -> {hyp}"
            )
    print(f"  model archive: {archive}")
    # deployment: an ASR bundle for convai-asr-runtime (no torch), verified against the model on the
    # real recordings (its transcripts must be the model's, or nothing is written)
    bundle = OUT / "asr_bundle"
    recordings = [
        json.loads(line)["audio_filepath"] for line in ps_manifest.read_text().splitlines()
    ]
    report = model.export(bundle, format="asr-bundle", force=True, verify_audio=recordings)
    print(
        f"  exported {bundle} (onnxruntime max |diff| {report.max_abs_diff:.1e}; "
        f"{report.notes[-1]}); try: convai-asr-runtime transcribe --bundle {bundle} "
        f"{recordings[0]}"
    )
    results = {name: {"utterances": n, "wer": wer, "cer": cer} for name, n, wer, cer, _ in rows}
    (OUT / "demo_results.json").write_text(
        json.dumps(
            {"train_minutes": train_s / 60, "steps": result.global_step, "results": results},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
