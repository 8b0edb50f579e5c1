"""``convai explore MANIFEST [--predictions HYP.jsonl]``: serve the Speech Data Explorer.

Argument parsing imports neither Dash nor torch, so ``convai explore --help`` is instant and works
without the ``explorer`` extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convai_asr.explorer.dataset import Dataset
    from convai_asr.explorer.predictions import ErrorAnalysis

__all__ = ["load_explorer_data", "main"]

INSTALL_HINT = "pip install 'convai-asr[explorer]'"


def _has_pred_text(manifest: str) -> bool:
    with open(manifest, "rb") as handle:
        return b'"pred_text"' in handle.read()


def load_explorer_data(
    manifest: str | os.PathLike[str],
    predictions: str | os.PathLike[str] | None = None,
    *,
    use_cache: bool = True,
) -> tuple[Dataset, ErrorAnalysis | None]:
    """The dataset and, with predictions, its error analysis (both cached).

    Without ``predictions``, a manifest whose lines carry ``pred_text`` (NeMo's
    ``transcribe_speech.py`` output) is its own predictions file.
    """
    from convai_asr.explorer.dataset import load_dataset
    from convai_asr.explorer.predictions import load_error_analysis

    dataset = load_dataset(manifest, use_cache=use_cache)
    if predictions is None and _has_pred_text(os.fspath(manifest)):
        predictions = manifest
    analysis = (
        None
        if predictions is None
        else load_error_analysis(dataset, predictions, use_cache=use_cache)
    )
    return dataset, analysis


def main(argv: Sequence[str]) -> int:
    """Run ``convai explore``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="convai explore",
        description="Speech Data Explorer: a browser view of a JSON-lines manifest (ASR or TTS): "
        "statistics (durations, alphabet, vocabulary, speakers), a filterable, sortable table of "
        "utterances with waveform, spectrogram and audio player, and, with --predictions, error "
        "analysis (WER, CER, word match rate, mean word accuracy, word diffs). Statistics are "
        "cached in $CONVAI_CACHE/explorer. Needs the explorer extra: " + INSTALL_HINT,
    )
    parser.add_argument("manifest", help="JSON-lines manifest (audio_filepath, duration, text)")
    parser.add_argument(
        "--predictions",
        help="JSON lines of hypotheses, as written by `convai transcribe --output` (or a "
        "manifest with pred_text); matched to utterances by audio_filepath and offset",
    )
    parser.add_argument(
        "--vocab",
        help="a vocabulary file (one word per line; the first field counts, so `word count` "
        "files and lexicons work): the manifest's other words are marked out-of-vocabulary",
    )
    parser.add_argument("--port", type=int, default=8050, help="port to serve on (default 8050)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default 127.0.0.1: this machine only; 0.0.0.0 shows your "
        "data to the whole network)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="compute everything afresh, write no cache"
    )
    args = parser.parse_args(argv)
    if importlib.util.find_spec("dash") is None:
        print(
            f"convai explore: the Speech Data Explorer needs Dash, which is not installed; "
            f"install it with: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    if not Path(args.manifest).expanduser().is_file():
        parser.error(f"manifest {args.manifest!r} does not exist or is not a file")
    if args.predictions and not Path(args.predictions).expanduser().is_file():
        parser.error(f"predictions file {args.predictions!r} does not exist or is not a file")
    from convai_asr.explorer.app import build_app
    from convai_asr.explorer.dataset import read_word_list

    start = time.perf_counter()
    dataset, analysis = load_explorer_data(
        args.manifest, args.predictions, use_cache=not args.no_cache
    )
    known_words = read_word_list(args.vocab) if args.vocab else None
    app = build_app(dataset, analysis, known_words=known_words)
    stats = dataset.stats
    print(
        f"convai explore: {stats.utterances:,} utterances ({stats.total_hours:.2f} h) from "
        f"{args.manifest} in {time.perf_counter() - start:.2f} s"
        + (" (statistics from the cache)" if dataset.from_cache else ""),
        file=sys.stderr,
    )
    if dataset.skipped_lines:
        print(f"  skipped {dataset.skipped_lines} malformed line(s)", file=sys.stderr)
    if dataset.missing_audio:
        print(f"  {len(dataset.missing_audio)} audio file(s) missing", file=sys.stderr)
    if analysis is not None:
        print(
            f"  predictions: {analysis.matched:,} matched, WER {100 * analysis.wer_total:.2f} %, "
            f"CER {100 * analysis.cer_total:.2f} %; {analysis.unmatched_lines} line(s) matched "
            "no utterance",
            file=sys.stderr,
        )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"  warning: serving on {args.host}: anyone who can reach this port can browse and "
            "listen to the dataset",
            file=sys.stderr,
        )
    print(f"  open http://{args.host}:{args.port}/ (Ctrl+C stops the server)", file=sys.stderr)
    try:
        app.run(host=args.host, port=args.port, debug=False)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(
            f"convai explore: cannot serve on {args.host}:{args.port} ({exc}); choose another "
            "--port (or --host)",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
