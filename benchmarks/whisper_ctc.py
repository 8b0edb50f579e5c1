"""Fine-tune ``asr/whisper_ctc`` from Whisper tiny.en on the demo's synthetic speech, then judge it.

Trains with ``convai train model=asr/whisper_ctc`` for ``--minutes`` on 2 CPU threads on the
training split of a ``convai asr synth`` dataset (``--data``; the demo's, made by ``make demo``
or ``convai asr synth --out DIR --voices-per-sentence 2``), optionally with waveform
augmentations (``--augment``, a YAML list as in a data section), then reports greedy WER/CER on:

- ``unseen_voices``: the dataset's test split (held-out sentences, voices never heard in training);
- ``pocketsphinx``: the real recordings of pocketsphinx-testdata (Debian package).

Every option of the recipe under test is a Hydra override (``--set KEY=VALUE``, repeatable), so
an A/B is two runs with one override changed. The issue's targets: pocketsphinx WER <= 40% and
unseen voices WER <= 25% after at most 20 minutes.

    python benchmarks/whisper_ctc.py --data demo_output/data --minutes 20 \
        --json benchmarks/results/whisper_ctc.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any


def evaluate(model: Any, manifest: Path) -> dict[str, float]:
    from convai_asr.lm.tune import manifest_log_probs, wer_of_decoder

    log_probs, references = manifest_log_probs(model, manifest, batch_size=8)
    wer, cer, _ = wer_of_decoder(model.decoding, model.tokenizer, log_probs, references)
    return {"wer": wer, "cer": cer, "utterances": len(references)}


def train_pieces(manifests: list[Path], text: Path | None, vocab: int, out: Path) -> Path:
    """A SentencePiece unigram model of ``vocab`` pieces from the manifests' transcripts (each
    distinct sentence once) and the normalized lines of ``text``."""
    import re

    from convai_asr.text.tokenizers import train_sentencepiece

    sentences = {
        json.loads(line)["text"]: None for m in manifests for line in m.read_text().splitlines()
    }
    if text is not None:
        for line in text.read_text(encoding="utf-8").splitlines():
            clean = " ".join(re.sub(r"[^a-z' ]", " ", line.lower()).split())
            if clean:
                sentences.setdefault(clean, None)
    print(f"whisper_ctc: SentencePiece model of {vocab} pieces from {len(sentences)} sentences")
    return train_sentencepiece(list(sentences), vocab_size=vocab, output_dir=out / "pieces")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a `convai asr synth` folder")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget")
    parser.add_argument("--steps", type=int, default=100000, help="step limit (default: time)")
    parser.add_argument(
        "--add-train",
        type=Path,
        action="append",
        default=[],
        help="another `convai asr synth` folder whose training split is added (repeatable)",
    )
    parser.add_argument("--augment", default=None, help="YAML list of waveform augmentations")
    parser.add_argument("--set", action="append", default=[], help="extra Hydra override")
    parser.add_argument(
        "--sentencepiece",
        type=int,
        default=None,
        metavar="VOCAB",
        help="replace the characters by a SentencePiece unigram model of VOCAB pieces, trained "
        "on the training transcripts (and --sentencepiece-text)",
    )
    parser.add_argument(
        "--sentencepiece-text",
        type=Path,
        default=None,
        help="more text for the SentencePiece model, a sentence a line (normalized to the "
        "character vocabulary; keep test sentences out of it)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmark_output/whisper_ctc"))
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(int(os.environ.get("CONVAI_THREADS", "2")))
    from convai_asr.data.pocketsphinx import write_pocketsphinx_manifest
    from convai_core.progress import ProgressLines
    from convai_core.train import compose_config, train

    seconds = int(args.minutes * 60)
    overrides = [
        "model=asr/whisper_ctc",
        "model.train_ds.manifest=["
        + ",".join(str(d / "train_manifest.jsonl") for d in [args.data, *args.add_train])
        + "]",
        "model.validation_ds=null",
        f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}",
        f"trainer.max_steps={args.steps}",
        "trainer.max_epochs=1000",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.log_every_n_steps=20",
        f"exp_manager.exp_dir={args.out}",
        "exp_manager.name=whisper_ctc",
        "exp_manager.resume=false",
        *args.set,
    ]
    if args.augment:
        overrides.append(f"+model.train_ds.augmentations={args.augment}")
    if args.sentencepiece:
        manifests = [d / "train_manifest.jsonl" for d in [args.data, *args.add_train]]
        pieces = train_pieces(manifests, args.sentencepiece_text, args.sentencepiece, args.out)
        overrides += [
            "model.tokenizer.name=asr/sentencepiece",
            "~model.tokenizer.vocabulary",
            f"+model.tokenizer.model_path={pieces}",
        ]
    cfg = compose_config(overrides)
    start = time.perf_counter()
    result = train(cfg, extra_callbacks=[ProgressLines(every_s=60.0)])
    train_minutes = (time.perf_counter() - start) / 60
    model = result.model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    sets = {
        "unseen_voices": args.data / "test_manifest.jsonl",
        "pocketsphinx": write_pocketsphinx_manifest(args.out / "pocketsphinx_manifest.jsonl"),
    }
    results = {name: evaluate(model, path) for name, path in sets.items()}
    record = {
        "train_minutes": round(train_minutes, 2),
        "steps": result.global_step,
        "data": [str(d) for d in [args.data, *args.add_train]],
        "overrides": args.set,
        "augment": args.augment,
        "sentencepiece": args.sentencepiece,
        "sentencepiece_text": str(args.sentencepiece_text) if args.sentencepiece_text else None,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "results": results,
        "archive": str(result.archive),
    }
    print(
        f"\nasr/whisper_ctc from whisper-tiny.en: {train_minutes:.1f} min, {result.global_step} steps"
    )
    print(f"  {'set':<16} {'utts':>5} {'greedy WER':>11} {'greedy CER':>11}")
    for name, row in results.items():
        print(f"  {name:<16} {row['utterances']:>5} {row['wer']:>11.1%} {row['cer']:>11.1%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
