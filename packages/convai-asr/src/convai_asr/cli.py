"""Command-line tools of convai-asr: ``convai transcribe`` and ``convai asr synth|tokenizer|augment``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def transcribe_main(argv: Sequence[str]) -> int:
    """``convai transcribe --model M.convai [FILES... | --manifest M.jsonl] [--output out.jsonl]``."""
    parser = argparse.ArgumentParser(
        prog="convai transcribe",
        description="Transcribe audio files with a .convai speech-recognition model. Writes one "
        "JSON line per file with its text and word timestamps (seconds).",
    )
    parser.add_argument("--model", required=True, help="a .convai archive or a pretrained name")
    parser.add_argument("files", nargs="*", help="audio files (wav, flac, ogg)")
    parser.add_argument("--manifest", help="a JSON-lines manifest whose audio_filepath to read")
    parser.add_argument("--output", help="write JSON lines here (default: standard output)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        default=30.0,
        help="files longer than this are transcribed in overlapping chunks",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    beam = parser.add_argument_group(
        "decoding", "default: the model's own decoder (greedy); --lm switches to asr/beam_kenlm"
    )
    beam.add_argument(
        "--decoder", help="a decoders key (convai list decoders), e.g. asr/beam_kenlm"
    )
    beam.add_argument("--lm", help="KenLM file for beam search (convai lm build)")
    beam.add_argument(
        "--lexicon",
        default="auto",
        help="auto (the LM's words), a lexicon file, or none (lexicon-free with a token LM)",
    )
    beam.add_argument("--alpha", type=float, help="LM weight (convai lm tune finds it)")
    beam.add_argument("--beta", type=float, help="word insertion bonus")
    beam.add_argument("--beam", type=int, help="beam size (default 32)")
    parser.add_argument(
        "--postprocess",
        help="a .convai text model run on each transcript, e.g. punctuation and capitalization "
        "(nlp/punctuation_capitalization); the recognizer's own text is kept as raw_text",
    )
    args = parser.parse_args(argv)
    if not args.files and not args.manifest:
        parser.error("give audio FILES or --manifest")
    decoder = args.decoder or ("asr/beam_kenlm" if args.lm else None)
    if decoder is None and any(v is not None for v in (args.alpha, args.beta, args.beam)):
        parser.error("--alpha/--beta/--beam set beam search: give --lm (or --decoder)")
    from convai_asr.transcribe import write_jsonl
    from convai_core.models.base import ModelBase

    if Path(args.model).is_file():
        model = ModelBase.restore_from(args.model, map_location=args.device)
    else:
        model = ModelBase.from_pretrained(args.model, map_location=args.device)
    if not hasattr(model, "transcribe"):
        parser.error(f"{args.model} holds a {type(model).__name__}, which cannot transcribe")
    processor = None
    if args.postprocess:
        from convai_core.postprocess import load_text_processor

        processor = load_text_processor(args.postprocess, map_location=args.device)
    if decoder is not None:
        node: dict[str, object] = {"name": decoder}
        if decoder == "asr/beam_kenlm":
            node["lm"] = args.lm
            node["lexicon"] = None if args.lexicon == "none" else args.lexicon
        for key in ("alpha", "beta", "beam"):
            if getattr(args, key) is not None:
                node[key] = getattr(args, key)
        model.change_decoding(node)  # type: ignore[operator]
    inputs = list(args.files) + ([args.manifest] if args.manifest else [])
    results = model.transcribe(
        inputs,
        batch_size=args.batch_size,  # type: ignore[operator]
        chunk_seconds=args.chunk_seconds,
    )
    if processor is not None:
        rewritten = processor.process_texts([r["text"] for r in results])
        for result, text in zip(results, rewritten, strict=True):
            result["raw_text"], result["text"] = result["text"], text
    if args.output:
        write_jsonl(results, Path(args.output))
    else:
        for r in results:
            print(json.dumps(r, ensure_ascii=False))
    return 0


def synth_main(argv: Sequence[str]) -> int:
    from convai_asr.synth.voices import DEFAULT_TEST_VOICES, DEFAULT_TRAIN_VOICES

    parser = argparse.ArgumentParser(
        prog="convai asr synth",
        description="Turn text into a speech dataset with offline voices (espeak-ng, flite, the "
        "piper neural voice piper:joe), split by voice: the test voices never appear in training. "
        "Writes wavs and train/dev/test manifests under --out.",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--text",
        help="a UTF-8 text file, one sentence a line (default: the "
        "Lee news corpus from the gensim wheel)",
    )
    parser.add_argument("--train-voices", default=",".join(DEFAULT_TRAIN_VOICES))
    parser.add_argument("--test-voices", default=",".join(DEFAULT_TEST_VOICES))
    parser.add_argument("--num-train-sentences", type=int, default=None)
    parser.add_argument("--num-heldout-sentences", type=int, default=40)
    parser.add_argument(
        "--voices-per-sentence",
        type=int,
        default=1,
        help="how many of the training voices (in turn) speak each training sentence",
    )
    parser.add_argument(
        "--every-sentence-voices",
        default="",
        help="comma-separated training voices that speak every training sentence besides "
        "(e.g. piper:joe, a natural-sounding neural voice; GPL-3, installed on first use into a "
        "side environment in the cache)",
    )
    parser.add_argument("--max-words", type=int, default=20)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from convai_asr.synth.corpora import news_sentences, text_file_sentences
    from convai_asr.synth.dataset import build_synthetic_dataset
    from convai_asr.text.normalize import TextNormalizer
    from convai_asr.text.tokenizers import CharTokenizer

    if args.text:
        sentences = text_file_sentences(Path(args.text), max_words=args.max_words)
    else:
        sentences = news_sentences(max_words=args.max_words)
    normalizer = TextNormalizer(CharTokenizer.english().tokens)

    terminal = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        # a terminal line rewritten in place; in a log, a line every 10%
        if terminal and (done % 20 == 0 or done == total):
            print(f"\rsynthesized {done}/{total}", end="", file=sys.stderr, flush=True)
        elif not terminal and (done % max(1, total // 10) == 0 or done == total):
            print(f"synthesized {done}/{total} utterances", file=sys.stderr, flush=True)

    summary = build_synthetic_dataset(
        sentences,
        args.out,
        train_voices=args.train_voices.split(","),
        test_voices=args.test_voices.split(","),
        normalize=normalizer,
        num_train_sentences=args.num_train_sentences,
        num_heldout_sentences=args.num_heldout_sentences,
        voices_per_sentence=args.voices_per_sentence,
        every_sentence_voices=[v for v in args.every_sentence_voices.split(",") if v],
        sample_rate=args.sample_rate,
        workers=args.workers,
        seed=args.seed,
        progress=progress,
    )
    if terminal:
        print(file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0


def tokenizer_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai asr tokenizer",
        description="Train a SentencePiece subword tokenizer on the (normalized) text of "
        "manifests. Use it with model.tokenizer.name=asr/sentencepiece "
        "model.tokenizer.model_path=OUT/tokenizer.model; the model file is stored inside every "
        ".convai archive the model saves.",
    )
    parser.add_argument("--manifest", required=True, help="manifest(s), comma-separated")
    parser.add_argument("--vocab-size", type=int, required=True)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--model-type", choices=["unigram", "bpe"], default="unigram")
    args = parser.parse_args(argv)
    from convai_asr.data.manifest import read_manifests
    from convai_asr.text.normalize import TextNormalizer
    from convai_asr.text.tokenizers import train_sentencepiece

    normalize = TextNormalizer(None)
    texts = [normalize(e.text) for e in read_manifests(args.manifest).entries]
    path = train_sentencepiece(
        texts, vocab_size=args.vocab_size, output_dir=Path(args.out), model_type=args.model_type
    )
    print(path)
    return 0


def augment_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai asr augment",
        description="Write augmented copies of a manifest's audio (offline augmentation) and a "
        "manifest of them. RECIPE is a YAML file with a list of augmentation nodes, the same list "
        "a data section's 'augmentations' takes, e.g. [{name: asr/speed_perturb}, {name: "
        "asr/noise, min_snr_db: 10, max_snr_db: 30, prob: 0.5}]; `convai list augmentations` "
        "shows the keys.",
    )
    parser.add_argument("--manifest", required=True, help="source manifest(s), comma-separated")
    parser.add_argument("--recipe", required=True, help="YAML file listing the augmentations")
    parser.add_argument("--copies", type=int, default=1, help="augmented copies per utterance")
    parser.add_argument("--output", required=True, help="output folder (audio/ and manifest.jsonl)")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep-original", action="store_true", help="list the source utterances too"
    )
    args = parser.parse_args(argv)
    from convai_asr.augment.offline import augment_manifest, read_recipe

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"augmented {done}/{total} utterances", file=sys.stderr, flush=True)

    path = augment_manifest(
        args.manifest,
        read_recipe(args.recipe),
        args.output,
        copies=args.copies,
        sample_rate=args.sample_rate,
        seed=args.seed,
        keep_original=args.keep_original,
        progress=progress,
    )
    print(path)
    return 0


TOOLS = {
    "synth": (synth_main, "build a synthetic speech dataset from text"),
    "augment": (augment_main, "write augmented copies of a manifest's audio (offline)"),
    "tokenizer": (tokenizer_main, "train a SentencePiece tokenizer on manifest text"),
}


def asr_main(argv: Sequence[str]) -> int:
    """``convai asr <tool> ...``: the ASR data tools."""
    from convai_core.cli import run_tool

    return run_tool("convai asr", TOOLS, argv)
