"""``python -m convai_export.runtime transcribe --bundle DIR FILES...`` (no torch needed)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m convai_export.runtime",
        description="Torch-free ASR with an exported bundle (onnxruntime, numpy, soundfile).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser(
        "transcribe",
        help="transcribe audio files; one JSON line per file",
        description="Transcribe audio files (or JSON-lines manifests) with an asr-bundle; "
        "writes one JSON line per file with text and word timestamps.",
    )
    tr.add_argument(
        "--bundle", required=True, help="bundle folder (convai export --format asr-bundle)"
    )
    tr.add_argument("files", nargs="*", help="audio files or .json/.jsonl manifests")
    tr.add_argument("--manifest", action="append", default=[], help="a manifest to transcribe")
    tr.add_argument("--output", help="write JSON lines here instead of stdout")
    tr.add_argument("--batch-size", type=int, default=8, help="files per batch (default 8)")
    tr.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    args = parser.parse_args(argv)

    from convai_export.runtime.audio import AudioReadError
    from convai_export.runtime.bundle import Bundle, RuntimeBundleError

    inputs = [*args.files, *args.manifest]
    if not inputs:
        parser.error("give audio files or --manifest")
    try:
        bundle = Bundle(args.bundle, threads=args.threads)
        results = bundle.transcribe(inputs, batch_size=args.batch_size)
    except (AudioReadError, RuntimeBundleError, FileNotFoundError) as exc:
        print(f"convai_export.runtime: error: {exc}", file=sys.stderr)
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
