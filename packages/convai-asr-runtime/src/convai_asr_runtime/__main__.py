"""``python -m convai_asr_runtime transcribe --bundle DIR FILES...`` (also installed as the
``convai-asr-runtime`` command): one JSON line per file, no torch needed."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convai-asr-runtime",
        description="Torch-free speech recognition with an exported convai ASR bundle "
        "(onnxruntime, numpy, soundfile).",
    )
    parser.add_argument("--version", action="store_true", help="print versions and exit")
    sub = parser.add_subparsers(dest="command")
    tr = sub.add_parser(
        "transcribe",
        help="transcribe audio files; one JSON line per file",
        description="Transcribe audio files (or JSON-lines manifests) with an ASR bundle; "
        "writes one JSON line per file with its text and word timestamps.",
    )
    tr.add_argument(
        "--bundle", required=True, help="bundle folder (convai export --format asr-bundle)"
    )
    tr.add_argument("files", nargs="*", help="audio files or .json/.jsonl manifests")
    tr.add_argument("--manifest", action="append", default=[], help="a manifest to transcribe")
    tr.add_argument("--output", help="write the JSON lines here instead of to stdout")
    tr.add_argument("--batch-size", type=int, default=8, help="files per batch (default 8)")
    tr.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a bad bundle, audio or manifest)."""
    parser = _parser()
    args = parser.parse_args(argv)
    from convai_asr_runtime import BUNDLE_SCHEMA_VERSION, __version__

    if args.version:
        print(f"convai-asr-runtime {__version__} (bundle schema {BUNDLE_SCHEMA_VERSION})")
        return 0
    if args.command is None:
        parser.error("choose a command: transcribe")
    inputs = [*args.files, *args.manifest]
    if not inputs:
        parser.error("give audio files or --manifest")

    from convai_asr_runtime.audio import AudioReadError
    from convai_asr_runtime.bundle import Bundle
    from convai_asr_runtime.schema import BundleError

    try:
        bundle = Bundle(args.bundle, threads=args.threads)
        results = bundle.transcribe(inputs, batch_size=args.batch_size)
    except (AudioReadError, BundleError, FileNotFoundError) as exc:
        print(f"convai-asr-runtime: error: {exc}", file=sys.stderr)
        return 2
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    if args.output:
        out = Path(args.output)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
