"""CTC beam search with a KenLM 3-gram: convai's asr/beam_kenlm against pyctcdecode and NeMo.

A trained CTC model (``--model``, a .convai archive; a Conformer for the issue's figure) turns
8 x 10 s of speech into log-probabilities once: each 10 s item joins utterances of ``--manifest``
(with 0.3 s pauses, silence-padded to exactly 10 s) so every item has a known transcript. A word
3-gram is built with ``convai lm build`` from ``--lm-text`` (default: the transcripts of
``--lm-manifest``, which must not hold the test sentences). Then each decoder decodes the batch at
beam ``--beam`` with the same LM weight and word bonus, ``--repeats`` times after a warm-up:

- ``convai``: ``asr/beam_kenlm`` with its lexicon (the LM's words spelled by the model's tokens);
- ``pyctcdecode``: ``build_ctcdecoder`` with the same LM and unigrams (alpha divided by ln 10:
  its LM scores are natural logs, flashlight's log10);
- ``nemo_flashlight``: NeMo's ``FlashLightKenLMBeamSearchDecoder`` with a lexicon of the same
  words, the same beam, token beam and threshold.

The peers run under ``--peer-python`` (a side venv, see ../shared/PEERS.md and
benchmarks/README.md) through ``peers/decode_peers.py``; without it only convai is measured. The
issue's targets: convai at least 10x faster than pyctcdecode and no slower than NeMo, at equal
WER.

    python benchmarks/decode_speed.py --model conformer.convai --peer-python /work/peer-venv/bin/python \
        --json benchmarks/results/decode_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "decode_peers.py"
DEMO = ROOT / "demo_output"
SAMPLE_RATE = 16000
ITEM_SECONDS = 10.0
PAUSE_SECONDS = 0.3


def build_batch(manifest: Path, items: int) -> tuple[Any, list[str]]:
    """``items`` waveforms of exactly 10 s, each utterances joined by pauses, and their texts."""
    import torch

    from convai_asr.audio import load_audio
    from convai_asr.data.manifest import read_manifest

    entries = [e for e in read_manifest(manifest).entries if e.duration < ITEM_SECONDS - 1]
    waves, texts = [], []
    cursor = 0
    for _ in range(items):
        parts, words, length = [], [], 0.0
        while cursor < len(entries):
            entry = entries[cursor]
            if length + entry.duration + PAUSE_SECONDS > ITEM_SECONDS:
                break
            parts += [
                load_audio(entry.audio_filepath, sample_rate=SAMPLE_RATE),
                torch.zeros(int(PAUSE_SECONDS * SAMPLE_RATE)),
            ]
            words.append(entry.text)
            length += entry.duration + PAUSE_SECONDS
            cursor += 1
        if not parts:
            raise SystemExit(f"{manifest} has too few utterances for {items} items of 10 s")
        wave = torch.cat(parts)[: int(ITEM_SECONDS * SAMPLE_RATE)]
        waves.append(
            torch.nn.functional.pad(wave, (0, int(ITEM_SECONDS * SAMPLE_RATE) - len(wave)))
        )
        texts.append(" ".join(words))
    return torch.stack(waves), texts


def timed(fn: Any, repeats: int) -> tuple[Any, list[float]]:
    result = fn()  # warm-up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return result, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEMO / "asr.convai")
    parser.add_argument(
        "--manifest", type=Path, default=DEMO / "data" / "test_manifest.jsonl", help="test speech"
    )
    parser.add_argument(
        "--lm-manifest",
        type=Path,
        default=DEMO / "data" / "train_manifest.jsonl",
        help="the LM's text comes from these transcripts (unless --lm-text)",
    )
    parser.add_argument("--lm-text", type=Path, help="a text file for the LM instead")
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--beam", type=int, default=32)
    parser.add_argument("--beam-size-token", type=int, default=8)
    parser.add_argument("--beam-threshold", type=float, default=12.0)
    parser.add_argument("--alpha", type=float, default=1.5)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--peer-python", help="python of a venv with pyctcdecode and NeMo")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the results here")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from convai_asr.decoding.beam import KenLMBeamDecoder
    from convai_asr.decoding.greedy import GreedyCTCDecoder
    from convai_asr.lm.build import build_lm
    from convai_asr.metrics.wer import word_error_rate
    from convai_core.models import ModelBase

    torch.set_num_threads(args.threads)
    model = ModelBase.restore_from(args.model).eval()
    encoder = type(model.encoder).__name__
    print(f"model: {args.model} ({encoder}, {sum(p.numel() for p in model.parameters()):,} params)")
    audio, references = build_batch(args.manifest, args.items)
    references = [model.normalizer(t) for t in references]
    with torch.inference_mode():
        log_probs, lengths = model(audio, torch.full((len(audio),), audio.shape[1]))
    log_probs = log_probs.float().contiguous()
    print(f"log-probs: {tuple(log_probs.shape)} (B, T', V) from {args.items} x 10 s")
    tokenizer = model.tokenizer
    labels = list(tokenizer.tokens)
    if " " not in labels or any(len(t) != 1 for t in labels):
        raise SystemExit(
            "decode_speed.py compares character models (the peers' lexicon spells "
            "words letter by letter); this model has other tokens"
        )
    scratch = tempfile.TemporaryDirectory(prefix="convai-decode-speed-")
    workdir = Path(scratch.name)
    text = args.lm_text
    if text is None:
        from convai_asr.data.manifest import read_manifest

        text = workdir / "lm_text.txt"
        lines = sorted({e.text for e in read_manifest(args.lm_manifest).entries})
        text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lm = workdir / "lm3.bin"
    build_lm([text], lm, order=3, normalizer=model.normalizer)
    unigrams = [
        line.split("\t")[0] for line in Path(f"{lm}.vocab.txt").read_text("utf-8").splitlines()
    ]
    test_words = {w for r in references for w in r.split()}
    oov = len(test_words - set(unigrams)) / max(1, len(test_words))

    greedy = GreedyCTCDecoder(model.blank_id)
    greedy_texts = [tokenizer.decode(h.token_ids) for h in greedy(log_probs, lengths)]
    decoder = KenLMBeamDecoder(
        model.blank_id,
        tokenizer,
        lm=lm,
        alpha=args.alpha,
        beta=args.beta,
        beam=args.beam,
        beam_size_token=args.beam_size_token,
        beam_threshold=args.beam_threshold,
    )
    hyps, seconds = timed(lambda: decoder(log_probs, lengths), args.repeats)
    results: dict[str, dict[str, Any]] = {
        "convai": {
            "texts": [tokenizer.decode(h.token_ids) for h in hyps],
            "seconds_all": seconds,
        }
    }
    if args.peer_python:
        np.savez(workdir / "log_probs.npz", log_probs=log_probs.numpy())
        lexicon = workdir / "nemo_lexicon.txt"
        lexicon.write_text(
            "".join(f"{w}\t{' '.join(w)}\n" for w in unigrams if set(w) <= set(labels)),
            encoding="utf-8",
        )
        settings = {
            "log_probs": str(workdir / "log_probs.npz"),
            "labels": labels,
            "lm": str(lm),
            "unigrams": unigrams,
            "nemo_lexicon": str(lexicon),
            "alpha": args.alpha,
            "beta": args.beta,
            "beam": args.beam,
            "beam_size_token": args.beam_size_token,
            "beam_threshold": args.beam_threshold,
            "repeats": args.repeats,
            "threads": args.threads,
            "peers": ["pyctcdecode", "nemo_flashlight"],
        }
        (workdir / "settings.json").write_text(json.dumps(settings))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["OMP_NUM_THREADS"] = str(args.threads)
        run = subprocess.run(
            [args.peer_python, str(PEER_SCRIPT), str(workdir / "settings.json")],
            capture_output=True,
            text=True,
            env=env,
        )
        if run.returncode != 0:
            raise SystemExit(f"the peer decoders failed:\n{run.stderr[-3000:]}")
        for name, peer in json.loads(run.stdout.strip().splitlines()[-1]).items():
            results[name] = {"texts": peer["texts"], "seconds_all": peer["seconds"]}

    table = []
    for name, result in results.items():
        result["seconds"] = statistics.median(result["seconds_all"])
        result["seconds_min"] = min(result["seconds_all"])
        result["wer"] = word_error_rate(references, result["texts"])
        table.append((name, result["seconds"], result["seconds_min"], result["wer"]))
    greedy_wer = word_error_rate(references, greedy_texts)
    print(
        f"\nbeam {args.beam}, word 3-gram ({len(unigrams):,} words; {oov:.1%} of the test's "
        f"distinct words are outside it), alpha {args.alpha}, beta {args.beta}, "
        f"{args.threads} threads; greedy WER {greedy_wer:.1%}"
    )
    print(f"{'decoder':<18}{'median s':>10}{'min s':>9}{'WER':>8}{'convai faster':>15}")
    for name, median, minimum, wer in table:
        ratio = median / results["convai"]["seconds"]
        print(f"{name:<18}{median:>10.3f}{minimum:>9.3f}{wer:>8.1%}{ratio:>14.2f}x")
    summary = {
        "model": str(args.model),
        "encoder": encoder,
        "log_probs_shape": list(log_probs.shape),
        "beam": args.beam,
        "beam_size_token": args.beam_size_token,
        "beam_threshold": args.beam_threshold,
        "alpha": args.alpha,
        "beta": args.beta,
        "threads": args.threads,
        "lm_words": len(unigrams),
        "test_oov_rate": oov,
        "greedy_wer": greedy_wer,
        "machine": platform.processor() or platform.machine(),
        "decoders": {
            name: {k: v for k, v in r.items() if k != "texts"} for name, r in results.items()
        },
        "examples": {name: r["texts"][0] for name, r in results.items()}
        | {"reference": references[0]},
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        staged = args.json.with_name(f".{args.json.name}.tmp")
        staged.write_text(json.dumps(summary, indent=2) + "\n")
        staged.replace(args.json)
        print(f"results written to {args.json}")
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
