"""Jasper/QuartzNet and Conformer encoders, CTC head: sizes, lengths, batched == one by one."""

from __future__ import annotations

import pytest
import torch

from convai_asr.modules.conformer import ConformerEncoder
from convai_asr.modules.ctc_head import ConvCTCDecoder
from convai_asr.modules.features import MelSpectrogramPreprocessor
from convai_asr.modules.jasper import (
    JasperEncoder,
    MaskedConv1d,
    jasper_10x5_blocks,
    quartznet_blocks,
)
from convai_core.types import connect, typecheck


def _count(*modules: torch.nn.Module) -> int:
    return sum(p.numel() for module in modules for p in module.parameters())


def _check_batched_equals_single(encoder: torch.nn.Module, feat_in: int, atol: float) -> None:
    torch.manual_seed(0)
    encoder.eval()
    lengths = torch.tensor([41, 26, 9])
    features = torch.randn(3, feat_in, 41)
    with torch.no_grad(), typecheck():
        encoded, encoded_len = encoder(audio_signal=features, length=lengths)
        for item in range(3):
            alone = features[item : item + 1, :, : lengths[item]]
            single, single_len = encoder(audio_signal=alone, length=lengths[item : item + 1])
            valid = int(single_len)
            assert valid == int(encoded_len[item])
            torch.testing.assert_close(
                single[0, :, :valid], encoded[item, :, :valid], atol=atol, rtol=0
            )
            assert torch.all(encoded[item, :, valid:] == 0)


def test_quartznet_15x5_parameter_count() -> None:
    blocks = quartznet_blocks(15, 5)
    assert len(blocks) == 1 + 15 + 2
    assert [b["kernel"] for b in blocks[1:16:3]] == [33, 39, 51, 63, 75]
    encoder = JasperEncoder(64, blocks)
    total = _count(encoder, ConvCTCDecoder(1024, 28))  # 28 characters + blank = 29 outputs
    assert total == pytest.approx(18.92e6, rel=0.01), total


def test_jasper_10x5_block_list() -> None:
    blocks = jasper_10x5_blocks()
    assert len(blocks) == 13 and not any(b.get("separable") for b in blocks)
    assert [b["filters"] for b in blocks[1:11:2]] == [256, 384, 512, 640, 768]
    assert all(b["repeat"] == 5 and b["residual"] for b in blocks[1:11])


def test_conformer_small_parameter_count() -> None:
    encoder = ConformerEncoder(80)  # NeMo conformer_ctc_small sizes are the defaults
    total = _count(encoder, ConvCTCDecoder(176, 29))
    assert total == pytest.approx(13.0e6, rel=0.05), total


def test_tiny_quartznet_batched_equals_single() -> None:
    blocks = quartznet_blocks(5, 2)
    for block in blocks:  # shrink the published sizes, keep the structure
        block["filters"] = 16
        block["kernel"] = min(block["kernel"], 7)
    encoder = JasperEncoder(8, blocks)
    _check_batched_equals_single(encoder, 8, atol=1e-5)


def test_tiny_plain_jasper_batched_equals_single_and_strides() -> None:
    blocks = [
        {"filters": 12, "kernel": 5, "stride": 2},
        {"filters": 12, "kernel": [7], "repeat": 3, "residual": True, "dropout": 0.1},
        {"filters": 16, "kernel": 3, "stride": 2, "residual": True},
        {"filters": 16, "kernel": 5, "dilation": 2},
    ]
    encoder = JasperEncoder(8, blocks)
    assert encoder.stride == 4 and encoder.d_model == 16
    _check_batched_equals_single(encoder, 8, atol=1e-5)
    out, out_len = encoder.eval()(torch.randn(2, 8, 41), torch.tensor([41, 17]))
    assert out.shape == (2, 16, 11) and out_len.tolist() == [11, 5]  # ceil(ceil(T / 2) / 2)


@pytest.mark.parametrize("pos_encoding", ["rel", "abs"])
def test_tiny_conformer_batched_equals_single(pos_encoding: str) -> None:
    encoder = ConformerEncoder(
        16, d_model=32, n_layers=2, n_heads=4, conv_kernel=7, subsampling_conv_channels=8,
        pos_encoding=pos_encoding,
    )  # fmt: skip
    _check_batched_equals_single(encoder, 16, atol=1e-4)
    out, out_len = encoder(torch.randn(2, 16, 41), torch.tensor([41, 8]))
    assert out.shape == (2, 32, 11) and out_len.tolist() == [11, 2]


