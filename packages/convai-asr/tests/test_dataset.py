"""Tests of convai_asr.data.dataset: items, padding collate, bad-file skipping, bucketing sampler."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from convai_asr.data.dataset import AudioTextDataset, DurationBucketSampler, collate_audio_text
from convai_asr.data.manifest import ManifestEntry
from convai_asr.errors import AudioError
from convai_asr.text.normalize import TextNormalizer
from convai_asr.text.tokenizers import CharTokenizer
from convai_core.errors import ConfigError, ConvaiError

RATE = 16000
TOKENIZER = CharTokenizer.english()


def _entry(tmp_path: Path, name: str, seconds: float, text: str, line: int = 0) -> ManifestEntry:
    rng = np.random.default_rng(len(name))
    samples = (0.1 * rng.standard_normal(round(seconds * RATE))).astype(np.float32)
    path = tmp_path / name
    sf.write(path, samples, RATE)
    return ManifestEntry(str(path), seconds, text, line=line)


def test_items_and_collate(tmp_path: Path) -> None:
    entries = [
        _entry(tmp_path, "a.wav", 0.5, "Hello, World!"),
        _entry(tmp_path, "b.wav", 0.25, "it's 3"),
    ]
    dataset = AudioTextDataset(
        entries, TOKENIZER, sample_rate=RATE, normalizer=TextNormalizer(TOKENIZER.tokens)
    )
    first = dataset[0]
    assert first is not None and first["index"] == 0
    assert first["audio"].shape == (8000,) and first["tokens"].dtype == torch.long
    assert TOKENIZER.decode(first["tokens"].tolist()) == "hello world"
    batch = collate_audio_text([dataset[0], dataset[1]])
    assert batch["audio"].shape == (2, 8000) and batch["audio"].dtype == torch.float32
    assert batch["audio_len"].tolist() == [8000, 4000]
    assert batch["audio"][1, 4000:].abs().sum() == 0  # zero padding
    assert batch["tokens_len"].tolist() == [11, 10]  # "it's three"
    assert batch["tokens"].shape == (2, 11) and batch["tokens"][1, 10] == 0
    assert batch["index"].tolist() == [0, 1]
    assert dataset.durations == [0.5, 0.25]


def test_untokenizable_text_names_the_entry(tmp_path: Path) -> None:
    entry = _entry(tmp_path, "a.wav", 0.1, "Hi!", line=7)
    with pytest.raises(ConvaiError, match=r"a\.wav.*line 7.*\['!', 'H'\]"):
        AudioTextDataset([entry], TOKENIZER, sample_rate=RATE)[0]


def test_bad_audio_raises_or_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = _entry(tmp_path, "good.wav", 0.2, "ok")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"garbage" * 20)
    bad = ManifestEntry(str(broken), 0.2, "bad", line=2)
    missing = ManifestEntry(str(tmp_path / "missing.wav"), 0.2, "gone", line=3)
    with pytest.raises(AudioError, match=r"broken\.wav"):
        AudioTextDataset([good, bad], TOKENIZER, sample_rate=RATE)[1]

    dataset = AudioTextDataset(
        [good, bad, missing], TOKENIZER, sample_rate=RATE, skip_bad_audio=True
    )
    with caplog.at_level(logging.WARNING, logger="convai_asr.data.dataset"):
        for _ in range(3):
            batch = collate_audio_text([dataset[i] for i in range(3)])
            assert batch["index"].tolist() == [0]  # only the good file is left
    assert dataset.bad_files == {str(broken): 3, str(tmp_path / "missing.wav"): 3}
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2  # once per file
    assert any("broken.wav" in m for m in logged) and any("missing.wav" in m for m in logged)

    empty = collate_audio_text([dataset[1], dataset[2]])
    assert empty["audio"].shape == (0, 0) and empty["tokens"].shape == (0, 0)
    assert empty["audio_len"].shape == (0,) and empty["index"].shape == (0,)


def test_dataloader_with_bucket_sampler(tmp_path: Path) -> None:
    seconds = [0.1, 0.3, 0.15, 0.35, 0.2, 0.05]
    entries = [_entry(tmp_path, f"{i}.wav", s, "a b") for i, s in enumerate(seconds)]
    dataset = AudioTextDataset(entries, TOKENIZER, sample_rate=RATE)
    sampler = DurationBucketSampler(dataset.durations, batch_size=2, seed=1)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_audio_text)
    seen = sorted(i for batch in loader for i in batch["index"].tolist())
    assert seen == list(range(6)) and len(loader) == 3


# ---- DurationBucketSampler -----------------------------------------------------------------------


def _durations(count: int = 501, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.uniform(0.5, 20.0), 2) for _ in range(count)]


def _padding(batches: list[list[int]], durations: list[float]) -> float:
    real = sum(durations[i] for batch in batches for i in batch)
    padded = sum(max(durations[i] for i in batch) * len(batch) for batch in batches)
    return 1 - real / padded


@pytest.mark.parametrize(
    "bounds", [{"batch_seconds": 120.0}, {"batch_size": 8}, {"batch_size": 7, "batch_seconds": 90}]
)
def test_every_index_once_per_epoch_across_two_replicas(bounds: dict[str, float]) -> None:
    durations = _durations()
    for epoch in range(3):
        per_rank = []
        for rank in range(2):
            sampler = DurationBucketSampler(
                durations, num_replicas=2, rank=rank, seed=3, pool_size=100, **bounds
            )
            sampler.set_epoch(epoch)
            per_rank.append(list(sampler))
            assert len(sampler) == len(per_rank[-1])
        assert len(per_rank[0]) == len(per_rank[1])  # same number of steps on every rank
        seen = sorted(i for batches in per_rank for batch in batches for i in batch)
        assert seen == list(range(len(durations)))
        for batch in per_rank[0] + per_rank[1]:
            longest = max(durations[i] for i in batch)
            if "batch_seconds" in bounds and len(batch) > 1:
                assert longest * len(batch) <= bounds["batch_seconds"]
            if "batch_size" in bounds:
                assert len(batch) <= bounds["batch_size"]


def test_bucketing_reduces_padding() -> None:
    durations = _durations(2000)
    sampler = DurationBucketSampler(durations, batch_size=16, seed=0, pool_size=800)
    bucketed = _padding(list(sampler), durations)
    assert bucketed == pytest.approx(sampler.padding_ratio())
    order = list(range(len(durations)))
    random.Random(0).shuffle(order)
    random_batches = [order[i : i + 16] for i in range(0, len(order), 16)]
    unbucketed = _padding(random_batches, durations)
    print(f"padding ratio: random batches {unbucketed:.1%}, bucketed {bucketed:.1%}")
    assert bucketed < 0.1 < 0.3 < unbucketed  # about 2% vs 40% here


def test_epochs_differ_and_are_reproducible() -> None:
    durations = _durations(200)
    sampler = DurationBucketSampler(durations, batch_size=8, seed=5, pool_size=64)
    epoch0 = list(sampler)
    assert list(sampler) == epoch0  # same epoch, same plan
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    unshuffled = list(DurationBucketSampler(durations, batch_size=8, shuffle=False))
    flat = [durations[i] for batch in unshuffled for i in batch]
    assert flat == sorted(flat)


def test_state_dict_resume_yields_the_remaining_batches() -> None:
    durations = _durations(300)
    sampler = DurationBucketSampler(durations, batch_seconds=60.0, seed=2, num_replicas=2, rank=1)
    sampler.set_epoch(4)
    full = list(sampler)
    iterator = iter(sampler)
    consumed = [next(iterator) for _ in range(5)]
    state = sampler.state_dict()
    assert state["epoch"] == 4 and state["position"] == 5 and consumed == full[:5]

    fresh = DurationBucketSampler(durations, batch_seconds=60.0, seed=2, num_replicas=2, rank=1)
    fresh.load_state_dict(state)
    assert list(fresh) == full[5:]
    assert list(fresh) == full  # the next pass starts the epoch from the beginning
    fresh.set_epoch(5)
    assert fresh.state_dict()["position"] == 0

    other = DurationBucketSampler(durations[:-1], batch_seconds=60.0, seed=2)
    with pytest.raises(ConvaiError, match="num_items=300"):
        other.load_state_dict(state)


def test_drop_last_and_small_data() -> None:
    durations = [1.0] * 10  # 5 batches of 2 across 2 ranks
    kept = DurationBucketSampler(durations, batch_size=2, num_replicas=2, rank=0, drop_last=True)
    assert len(kept) == 2
    split = DurationBucketSampler(durations, batch_size=2, num_replicas=2, rank=0)
    assert len(split) == 3  # one batch split in two instead
    tiny = [DurationBucketSampler([1.0], batch_size=4, num_replicas=2, rank=r) for r in (0, 1)]
    assert [list(s) for s in tiny] == [[[0]], [[0]]]  # fewer items than ranks: repeated


def test_sampler_config_errors() -> None:
    with pytest.raises(ConfigError, match="batch_seconds or batch_size"):
        DurationBucketSampler([1.0])
    with pytest.raises(ConfigError, match="rank"):
        DurationBucketSampler([1.0], batch_size=1, num_replicas=2, rank=2)
    with pytest.raises(ConfigError, match="batch_seconds"):
        DurationBucketSampler([1.0], batch_seconds=0)
