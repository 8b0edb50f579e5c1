"""`make demo-tts`: train convai's acoustic model on a teacher corpus and speak with it.

Steps (each shows progress): news sentences from the Lee corpus (gensim wheel) -> a teacher
corpus spoken by the piper voice with exact per-symbol durations (`convai tts data teacher`) ->
`convai train model=tts/fastpitch` for DEMO_TTS_MINUTES (default 28) on 2 CPU threads, in
bfloat16 autocast where the CPU has bf16 instructions (AVX512-BF16 or AMX; elsewhere bf16 is
emulated and many times slower, so fp32) -> the
archive runs/tts_demo/voice.convai and a sample runs/tts_demo/sample.wav (Griffin-Lim vocoder).
Judge the result with `python benchmarks/tts_quality.py --model runs/tts_demo/voice.convai`.

Environment: DEMO_TTS_MINUTES, DEMO_TTS_STEPS (the learning rate decays over them, training stops
at the first of the two limits; default: as many as the minutes allow at the step time measured
on this machine before training), DEMO_TTS_PRECISION (default: bf16-mixed or 32 as above),
DEMO_TTS_SENTENCES (training sentences, default 1300),
DEMO_TTS_OUT (default runs/tts_demo), DEMO_TTS_DATA (teacher corpus, default
$CONVAI_CACHE/tts_demo_corpus: built once, reused). Arguments are extra `convai train`
overrides (`python tools/demo_tts.py model.optim.lr=2e-3`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("DEMO_TTS_OUT", ROOT / "runs" / "tts_demo"))
MINUTES = float(os.environ.get("DEMO_TTS_MINUTES", "28"))
# the cosine schedule decays over this many steps (default: measured, see measured_steps)
STEPS = int(os.environ.get("DEMO_TTS_STEPS", "0"))
SENTENCES = int(os.environ.get("DEMO_TTS_SENTENCES", "1300"))
VALIDATION = 40
SAMPLE = (
    "Speech synthesis turns text into sound. This voice was trained in under half an hour, "
    "on two processor cores, from a teacher's recordings."
)


def corpus_folder() -> Path:
    from convai_core.pretrained import cache_dir

    return Path(os.environ.get("DEMO_TTS_DATA", cache_dir() / "tts_demo_corpus"))


def teacher_corpora() -> tuple[Path, Path]:
    """(train manifest, validation manifest), synthesized once into the cache."""
    from convai_core.corpora import news_sentences
    from convai_tts.data.teacher import build_teacher_corpus

    sentences = news_sentences(min_words=4, max_words=25)
    train, validation = sentences[:SENTENCES], sentences[-VALIDATION:]
    if set(train) & set(validation):
        raise SystemExit("the corpus is too small for disjoint training and validation text")
    folder = corpus_folder()
    manifests = []
    for name, lines in (("train", train), ("validation", validation)):
        target = folder / f"{name}-{len(lines)}"
        manifest = target / "manifest.jsonl"
        if not manifest.is_file():
            print(f"demo-tts: teacher corpus '{name}': {len(lines)} sentences -> {target}")
            build_teacher_corpus(lines, target)
        manifests.append(manifest)
    return manifests[0], manifests[1]


def measured_steps(
    train_manifest: Path, precision: str, minutes: float, overrides: list[str]
) -> int:
    """How many training steps fit in ``minutes``: a few steps of the model (the shipped config
    with the command line's ``model.*`` overrides) on a real batch are timed first (validation
    and checkpoints take ~8% of a run on top)."""
    import torch

    from convai_core.train import compose_config
    from convai_tts.data.dataset import DurationDataset, collate_durations
    from convai_tts.models.fastpitch import FastPitchModel

    model_overrides = [o for o in overrides if o.lstrip("+").startswith("model.")]
    cfg = compose_config(
        ["model=tts/fastpitch", f"model.train_ds.manifest={train_manifest}", *model_overrides]
    )
    model = FastPitchModel(cfg.model)
    dataset = DurationDataset(train_manifest, model.mel_config, symbols=model.symbols)
    # training batches hold clips of similar length (length buckets): time one of median length
    order = sorted(range(len(dataset)), key=dataset.frames)
    middle = len(order) // 2
    batch = collate_durations([dataset[i] for i in order[max(0, middle - 8) : middle + 8]])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = torch.bfloat16 if precision.startswith("bf16") else None
    times = []
    for _ in range(4):
        began = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model.losses(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - began)
    step = sorted(times[1:])[1]  # the median of the steps after the first
    return max(100, int(minutes * 60 * 0.92 / step))


def main() -> int:
    from convai_core.progress import ProgressLines
    from convai_core.train import compose_config, train
    from convai_core.trainer import cpu_has_native_bf16
    from convai_tts.data.tools import report_manifest
    from convai_tts.synthesize import Synthesizer

    started = time.perf_counter()
    train_manifest, validation_manifest = teacher_corpora()
    report = report_manifest(train_manifest)
    print(f"demo-tts: training data {json.dumps(report)}")
    if (OUT / "experiments").exists():
        shutil.rmtree(OUT / "experiments")
    seconds = int(MINUTES * 60)
    hours, rest = divmod(seconds, 3600)
    precision = os.environ.get("DEMO_TTS_PRECISION") or (
        "bf16-mixed" if cpu_has_native_bf16() else "32"
    )
    steps = STEPS or measured_steps(train_manifest, precision, MINUTES, sys.argv[1:])
    print(f"demo-tts: precision {precision}, learning rate decaying over {steps} steps")
    overrides = [
        "model=tts/fastpitch",
        f"model.train_ds.manifest={train_manifest}",
        f"model.validation_ds.manifest={validation_manifest}",
        f"trainer.max_time=00:{hours:02d}:{rest // 60:02d}:{rest % 60:02d}",
        f"trainer.max_steps={steps}",
        "trainer.max_epochs=1000",
        "trainer.accelerator=cpu",
        # bfloat16 autocast: steps 1.45x faster on CPUs with AVX-512 bf16 (0.75 s against 1.09 s)
        f"trainer.precision={precision}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.log_every_n_steps=25",
        "trainer.check_val_every_n_epoch=5",
        f"exp_manager.exp_dir={OUT / 'experiments'}",
        "exp_manager.name=tts_demo",
        *sys.argv[1:],
    ]
    cfg = compose_config(overrides)
    print(f"demo-tts: training tts/fastpitch for at most {MINUTES:g} min")
    start = time.perf_counter()
    result = train(cfg, extra_callbacks=[ProgressLines(every_s=30.0)])
    train_s = time.perf_counter() - start
    OUT.mkdir(parents=True, exist_ok=True)
    archive = OUT / "voice.convai"
    shutil.copyfile(result.archive, archive)
    tts = Synthesizer.from_files(archive)
    began = time.perf_counter()
    sample = tts.to_file(SAMPLE, OUT / "sample.wav")
    import soundfile as sf

    audio_s = sf.info(str(sample)).duration
    params = sum(p.numel() for p in tts.model.parameters()) / 1e6
    print(
        f"demo-tts: {params:.2f}M parameters, {result.global_step} steps in {train_s / 60:.1f} min "
        f"on {report['hours']:.2f} h of teacher speech"
    )
    print(
        f"demo-tts: {archive}\n          {sample} ({audio_s:.1f} s of audio, synthesized at "
        f"real-time factor {(time.perf_counter() - began) / audio_s:.3f})"
    )
    print(f"demo-tts: done in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
