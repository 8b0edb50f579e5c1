"""AudioSegmentDataset: hop-aligned random crops, padding, whole clips, batches and bad lines."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from convai_core.errors import ConfigError, ConvaiError
from convai_tts.audio import LOG_FLOOR, MelConfig, MelSpectrogram
from convai_tts.data.segments import AudioSegmentDataset, collate_segments

RATE = 22050
HOP = 256


def _clip(samples: int, seed: int = 0) -> np.ndarray:
    """Two tones and some noise: every frame's spectrum differs from its neighbours'."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    tones = 0.3 * np.sin(2 * np.pi * (220 + 300 * t) * t) + 0.1 * np.sin(2 * np.pi * 1700 * t)
    return (tones + 0.05 * rng.standard_normal(samples)).astype(np.float32)


def _wav(path: Path, samples: int, rate: int = RATE, seed: int = 0) -> Path:
    sf.write(str(path), _clip(samples, seed), rate, subtype="FLOAT")
    return path


def _manifest(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _line(audio: str, **extra: object) -> str:
    return json.dumps({"audio_filepath": audio, **extra})


def test_random_crops_start_on_a_hop_and_have_the_clips_mel(tmp_path: Path) -> None:
    """Each crop is the clip's samples from a multiple of the hop; its mel frames are the whole
    clip's frames at the same times (except the edge frames, whose windows reach past the crop),
    and successive calls draw different crops."""
    audio = _clip(RATE)  # 1 s: 86 hops
    _wav(tmp_path / "a.wav", RATE)
    manifest = _manifest(tmp_path / "m.jsonl", [_line("a.wav", text="ignored", duration=1.0)])
    dataset = AudioSegmentDataset(manifest, MelConfig(), segment_samples=16 * HOP)
    full = MelSpectrogram()(torch.from_numpy(audio)[None])[0]  # (80, 86)
    torch.manual_seed(0)
    starts = set()
    for _ in range(12):
        item = dataset[0]
        assert item["audio"].shape == (16 * HOP,) and item["audio"].dtype == torch.float32
        assert item["mel"].shape == (80, 16)
        crop = item["audio"].numpy()
        candidates = np.flatnonzero(audio[: RATE - len(crop) + 1] == crop[0])
        matches = [s for s in candidates if np.array_equal(audio[s : s + len(crop)], crop)]
        assert len(matches) == 1 and matches[0] % HOP == 0, matches
        frame = matches[0] // HOP
        starts.add(frame)
        # frames 2..12 have their whole 1024-sample window inside the crop
        inner = item["mel"][:, 2:13] - full[:, frame + 2 : frame + 13]
        assert inner.abs().max() < 1e-4, inner.abs().max()
        edge = (item["mel"][:, 0] - full[:, frame]).abs().max()
        assert frame == 0 or edge > 1e-3  # the crop's edges really are re-analysed
    assert len(starts) >= 8, starts


def test_short_clips_are_zero_padded_and_whole_clips_cut_to_hops(tmp_path: Path) -> None:
    _wav(tmp_path / "short.wav", 1000)
    _wav(tmp_path / "long.wav", 5000, seed=1)
    _wav(tmp_path / "tiny.wav", 100, seed=2)
    manifest = _manifest(
        tmp_path / "m.jsonl",
        [_line("short.wav"), _line(str(tmp_path / "long.wav")), _line("tiny.wav")],
    )
    crops = AudioSegmentDataset(manifest, segment_samples=8 * HOP)
    item = crops[0]
    assert torch.equal(item["audio"][:1000], torch.from_numpy(_clip(1000)))
    assert not item["audio"][1000:].any() and item["mel"].shape == (80, 8)
    # past the clip, the mel is silence
    assert torch.allclose(item["mel"][:, -2:], torch.tensor(math.log(LOG_FLOOR)))
    padded = collate_segments([item, crops[1]])
    assert padded["audio_lengths"].tolist() == [1000, 8 * HOP]  # the padding is not audio
    assert padded["mel_lengths"].tolist() == [4, 8]

    whole = AudioSegmentDataset(manifest, segment_samples=None)
    lengths = [whole.samples(i) for i in range(3)]
    assert lengths == [3 * HOP, 19 * HOP, HOP]  # 1000 -> 768, 5000 -> 4864, 100 -> padded to 256
    items = [whole[i] for i in range(3)]
    assert torch.equal(items[1]["audio"], torch.from_numpy(_clip(5000, seed=1)[: 19 * HOP]))
    batch = collate_segments(items)
    assert batch["audio"].shape == (3, 19 * HOP) and batch["mel"].shape == (3, 80, 19)
    # lengths count the clip's own samples, not the padding (a 100-sample clip is padded to a hop)
    assert batch["audio_lengths"].tolist() == [3 * HOP, 19 * HOP, 100]
    assert batch["mel_lengths"].tolist() == [3, 19, 1]
    assert not batch["audio"][0, 3 * HOP :].any()
    assert torch.equal(batch["mel"][0, :, :3], items[0]["mel"])
    assert (batch["mel"][0, :, 3:] == math.log(LOG_FLOOR)).all()


def test_segment_length_must_be_a_positive_multiple_of_the_hop(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "m.jsonl", [_line(str(_wav(tmp_path / "a.wav", 4000)))])
    for bad in (1000, 0, -256):
        with pytest.raises(ConfigError, match=r"multiple of the hop length \(256\)"):
            AudioSegmentDataset(manifest, segment_samples=bad)
    small = MelConfig(n_fft=256, hop_length=64, win_length=256, n_mels=16)
    assert len(AudioSegmentDataset(manifest, small, segment_samples=1024)) == 1


def test_audio_at_another_rate_is_refused_with_the_fix(tmp_path: Path) -> None:
    _wav(tmp_path / "16k.wav", 16000, rate=16000)
    manifest = _manifest(tmp_path / "rate.jsonl", [_line("16k.wav")])
    with pytest.raises(
        ConvaiError,
        match=r"rate\.jsonl, line 1: .*16k\.wav is at 16000 Hz, the model reads 22050 Hz; "
        r"resample the data with `convai tts data prepare`",
    ):
        AudioSegmentDataset(manifest)


def test_bad_lines_are_named_with_their_line_or_skipped_and_counted(tmp_path: Path) -> None:
    good = _line(str(_wav(tmp_path / "good.wav", 3000)))
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF not really a wave file")
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0, dtype=np.float32), RATE)
    _wav(tmp_path / "16k.wav", 3000, rate=16000)
    cases = {
        "json": ("{oops", r"line 2: not valid JSON"),
        "key": (json.dumps({"text": "no audio"}), r"line 2: missing 'audio_filepath'"),
        "missing": (_line("nowhere.wav"), r"line 2: audio file .*nowhere\.wav' does not exist"),
        "corrupt": (_line("corrupt.wav"), r"line 2: cannot read audio file .*corrupt\.wav"),
        "empty": (_line("empty.wav"), r"line 2: audio file .*empty\.wav' holds no samples"),
    }
    for name, (line, message) in cases.items():
        manifest = _manifest(tmp_path / f"{name}.jsonl", [good, line])
        with pytest.raises(ConvaiError, match=rf"{name}\.jsonl, {message}"):
            AudioSegmentDataset(manifest)
    lines = [good, "", *(line for line, _ in cases.values()), _line("16k.wav"), good]
    mixed = _manifest(tmp_path / "mixed.jsonl", lines)
    dataset = AudioSegmentDataset(mixed, segment_samples=1024, skip_bad=True)
    assert len(dataset) == 2 and [c.line for c in dataset.clips] == [1, 9]
    assert dataset.skipped == Counter(
        bad_json=1, missing_keys=1, missing_file=1, unreadable_file=1, empty_file=1, wrong_rate=1
    )
    only_bad = _manifest(tmp_path / "only_bad.jsonl", [_line("16k.wav")])
    with pytest.raises(ConvaiError, match=r"no usable line .*wrong_rate.*data prepare"):
        AudioSegmentDataset(only_bad, skip_bad=True)


def test_max_duration_leaves_long_clips_out(tmp_path: Path) -> None:
    lines = [_line(str(_wav(tmp_path / f"{n}.wav", n))) for n in (11025, 44100)]
    dataset = AudioSegmentDataset(_manifest(tmp_path / "m.jsonl", lines), max_duration=1.0)
    assert len(dataset) == 1 and dataset.clips[0].samples == 11025
    assert dataset.skipped == {"too_long": 1}