def test_depthwise_shifts_channels_last() -> None:
    from convai_asr.functional import depthwise_conv1d_shifts

    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 6, 5, padding=2, groups=6)
    x = torch.randn(2, 6, 30)
    with torch.no_grad():
        out = depthwise_conv1d_shifts(
            x.transpose(1, 2), weight=conv.weight, bias=conv.bias, padding=2, channels_last=True
        )
        assert torch.allclose(out.transpose(1, 2), conv(x), atol=1e-5)


def test_errors() -> None:
    with pytest.raises(ValueError, match="multiple of 5"):
        quartznet_blocks(7, 5)
    with pytest.raises(ValueError, match="unknown keys"):
        JasperEncoder(8, [{"filters": 8, "kernel": 3, "strides": 2}])
    with pytest.raises(ValueError, match="odd"):
        MaskedConv1d(4, 4, 4)
    with pytest.raises(ValueError, match="subsampling_factor"):
        ConformerEncoder(16, d_model=8, n_layers=1, subsampling_factor=8)


def test_ports_connect_and_ctc_head() -> None:
    preprocessor = MelSpectrogramPreprocessor(n_mels=16)
    encoder = ConformerEncoder(16, d_model=32, n_layers=1, subsampling_conv_channels=8)
    decoder = ConvCTCDecoder(32, num_classes=5)
    connect(preprocessor, encoder, mapping={"processed_signal": "audio_signal",
                                            "processed_length": "length"})  # fmt: skip
    assert connect(encoder, decoder) == {"encoded": "encoded"}
    with typecheck():
        log_probs = decoder(encoded=torch.randn(2, 32, 9))
    assert log_probs.shape == (2, 9, 6) and decoder.blank_id == 5
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 9))


def test_shift_and_add_depthwise_conv_equals_grouped_conv() -> None:
    from convai_asr.functional import depthwise_conv1d_shifts

    torch.manual_seed(0)
    x = torch.randn(3, 8, 50)
    conv = torch.nn.Conv1d(8, 8, 31, padding=15, groups=8)
    with torch.no_grad():
        fast = depthwise_conv1d_shifts(x, weight=conv.weight, bias=conv.bias, padding=15)
        assert torch.allclose(fast, conv(x), atol=1e-5)


@pytest.mark.parametrize(("stride", "dilation"), [(1, 1), (2, 1), (1, 2), (2, 3)])
def test_depthwise_shift_and_2d_forms_equal_conv1d(stride: int, dilation: int) -> None:
    from convai_asr.functional import depthwise_conv1d_as_2d, depthwise_conv1d_shifts

    torch.manual_seed(0)
    conv = torch.nn.Conv1d(
        6, 6, 7, stride=stride, dilation=dilation, padding=3 * dilation, groups=6
    )
    x = torch.randn(2, 6, 40)
    with torch.no_grad():
        reference = conv(x)
        shifted = depthwise_conv1d_shifts(
            x, weight=conv.weight, bias=conv.bias, padding=3 * dilation, stride=stride,
            dilation=dilation,
        )  # fmt: skip
        as_2d = depthwise_conv1d_as_2d(x, conv)
    assert shifted.shape == reference.shape == as_2d.shape
    assert torch.allclose(shifted, reference, atol=1e-5)
    assert torch.allclose(as_2d, reference, atol=1e-5)


def test_conformer_trace_keeps_masks_and_batch_size() -> None:
    """A trace made on an unpadded batch still masks a padded one, at another batch size and
    with front-end groups (the eager inference shortcuts are not frozen into traces)."""
    torch.manual_seed(0)
    encoder = ConformerEncoder(
        16, d_model=32, n_layers=2, n_heads=4, conv_kernel=7, subsampling_conv_channels=8
    ).eval()
    encoder.subsampling.chunk_bytes = 1  # eager inference groups one item at a time
    with torch.no_grad():
        traced = torch.jit.trace(
            encoder, (torch.randn(2, 16, 40), torch.tensor([40, 40])), check_trace=False
        )
        x, lengths = torch.randn(3, 16, 57), torch.tensor([57, 30, 12])
        expected, expected_len = encoder(x, lengths)
        got, got_len = traced(x, lengths)
    assert torch.equal(got_len, expected_len)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
