"""Kaldi features: arks written by kaldiio load exactly, CMVN as Kaldi applies it,
compute-feats, and CTC models that learn from feats.scp and from a data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kaldiio
import numpy as np
import pytest
import torch

from convai_kaldi.datadir import read_data_dir
from convai_kaldi.features import apply_cmvn, cmvn_stats, compute_feats, load_matrices


class _Chars:
    """A minimal tokenizer for the dataset tests (the model's comes from the registry)."""

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]


def _feature_dir(
    tmp_path: Path, *, compress: bool, cmvn_by: str | None = None
) -> tuple[Path, dict]:
    """A data dir whose feats.scp points into an ark written by kaldiio (float32 matrices,
    or Kaldi's compressed format)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "feats_dir"
    folder.mkdir()
    utts = {f"spk{s}-u{i}": f"spk{s}" for s in (1, 2) for i in range(3)}
    mats = {
        u: (rng.normal(size=(20 + 7 * i, 13)) * (i + 1) + i).astype(np.float32)
        for i, u in enumerate(utts)
    }
    with kaldiio.WriteHelper(
        f"ark,scp:{folder / 'raw.ark'},{folder / 'feats.scp'}",
        compression_method=2 if compress else None,
    ) as writer:
        for utt in sorted(mats):
            writer(utt, mats[utt])
    (folder / "text").write_text("".join(f"{u} hello {u[-1]}\n" for u in sorted(utts)))
    (folder / "utt2spk").write_text("".join(f"{u} {utts[u]}\n" for u in sorted(utts)))
    if cmvn_by == "speaker":
        stats = {s: cmvn_stats([mats[u] for u in utts if utts[u] == s]) for s in ("spk1", "spk2")}
        kaldiio.save_ark(str(folder / "cmvn.ark"), stats, scp=str(folder / "cmvn.scp"))
    return folder, mats


@pytest.mark.parametrize("compress", [False, True])
def test_arks_written_by_kaldiio_load_with_identical_values(tmp_path: Path, compress: bool) -> None:
    from convai_kaldi.datasets import kaldi_feature_dataset

    folder, mats = _feature_dir(tmp_path, compress=compress)
    dataset = kaldi_feature_dataset(str(folder), tokenizer=_Chars(), apply_cmvn=False)
    assert len(dataset) == 6
    reference = dict(kaldiio.load_ark(str(folder / "raw.ark")))
    for index, utt in enumerate(dataset.utterances):
        item = dataset[index]
        assert item["audio"].dtype == torch.float32
        assert np.array_equal(item["audio"].numpy(), reference[utt])
        if compress:  # Kaldi's compression is lossy; what loads is what Kaldi would decompress
            assert np.abs(reference[utt] - mats[utt]).max() < 0.05 * np.abs(mats[utt]).max()
        else:
            assert np.array_equal(reference[utt], mats[utt])
        assert dataset.durations[index] == pytest.approx(mats[utt].shape[0] * 0.01)


@pytest.mark.parametrize("norm_vars", [False, True])
def test_cmvn_matches_a_computation_by_hand(tmp_path: Path, norm_vars: bool) -> None:
    from convai_kaldi.datasets import kaldi_feature_dataset

    folder, mats = _feature_dir(tmp_path, compress=False, cmvn_by="speaker")
    dataset = kaldi_feature_dataset(str(folder), tokenizer=_Chars(), norm_vars=norm_vars)
    for index, utt in enumerate(dataset.utterances):
        speaker = utt.split("-")[0]
        frames = np.concatenate([m for u, m in mats.items() if u.startswith(speaker)]).astype(
            np.float64
        )
        expected = mats[utt] - frames.mean(axis=0)
        if norm_vars:
            expected = expected / frames.std(axis=0)
        assert np.allclose(dataset[index]["audio"].numpy(), expected, atol=1e-4)
    # Kaldi's statistics layout: sums and the count in row 0, sums of squares in row 1
    stats = load_matrices(folder / "cmvn.scp")["spk1"]
    assert stats.shape == (2, 14) and stats[0, 13] == sum(
        m.shape[0] for u, m in mats.items() if u.startswith("spk1")
    )
    with pytest.raises(Exception, match=r"do not fit 12-dimensional"):
        apply_cmvn(mats["spk1-u0"][:, :12], stats)


def test_compute_feats_writes_what_the_preprocessor_computes(
    segmented_dir: Path, tmp_path: Path
) -> None:
    from convai_core.components import build
    from convai_kaldi.manifest import data_dir_to_rows

    node = {"name": "asr/mel_spectrogram", "n_mels": 40, "dither": 0.0}
    result = compute_feats(segmented_dir, preprocessor=node, cmvn=True)
    assert result["utterances"] == 20 and result["dim"] == 40
    feats = load_matrices(segmented_dir / "feats.scp")
    pre = build("modules", node, path="p", context={"sample_rate": 16000}).eval()
    rows = {r["utt_id"]: r for r in data_dir_to_rows(read_data_dir(segmented_dir))}
    import soundfile as sf

    for utt in list(rows)[:3]:
        row = rows[utt]
        audio, _ = sf.read(
            row["audio_filepath"],
            start=round(row["offset"] * 16000),
            frames=round(row["duration"] * 16000),
            dtype="float32",
        )
        spec, length = pre(torch.from_numpy(audio)[None], torch.tensor([len(audio)]))
        expected = spec[0, :, : int(length[0])].T.numpy()
        assert np.allclose(feats[utt], expected, atol=1e-5)
    frames = dict(
        line.split() for line in (segmented_dir / "utt2num_frames").read_text().splitlines()
    )
    assert {u: int(n) for u, n in frames.items()} == {u: feats[u].shape[0] for u in rows}
    stats = load_matrices(segmented_dir / "cmvn.scp")
    spk_a = [feats[u] for u in rows if u.startswith("spk_a")]
    assert np.allclose(stats["spk_a"], cmvn_stats(spk_a))
    # compressed: same matrices within Kaldi's compression error
    other = tmp_path / "compressed"
    import shutil

    shutil.copytree(segmented_dir, other)
    compute_feats(other, preprocessor=node, compress=True)
    packed = load_matrices(other / "feats.scp")
    first = next(iter(rows))
    assert packed[first].shape == feats[first].shape
    assert (other / "data" / "raw_feats.ark").stat().st_size < (
        segmented_dir / "data" / "raw_feats.ark"
    ).stat().st_size / 2
    assert np.abs(packed[first] - feats[first]).max() < 0.02 * np.abs(feats[first]).max() + 0.05


def _train(cfg_overrides: list[str], model_cfg: dict[str, Any], exp_dir: Path) -> Any:
    from omegaconf import OmegaConf

    from convai_asr.testing import TINY_ENCODERS
    from convai_core.train import compose_config, train

    cfg = compose_config(
        [
            *cfg_overrides,
            "trainer.max_steps=150",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "trainer.accelerator=cpu",
            "trainer.log_every_n_steps=10",
            "trainer.check_val_every_n_epoch=25",  # 2 batches an epoch, 75 epochs
            "model.optim.lr=5e-3",
            "model.optim.sched.warmup_steps=30",
            f"exp_manager.exp_dir={exp_dir}",
        ]
    )
    OmegaConf.set_struct(cfg, False)
    cfg.model.encoder = OmegaConf.create(TINY_ENCODERS["quartznet"])
    for key, value in model_cfg.items():
        cfg.model[key] = OmegaConf.create(value)
    return train(cfg)


def test_ctc_model_learns_from_feats_scp_through_the_registry(
    plain_dir: Path, tmp_path: Path
) -> None:
    """`convai train model=kaldi/ctc_feats` on feats.scp + text + cmvn.scp."""
    compute_feats(plain_dir, preprocessor={"name": "asr/mel_spectrogram", "n_mels": 64}, cmvn=True)
    result = _train(
        [
            "model=kaldi/ctc_feats",
            f"model.train_ds.data_dir={plain_dir}",
            f"model.validation_ds.data_dir={plain_dir}",
            "model.preprocessor.feat_dim=64",
            "model.train_ds.batch_seconds=null",
            "+model.train_ds.batch_size=10",
            "model.train_ds.num_workers=0",  # 2 batches an epoch: a worker per epoch costs more
        ],
        {},
        tmp_path,
    )
    assert type(result.model.preprocessor).__name__ == "FeatureInput"
    # the 20 commands are learned: an untrained model's CER is about 1
    assert result.global_step == 150
    assert result.metrics["val_cer"] < 0.25, result.metrics


def test_ctc_model_learns_from_a_data_dir_with_segments(
    segmented_dir: Path, tmp_path: Path
) -> None:
    """`kaldi/audio`: wav.scp + segments + text feed asr/manifest by registry key."""
    result = _train(
        ["model=asr/demo_ctc", "model.train_ds.manifest=unused"],
        {
            "train_ds": {
                "dataset": "kaldi/audio",
                "data_dir": str(segmented_dir),
                "batch_size": 10,
                "shuffle": True,
                "max_duration": 10.0,
            },
            "validation_ds": {
                "dataset": "kaldi/audio",
                "data_dir": str(segmented_dir),
                "batch_size": 10,
            },
        },
        tmp_path,
    )
    assert result.global_step == 150
    assert result.metrics["val_cer"] < 0.25, result.metrics


def test_durations_come_from_utt2num_frames_and_the_matrices(tmp_path: Path) -> None:
    from convai_kaldi.datasets import kaldi_feature_dataset
    from convai_kaldi.errors import KaldiDataError

    folder, mats = _feature_dir(tmp_path, compress=False)
    first = sorted(mats)[0]
    (folder / "utt2num_frames").write_text(f"{first} 500\n")  # lists one utterance only
    dataset = kaldi_feature_dataset(str(folder), tokenizer=_Chars(), apply_cmvn=False)
    expected = [500 * 0.01 if u == first else mats[u].shape[0] * 0.01 for u in dataset.utterances]
    assert dataset.durations == pytest.approx(expected)
    (folder / "utt2num_frames").write_text(f"{first} many\n")
    with pytest.raises(KaldiDataError, match=r"utt2num_frames line 1: 'many' is not a count"):
        kaldi_feature_dataset(str(folder), tokenizer=_Chars(), apply_cmvn=False)
