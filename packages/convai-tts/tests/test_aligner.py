"""tts/aligner: the beta-binomial prior, monotonic alignment search, the forward-sum loss,
and duration manifests for recordings that came without durations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from convai_core.errors import ConfigError
from convai_tts.data.dataset import DurationDataset
from convai_tts.models.aligner import AlignerModel
from convai_tts.modules.aligner import (
    beta_binomial_prior,
    durations_from_path,
    forward_sum_loss,
    hard_alignment,
)

TINY = {"name": "tts/aligner", "d_model": 48, "d_attention": 48, "temperature": 0.2}


def test_the_prior_is_a_distribution_that_follows_the_diagonal() -> None:
    prior = beta_binomial_prior(10, 50).exp()
    assert torch.allclose(prior.sum(dim=1), torch.ones(50), atol=1e-4)
    modes = prior.argmax(dim=1)
    assert modes[0] == 0 and modes[-1] == 9
    assert (modes[1:] >= modes[:-1]).all()  # frames later in time expect later symbols


def _soft_from(durations: list[list[int]], noise: float = 0.3) -> tuple[torch.Tensor, ...]:
    """A noisy soft alignment whose best monotonic path is the given durations."""
    generator = torch.Generator().manual_seed(0)
    frames = max(sum(d) for d in durations)
    symbols = max(len(d) for d in durations)
    soft = torch.rand(len(durations), frames, symbols, generator=generator) * noise
    for row, counts in enumerate(durations):
        owner = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
        soft[row, torch.arange(owner.numel()), owner] += 1.0
    soft = soft / soft.sum(dim=2, keepdim=True)
    symbol_lengths = torch.tensor([len(d) for d in durations])
    frame_lengths = torch.tensor([sum(d) for d in durations])
    return soft, symbol_lengths, frame_lengths


def test_monotonic_search_recovers_the_durations_behind_a_noisy_alignment() -> None:
    truth = [[3, 1, 5, 2, 4], [2, 2, 2]]
    soft, symbol_lengths, frame_lengths = _soft_from(truth)
    path = hard_alignment(soft, symbol_lengths, frame_lengths)
    durations = durations_from_path(path)
    assert durations[0].tolist() == truth[0]
    assert durations[1, :3].tolist() == truth[1] and durations[1, 3:].sum() == 0
    assert (path.sum(dim=2)[1, 6:] == 0).all()  # no frame past an item's end is assigned


def test_the_forward_sum_loss_prefers_the_true_alignment() -> None:
    truth = [[3, 1, 5, 2, 4]]
    soft, symbol_lengths, frame_lengths = _soft_from(truth, noise=0.1)
    good = forward_sum_loss(torch.log(soft), symbol_lengths, frame_lengths)
    shuffled = torch.log(
        soft[:, torch.randperm(soft.shape[1], generator=torch.Generator().manual_seed(1))]
    )
    bad = forward_sum_loss(shuffled, symbol_lengths, frame_lengths)
    assert good < 0.5 * bad


def test_config_typos_are_named() -> None:
    with pytest.raises(ConfigError, match="temprature"):
        AlignerModel({**TINY, "temprature": 1.0})


@pytest.fixture(scope="module")
def trained(teacher_corpus: Path) -> tuple[AlignerModel, dict[str, float], dict[str, float]]:
    """The tiny aligner fitted to the eight teacher clips: 100 steps of the forward-sum loss at
    the shipped config's learning rate, gradients clipped to norm 1 (the binarization loss
    joins only after 1,000 steps in the recipe). Losses before and after, both terms."""
    from convai_tts.data.text_mel import TextMelDataset, collate_text_mel

    torch.manual_seed(0)
    model = AlignerModel(TINY)
    dataset = TextMelDataset(teacher_corpus, model.frontend, model.mel_config)
    batch = collate_text_mel([dataset[i] for i in range(len(dataset))])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)  # the shipped config's

    def measure() -> dict[str, float]:
        with torch.no_grad():
            losses = model.losses(batch, with_binarization=True)
        return {key: float(value) for key, value in losses.items()}

    start = measure()
    for _ in range(100):
        model.train()
        loss = model.losses(batch, with_binarization=False)["loss"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return model.eval(), start, measure()


def test_the_aligner_learns(trained) -> None:
    """The forward-sum loss falls (2.44 -> 0.88 here) and the soft alignment sharpens toward its
    best monotonic path (the binarization loss, not trained on, falls too: 1.82 -> 1.34)."""
    _, start, end = trained
    assert end["forward_sum_loss"] < 0.6 * start["forward_sum_loss"], (start, end)
    assert end["bin_loss"] < 0.9 * start["bin_loss"], (start, end)
    assert end["loss"] == pytest.approx(end["forward_sum_loss"] + end["bin_loss"], rel=1e-5)


def test_align_writes_a_duration_manifest_fastpitch_reads(
    trained, teacher_corpus: Path, tmp_path: Path, capsys
) -> None:
    """`convai tts data align` keeps each line's fields, adds symbols and durations whose
    frames add up to the clip's, and the result loads as FastPitch training data."""
    from convai_tts.cli import tts_main

    model, _, _ = trained
    archive = model.save_to(tmp_path / "aligner.convai")
    clips = tmp_path / "clips.jsonl"
    lines = [json.loads(line) for line in teacher_corpus.read_text().splitlines()]
    with open(clips, "w", encoding="utf-8") as handle:
        for line in lines:  # recordings with text only: no symbols, no durations
            audio = str(teacher_corpus.parent / line["audio_filepath"])
            handle.write(json.dumps({"audio_filepath": audio, "text": line["text"]}) + "\n")
    output = tmp_path / "aligned.jsonl"
    code = tts_main(
        [
            "data",
            "align",
            "--model",
            str(archive),
            "--manifest",
            str(clips),
            "--output",
            str(output),
        ]
    )
    assert code == 0 and str(output) in capsys.readouterr().out
    aligned = [json.loads(line) for line in output.read_text().splitlines()]
    assert [a["text"] for a in aligned] == [line["text"] for line in lines]
    dataset = DurationDataset(output)
    for index, item in enumerate(aligned):
        assert len(item["durations"]) == len(item["symbols"].split())
        assert min(item["durations"]) >= 1  # monotonic search gives every symbol a frame
        assert sum(item["durations"]) == dataset.mel(index).shape[1]
    assert not list(tmp_path.glob(".align-*"))  # no temporary file left behind


def test_align_refuses_another_model(tmp_path: Path, capsys) -> None:
    from convai_tts.cli import tts_main
    from convai_tts.models.hifigan import HifiGanModel

    small = {
        "name": "tts/hifigan",
        "generator": {
            "upsample_rates": [8, 8, 4],
            "upsample_kernel_sizes": [16, 16, 8],
            "upsample_initial_channel": 16,
            "resblock_kernel_sizes": [3],
            "resblock_dilation_sizes": [[1]],
        },
        "discriminator": {"periods": [2], "scales": 1, "width": 0.0625},
    }
    archive = HifiGanModel(small).save_to(tmp_path / "vocoder.convai")
    code = tts_main(["data", "align", "--model", str(archive), "--manifest", "x", "--output", "y"])
    assert code == 1 and "not tts/aligner" in capsys.readouterr().err
