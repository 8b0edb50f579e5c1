"""``convai lm build|tune|tools``: n-gram language models for beam-search decoding."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected integers, got {text!r}") from err


def _load_model(name: str) -> Any:
    from convai_core.models.base import ModelBase

    if Path(name).is_file():
        return ModelBase.restore_from(name, map_location="cpu")
    return ModelBase.from_pretrained(name, map_location="cpu")


def build_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai lm build",
        description="Estimate an n-gram language model from text with KenLM (modified "
        "Kneser-Ney; lmplz and build_binary are built from the kenlm sdist on first use, about a "
        "minute). The text is normalized like transcripts. Writes OUTPUT (a KenLM binary, or "
        "ARPA when it ends in .arpa), OUTPUT.vocab.txt (the words and their counts: the lexicon "
        "of lexicon decoding) and OUTPUT.json (what the LM holds).",
    )
    parser.add_argument("--text", required=True, nargs="+", help="UTF-8 text file(s), a line each")
    parser.add_argument("--output", required=True, help="lm.bin, or lm.arpa for ARPA text")
    parser.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    parser.add_argument(
        "--units",
        choices=["word", "char", "tokens"],
        default="word",
        help="word (lexicon decoding), char (lexicon-free decoding of a character model) or "
        "tokens (lexicon-free decoding of a subword model; needs --model)",
    )
    parser.add_argument(
        "--prune",
        type=_ints,
        default=[],
        help="lmplz --prune counts, one per order, e.g. '0 0 1' drops trigram singletons",
    )
    parser.add_argument(
        "--model",
        help="a .convai ASR model: normalize to its characters (and its tokens for --units tokens)",
    )
    parser.add_argument(
        "--no-normalize", action="store_true", help="use the text as it is (already normalized)"
    )
    parser.add_argument("--memory", default="20%", help="lmplz -S (sort memory), default 20%%")
    args = parser.parse_args(argv)
    from convai_asr.lm.build import build_lm
    from convai_asr.text.normalize import TextNormalizer

    tokenizer = None
    normalizer = None
    if args.model:
        model = _load_model(args.model)
        normalizer, tokenizer = model.normalizer, model.tokenizer
    if args.no_normalize:
        normalizer = TextNormalizer(None, lowercase=False, numbers_to_words=False)
    if args.units == "tokens" and tokenizer is None:
        parser.error("--units tokens needs --model M.convai (its tokenizer splits the text)")
    info = build_lm(
        args.text,
        args.output,
        order=args.order,
        units=args.units,
        prune=args.prune,
        normalizer=normalizer,
        tokenizer=tokenizer,
        memory=args.memory,
    )
    print(json.dumps({"lm": args.output, **info.__dict__}, indent=2, default=str))
    return 0


def tune_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai lm tune",
        description="Grid-search beam search's LM weight (alpha) and word bonus (beta) on a dev "
        "manifest: the model runs once, each grid point re-decodes. Prints a line per point and "
        "the best; --output saves the whole grid as JSON.",
    )
    parser.add_argument("--model", required=True, help="a .convai ASR model")
    parser.add_argument("--manifest", required=True, help="dev manifest(s), comma-separated")
    parser.add_argument("--lm", required=True, help="KenLM file (convai lm build)")
    parser.add_argument("--alphas", type=_floats, default=[0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
    parser.add_argument("--betas", type=_floats, default=[-1.0, 0.0, 1.0, 2.0, 3.0])
    parser.add_argument("--beam", type=int, default=32)
    parser.add_argument(
        "--lexicon",
        default="auto",
        help="auto (the LM's words), a lexicon file, or none (lexicon-free, token LM)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--output", help="write the grid and the best point here (JSON)")
    args = parser.parse_args(argv)
    from convai_asr.lm.tune import tune_lm

    result = tune_lm(
        _load_model(args.model),
        args.manifest,
        args.lm,
        alphas=args.alphas,
        betas=args.betas,
        beam=args.beam,
        lexicon=None if args.lexicon == "none" else args.lexicon,
        batch_size=args.batch_size,
    )
    best = result["best"]
    print(
        f"best: alpha {best['alpha']:g} beta {best['beta']:g}: WER {best['wer']:.2%} "
        f"(greedy {result['greedy']['wer']:.2%}); decode with --alpha {best['alpha']:g} "
        f"--beta {best['beta']:g}"
    )
    if args.output:
        out = Path(args.output)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(result, indent=2))
        tmp.replace(out)
    return 0


def tools_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai lm tools",
        description="Find KenLM's lmplz and build_binary, building them from the checksum-pinned "
        "kenlm sdist when missing (needs cmake, g++ and Boost; the error says what to install).",
    )
    parser.parse_args(argv)
    from convai_asr.lm.kenlm_tools import kenlm_tools

    tools = kenlm_tools()
    print(f"lmplz: {tools.lmplz}\nbuild_binary: {tools.build_binary}")
    return 0


TOOLS = {
    "build": (build_main, "estimate an n-gram LM from text (KenLM)"),
    "tune": (tune_main, "grid-search alpha and beta on a dev manifest"),
    "tools": (tools_main, "find or build KenLM's lmplz and build_binary"),
}


def lm_main(argv: Sequence[str]) -> int:
    """``convai lm <tool> ...``."""
    from convai_core.cli import run_tool

    return run_tool("convai lm", TOOLS, argv)
