"""Build a speech dataset from text with several offline voices, split by voice.

Layout written under ``out_dir``::

    wavs/<voice>/<id>.wav        16 kHz mono speech
    train_manifest.jsonl         training sentences spoken by the training voices
    dev_manifest.jsonl           held-out sentences, training voices
    test_manifest.jsonl          held-out sentences, unseen test voices (never in training)
    dataset.json                 the settings, counts and hours of each split

Manifest text is normalized for a character model (lowercase, digits as words, only letters,
space and apostrophe); the voices read the original sentence.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convai_asr.synth.voices import Voice, check_engines, synthesize


@dataclass(frozen=True)
class _Job:
    voice: Voice
    text: str
    transcript: str
    path: Path
    seed: int
    split: str
    sample_rate: int


def _run(job: _Job) -> tuple[_Job, float]:
    return job, synthesize(
        job.voice, job.text, job.path, sample_rate=job.sample_rate, seed=job.seed
    )


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def build_synthetic_dataset(
    sentences: Sequence[str],
    out_dir: str | os.PathLike[str],
    *,
    train_voices: Sequence[str],
    test_voices: Sequence[str],
    normalize: Callable[[str], str],
    num_train_sentences: int | None = None,
    num_heldout_sentences: int = 40,
    voices_per_sentence: int = 1,
    every_sentence_voices: Sequence[str] = (),
    sample_rate: int = 16000,
    workers: int = 2,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, object]:
    """Synthesize the three splits and write their manifests; returns the dataset summary.

    ``num_heldout_sentences`` sentences are kept out of training; the dev split speaks them with
    the training voices and the test split with the unseen ``test_voices``. Each training
    sentence is spoken by ``voices_per_sentence`` of ``train_voices`` in turn, and also by every
    voice of ``every_sentence_voices`` (training voices too: a natural voice such as
    ``piper:joe`` that should speak all of them).
    """
    train_v = [Voice.parse(v) for v in train_voices]
    every_v = [Voice.parse(v) for v in every_sentence_voices]
    test_v = [Voice.parse(v) for v in test_voices]
    if set(train_v + every_v) & set(test_v):
        raise ValueError("a voice cannot be both a training and a test voice")
    check_engines(train_v + every_v + test_v)
    pairs = [(s, normalize(s)) for s in sentences]
    pairs = [(s, t) for s, t in pairs if t.strip()]
    rng = random.Random(seed)
    rng.shuffle(pairs)
    heldout, train = pairs[:num_heldout_sentences], pairs[num_heldout_sentences:]
    if num_train_sentences is not None:
        train = train[:num_train_sentences]
    out = Path(out_dir)
    jobs: list[_Job] = []

    def add(
        split: str,
        items: list[tuple[str, str]],
        voices: list[Voice],
        per: int,
        every: Sequence[Voice] = (),
    ) -> None:
        for i, (text, transcript) in enumerate(items):
            chosen = [voices[(i * per + k) % len(voices)] for k in range(per)] if voices else []
            for k, voice in enumerate(chosen + [v for v in every if v not in chosen]):
                name = f"{split}_{i:05d}_{k}.wav"
                folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", voice.key)
                jobs.append(
                    _Job(
                        voice,
                        text,
                        transcript,
                        out / "wavs" / folder / name,
                        rng.randrange(1 << 30),
                        split,
                        sample_rate,
                    )
                )

    add("train", train, train_v, voices_per_sentence, every_v)
    add("dev", heldout, train_v, 1)
    add("test", heldout, test_v, len(test_v))
    rows: dict[str, list[dict[str, Any]]] = {"train": [], "dev": [], "test": []}
    done = 0
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        for job, duration in pool.map(_run, jobs, chunksize=8):
            rows[job.split].append(
                {
                    "audio_filepath": str(job.path.relative_to(out)),
                    "duration": round(duration, 3),
                    "text": job.transcript,
                    "speaker": job.voice.key,
                }
            )
            done += 1
            if progress:
                progress(done, len(jobs))
    splits: dict[str, dict[str, float]] = {}
    summary: dict[str, Any] = {
        "sample_rate": sample_rate,
        "train_voices": list(train_voices),
        "every_sentence_voices": list(every_sentence_voices),
        "test_voices": list(test_voices),
        "splits": splits,
    }
    for split, items in rows.items():
        manifest = out / f"{split}_manifest.jsonl"
        tmp = manifest.with_name(f".{manifest.name}.tmp")
        tmp.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8"
        )
        os.replace(tmp, manifest)
        hours = sum(float(r["duration"]) for r in items) / 3600
        splits[split] = {"utterances": len(items), "hours": round(hours, 4)}
    (out / "dataset.json").write_text(json.dumps(summary, indent=2))
    return summary
