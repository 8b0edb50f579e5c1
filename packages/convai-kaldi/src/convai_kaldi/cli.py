"""``convai kaldi``: validate Kaldi data directories, convert them to and from manifests,
compute features."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from convai_core.errors import ConvaiError

_PIPES_HELP = (
    "allow wav.scp/feats.scp entries that are shell commands ('... |'); refused by default "
    "because reading them runs whatever the file says"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convai kaldi",
        description="Kaldi data directories (wav.scp, segments, text, utt2spk, feats.scp...).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a data directory as validate_data_dir.sh does")
    p.add_argument("data_dir")
    p.add_argument("--no-check-files", action="store_true", help="skip checking audio files")
    p.add_argument("--allow-pipes", action="store_true", help=_PIPES_HELP)

    p = sub.add_parser("to-manifest", help="write a data directory as a JSON-lines manifest")
    p.add_argument("data_dir")
    p.add_argument("manifest")
    p.add_argument(
        "--root", help="folder relative wav.scp paths start from (default: current directory)"
    )
    p.add_argument("--allow-pipes", action="store_true", help=_PIPES_HELP)

    p = sub.add_parser("from-manifest", help="write a JSON-lines manifest as a data directory")
    p.add_argument("manifest")
    p.add_argument("data_dir")
    p.add_argument(
        "--relative-to", help="write wav.scp paths relative to this folder (default: absolute)"
    )

    p = sub.add_parser(
        "compute-feats", help="compute features with a convai preprocessor into ark/scp"
    )
    p.add_argument("data_dir")
    p.add_argument("--ark-dir", help="where the .ark files go (default: DATA_DIR/data)")
    p.add_argument("--model", help="use this .convai model's preprocessor")
    p.add_argument(
        "--preprocessor",
        default="asr/mel_spectrogram",
        help="preprocessor registry key when no --model (default: asr/mel_spectrogram)",
    )
    p.add_argument("--n-mels", type=int, default=80, help="mel bins of --preprocessor")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--compress", action="store_true", help="write compressed matrices")
    p.add_argument("--cmvn", action="store_true", help="also write per-speaker cmvn.scp")
    p.add_argument("--allow-pipes", action="store_true", help=_PIPES_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            from convai_kaldi.datadir import validate_data_dir

            problems = validate_data_dir(
                args.data_dir, allow_pipes=args.allow_pipes, check_files=not args.no_check_files
            )
            for problem in problems:
                print(problem)
            print(f"{args.data_dir}: {'valid' if not problems else f'{len(problems)} problem(s)'}")
            return 1 if problems else 0
        if args.command == "to-manifest":
            from convai_kaldi.manifest import to_manifest

            count = to_manifest(
                args.data_dir, args.manifest, root=args.root, allow_pipes=args.allow_pipes
            )
            print(f"wrote {count} utterances to {args.manifest}")
            return 0
        if args.command == "from-manifest":
            from convai_kaldi.manifest import from_manifest

            data = from_manifest(args.manifest, args.data_dir, relative_to=args.relative_to)
            files = "wav.scp, segments" if data.segments is not None else "wav.scp"
            print(
                f"wrote {len(data.utt2spk)} utterances to {args.data_dir} ({files}, text, "
                "utt2spk, spk2utt, utt2dur)"
            )
            return 0
        from convai_kaldi.features import compute_feats

        result = compute_feats(
            args.data_dir,
            ark_dir=args.ark_dir,
            model=args.model,
            preprocessor=None if args.model else {"name": args.preprocessor, "n_mels": args.n_mels},
            sample_rate=args.sample_rate,
            compress=args.compress,
            cmvn=args.cmvn,
            allow_pipes=args.allow_pipes,
        )
        print(json.dumps(result))
        return 0
    except (ConvaiError, OSError) as exc:
        print(f"convai kaldi {args.command}: {exc}", file=sys.stderr)
        return 1
