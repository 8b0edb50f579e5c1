"""Whisper tiny.en's encoder on clips shorter than 30 s: ``window: clip`` against ``window: full``.

The encoder stays frozen; its outputs for N training utterances of a ``convai asr synth`` folder
(DATA), its test split and the pocketsphinx-testdata recordings are computed once per mode, and
a small convolutional CTC head (384 -> 256 -> 29, kernel 5) is trained MIN minutes on each.
Prints encode times and greedy WER/CER; writes benchmarks/results/whisper_window.json.

    python benchmarks/whisper_window.py DATA [N=600] [MIN=3]
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import soundfile as sf
import torch
from torch import nn

from convai_asr.data.pocketsphinx import write_pocketsphinx_manifest
from convai_asr.metrics.wer import char_error_rate, word_error_rate
from convai_asr.modules.whisper import WhisperEncoder, WhisperMelPreprocessor
from convai_asr.text.normalize import TextNormalizer

ALPHABET = " abcdefghijklmnopqrstuvwxyz'"
BLANK = len(ALPHABET)


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def load(row: dict[str, Any], data: Path) -> torch.Tensor:
    path = Path(row["audio_filepath"])
    audio, rate = sf.read(path if path.is_absolute() else data / path, dtype="float32")
    assert rate == 16000, rate
    return torch.from_numpy(audio)[: 16000 * 30]


def encode(encoder: WhisperEncoder, items: list[dict[str, Any]], data: Path, norm: Any) -> list:
    pre = WhisperMelPreprocessor().eval()
    out = []
    with torch.inference_mode():
        for row in items:
            audio = load(row, data)
            feats, frames = pre(audio[None], torch.tensor([audio.numel()]))
            encoded, length = encoder(feats, frames)
            out.append((encoded[0, :, : int(length)].half(), norm(row["text"])))
    return out


def greedy(head: nn.Module, items: list) -> tuple[float, float]:
    hyps, refs = [], []
    with torch.no_grad():
        for encoded, text in items:
            ids = head(encoded.float()[None]).argmax(1)[0].tolist()
            chars, prev = [], None
            for i in ids:
                if i != prev and i != BLANK:
                    chars.append(ALPHABET[i])
                prev = i
            hyps.append(" ".join("".join(chars).split()))
            refs.append(text)
    return word_error_rate(refs, hyps), char_error_rate(refs, hyps)


def train_head(train: list, minutes: float) -> tuple[nn.Module, int]:
    head = nn.Sequential(nn.Conv1d(384, 256, 5, padding=2), nn.GELU(), nn.Conv1d(256, BLANK + 1, 1))
    optimizer = torch.optim.AdamW(head.parameters(), 1e-3)
    start, step = time.time(), 0
    while time.time() - start < minutes * 60:
        batch = random.sample(train, 16)
        frames = max(e.shape[1] for e, _ in batch)
        x = torch.zeros(16, 384, frames)
        for i, (encoded, _) in enumerate(batch):
            x[i, :, : encoded.shape[1]] = encoded.float()
        log_probs = head(x).transpose(1, 2).log_softmax(-1)
        targets = [torch.tensor([ALPHABET.index(c) for c in t]) for _, t in batch]
        loss = nn.functional.ctc_loss(
            log_probs.transpose(0, 1),
            torch.cat(targets),
            torch.tensor([e.shape[1] for e, _ in batch]),
            torch.tensor([len(t) for t in targets]),
            blank=BLANK,
            zero_infinity=True,
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
    return head, step


def main() -> int:
    data = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    minutes = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    torch.set_num_threads(2)
    torch.manual_seed(0)
    random.seed(0)
    norm = TextNormalizer(ALPHABET)
    train = rows(data / "train_manifest.jsonl")
    random.shuffle(train)
    sets = {
        "train": train[:n],
        "test": rows(data / "test_manifest.jsonl"),
        "pocketsphinx": rows(write_pocketsphinx_manifest(data / "pocketsphinx_manifest.jsonl")),
    }
    results = {}
    for mode in ("clip", "full"):
        encoder = WhisperEncoder(80, pretrained="whisper-tiny.en", window=mode).eval()
        start = time.time()
        encoded = {name: encode(encoder, items, data, norm) for name, items in sets.items()}
        seconds = time.time() - start
        head, steps = train_head(encoded["train"], minutes)
        results[mode] = {
            "encode_seconds": round(seconds, 1),
            "steps": steps,
            "test": greedy(head, encoded["test"]),
            "pocketsphinx": greedy(head, encoded["pocketsphinx"]),
        }
        print(mode, results[mode], flush=True)
    Path("benchmarks/results/whisper_window.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
