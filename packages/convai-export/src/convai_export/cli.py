"""``convai export --model M.convai --format FMT --output PATH [options]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _formats() -> list[tuple[str, str]]:
    from convai_core.registry import get_registries

    return [(e.key, e.description) for e in get_registries().export_targets]


def _shape(text: str) -> tuple[int, int]:
    try:
        batch, length = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write BATCHxLENGTH, e.g. 8x1001") from None
    return batch, length


def export_main(argv: Sequence[str]) -> int:
    formats = _formats()
    parser = argparse.ArgumentParser(
        prog="convai export",
        description="Export a .convai model and verify the export against the model (real and "
        "random inputs, batch sizes 1 and 3, two lengths); a difference above tolerance is an "
        "error and nothing is written.",
        epilog="formats:\n" + "\n".join(f"  {k:<12} {d}" for k, d in formats),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="the .convai archive to export")
    parser.add_argument(
        "--format", required=True, choices=[k for k, _ in formats], help="export format"
    )
    parser.add_argument("--output", required=True, help="file or folder to write")
    parser.add_argument("--fp16", action="store_true", help="fp16 variant (ONNX formats)")
    parser.add_argument("--opset", type=int, help="ONNX opset (default 18)")
    parser.add_argument("--tolerance", type=float, help="max |difference| allowed in verification")
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    parser.add_argument(
        "--verify-audio",
        nargs="+",
        metavar="FILE",
        help="real input files to verify the export with (the model's export_spec option "
        "verify_audio; models without it refuse it)",
    )
    parser.add_argument(
        "--no-preprocessor",
        action="store_true",
        help="leave the model's preprocessor out of the export, which then starts from its "
        "output (the export_spec option preprocessor=False)",
    )
    parser.add_argument(
        "--static-shape", type=_shape, metavar="BxT", help="trt-onnx: static input shape"
    )
    parser.add_argument("--max-batch", type=int, help="trt-onnx profile / triton max batch size")
    parser.add_argument("--name", help="triton: model name in the repository")
    parser.add_argument(
        "--part",
        help="for models exported as several graphs, which one (the export_spec option part; "
        "tts/tacotron2: encoder, decoder or postnet)",
    )
    args = parser.parse_args(argv)

    from convai_core.models import ModelBase

    model = ModelBase.restore_from(args.model)
    options: dict[str, object] = {"force": args.force}
    for key in ("opset", "tolerance", "verify_audio", "static_shape", "name", "part"):
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    if args.fp16:
        options["fp16"] = True
    if args.no_preprocessor:
        options["preprocessor"] = False
    if args.max_batch is not None:
        options["max_batch_size" if args.format == "triton" else "max_batch"] = args.max_batch
    report = model.export(args.output, format=args.format, **options)
    print(report.summary())
    if report.checks:
        print(report.table())
    sys.stdout.flush()
    return 0
