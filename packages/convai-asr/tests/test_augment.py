"""SpecAugment and SpecCutout: eval identity, valid-length masks, widths, reproducibility."""

from __future__ import annotations

import pytest
import torch

from convai_asr import functional as AF
from convai_asr.augment.spec import SpecAugment, SpecCutout
from convai_core.types import typecheck

LENGTHS = torch.tensor([50, 30, 7])


def _spec() -> torch.Tensor:
    return torch.rand(3, 20, 50) + 1.0  # strictly positive: masked cells are the zeros


def _padded(spec: torch.Tensor) -> torch.Tensor:
    valid = AF.lengths_to_mask(LENGTHS, spec.shape[-1]).unsqueeze(1)  # (B, T) -> (B, 1, T)
    return spec * valid


def test_identity_in_eval_mode() -> None:
    spec = _padded(_spec())
    for module in (SpecAugment(), SpecCutout()):
        module.eval()
        assert module(spec, LENGTHS) is spec


def test_spec_augment_masks_only_valid_frames_and_is_reproducible() -> None:
    spec = _padded(_spec())
    augment = SpecAugment(freq_masks=2, freq_width=5, time_masks=3, time_width=4, mask_value=-1.0)
    augment.train()
    with typecheck():
        out = augment(spec, LENGTHS, generator=torch.Generator().manual_seed(3))
    again = augment(spec, LENGTHS, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, again)
    masked = out == -1.0
    assert masked.any()
    valid = AF.lengths_to_mask(LENGTHS, 50)
    assert not (masked & ~valid.unsqueeze(1)).any()  # padding untouched
    assert torch.equal(out[~masked], spec[~masked])
    # a time band is at most 4 frames wide per mask: at most 12 fully masked frames per item
    for item in range(3):
        full_frames = masked[item].all(dim=0).sum()
        assert full_frames <= 3 * 4


def test_spec_augment_fractional_time_width() -> None:
    spec = _padded(_spec())
    augment = SpecAugment(freq_masks=0, time_masks=1, time_width=0.1).train()
    for seed in range(20):
        out = augment(spec, LENGTHS, generator=torch.Generator().manual_seed(seed))
        widths = (out == 0).logical_and(spec != 0).all(dim=1).sum(dim=-1)  # masked frames per item
        assert widths.tolist()[0] <= 5 and widths.tolist()[1] <= 3 and widths.tolist()[2] <= 1


def test_freq_masks_cover_whole_valid_rows() -> None:
    spec = _padded(_spec())
    out = SpecAugment(freq_masks=1, freq_width=20, time_masks=0).train()(
        spec, LENGTHS, generator=torch.Generator().manual_seed(0)
    )
    masked_rows = (out[0] == 0).all(dim=-1)
    partly = ((out[0] == 0).any(dim=-1)) & ~masked_rows
    assert not partly.any()  # a frequency band spans every valid frame


def test_spec_cutout_rectangles() -> None:
    spec = _padded(_spec())
    cutout = SpecCutout(rect_masks=1, rect_time=6, rect_freq=4).train()
    for seed in range(10):
        out = cutout(spec, LENGTHS, generator=torch.Generator().manual_seed(seed))
        for item in range(3):
            cells = ((out[item] == 0) & (spec[item] != 0)).nonzero()
            if len(cells):
                assert cells[:, 0].max() - cells[:, 0].min() < 4
                assert cells[:, 1].max() - cells[:, 1].min() < 6
                assert cells[:, 1].max() < LENGTHS[item]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="fraction"):
        SpecAugment(time_width=1.5)
    with pytest.raises(ValueError):
        SpecCutout(rect_masks=-1)
