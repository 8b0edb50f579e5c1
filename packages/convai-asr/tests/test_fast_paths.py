"""Every CPU fast path of convai-asr against its reference form, the plain operators.

One switch decides where the fast paths run (:func:`convai_core.fast_paths.cpu_fast_path_applies`);
``reference_paths()`` (or ``CONVAI_REFERENCE_PATHS=1``) turns them all off. Here each encoder,
and the CTC model end to end with its mel preprocessor, gives the same outputs both ways on
padded batches in eval / inference mode, and the same outputs and gradients in a training step;
the fast paths are really taken on CPU and really avoided under the switch and in traces; and the
packed-bit dropout drops like ``torch.nn.functional.dropout``, which the switch falls back to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from convai_asr import functional as AF
from convai_asr.modules import conformer as conformer_module
from convai_asr.modules import dropout as dropout_module
from convai_asr.modules.conformer import ConformerEncoder, ConvSubsampling, _ConvModule
from convai_asr.modules.dropout import dropout
from convai_asr.modules.jasper import JasperEncoder
from convai_asr.testing import tiny_model
from convai_core.fast_paths import REFERENCE_PATHS_ENV, reference_paths

# fast and reference forms differ only in the order of float32 roundings: observed differences
# are below 3e-6 on outputs of magnitude up to ~7 (0.0 for the Jasper stacks)
TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}

QUARTZNET_LIKE_BLOCKS: list[dict[str, Any]] = [
    {"filters": 16, "repeat": 1, "kernel": 11, "stride": 2, "separable": True},
    {"filters": 16, "repeat": 3, "kernel": 13, "residual": True, "separable": True},
    {"filters": 24, "repeat": 1, "kernel": 9, "dilation": 2, "separable": True},
    {"filters": 24, "repeat": 2, "kernel": 5, "residual": True},  # plain (not separable)
    {"filters": 32, "repeat": 1, "kernel": 1, "separable": True},
]


@pytest.fixture(autouse=True)
def _fast_paths_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REFERENCE_PATHS_ENV, raising=False)


def _trained_looking(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm statistics and an affine transform that are not the identity, so
    that folding them into the depthwise taps is really tested."""
    generator = torch.Generator().manual_seed(seed)
    for norm in module.modules():
        if isinstance(norm, torch.nn.BatchNorm1d):
            size = norm.num_features
            assert norm.running_mean is not None and norm.running_var is not None
            norm.running_mean.copy_(torch.rand(size, generator=generator) - 0.5)
            norm.running_var.copy_(torch.rand(size, generator=generator) * 1.5 + 0.5)
            norm.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            norm.bias.data.copy_(torch.rand(size, generator=generator) - 0.5)
    return module


def _fast_and_reference(
    model: torch.nn.Module, *inputs: torch.Tensor
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    with torch.inference_mode():
        fast = model(*inputs)
        with reference_paths():
            reference = model(*inputs)
    return fast, reference


def _assert_same_valid_frames(
    fast: tuple[torch.Tensor, torch.Tensor],
    reference: tuple[torch.Tensor, torch.Tensor],
    time_dim: int,
) -> None:
    """Equal lengths, outputs within :data:`TOLERANCE` on valid frames, padding identical."""
    (out, lengths), (ref_out, ref_lengths) = fast, reference
    assert torch.equal(lengths, ref_lengths)
    valid = torch.arange(out.shape[time_dim]) < lengths[:, None]  # (B, T)
    shape = [1] * out.dim()
    shape[0], shape[time_dim] = valid.shape
    valid = valid.view(shape)
    torch.testing.assert_close(out * valid, ref_out * valid, **TOLERANCE)


@pytest.fixture()
def fast_path_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the calls of every fast-path implementation (and of the reference front end)."""
    calls: Counter[str] = Counter()

    def spy(owner: Any, name: str, label: str | None = None) -> None:
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[label or name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    spy(AF, "depthwise_conv1d_shifts")
    spy(ConvSubsampling, "_forward_eager")
    spy(ConvSubsampling, "_forward_convs")
    spy(_ConvModule, "_infer")
    spy(conformer_module, "_relative_to_absolute")
    spy(conformer_module, "dropout", "attention_weights_dropout")  # explicit attention only
    spy(torch.nn.functional, "dropout", "torch_dropout")
    spy(torch.nn.functional, "scaled_dot_product_attention")
    return calls


def _tiny_conformer(pos_encoding: str, **options: Any) -> ConformerEncoder:
    torch.manual_seed(0)
    encoder = ConformerEncoder(
        16, d_model=32, n_layers=2, n_heads=4, conv_kernel=7, subsampling_conv_channels=8,
        pos_encoding=pos_encoding, **options,
    )  # fmt: skip
    return encoder


# -- inference: fast == reference ------------------------------------------------------------


def test_jasper_encoder_fast_equals_reference(fast_path_calls: Counter[str]) -> None:
    torch.manual_seed(0)
    encoder = _trained_looking(JasperEncoder(8, QUARTZNET_LIKE_BLOCKS).eval())
    x, lengths = torch.randn(3, 8, 61), torch.tensor([61, 44, 20])
    with torch.inference_mode():
        fast = encoder(x, lengths)
    shifts = fast_path_calls["depthwise_conv1d_shifts"]
    assert shifts == 6  # every separable sub-block, the k=1 one included
    with torch.inference_mode(), reference_paths():
        reference = encoder(x, lengths)
    assert fast_path_calls["depthwise_conv1d_shifts"] == shifts  # none under the switch
    _assert_same_valid_frames(fast, reference, time_dim=2)


@pytest.mark.parametrize("pos_encoding", ["rel", "abs"])
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("chunk_bytes", [16 << 20, 1], ids=["one_group", "item_groups"])
def test_conformer_encoder_fast_equals_reference(
    pos_encoding: str, padded: bool, chunk_bytes: int, fast_path_calls: Counter[str]
) -> None:
    """Patch-matmul front end (in batch groups), strided relative scores, (B, T, D) convolution
    module with BatchNorm folded into shift-and-add taps, in-place SiLU, no masks for an
    unpadded batch: all equal to the plain operators."""
    encoder = _trained_looking(_tiny_conformer(pos_encoding).eval())
    encoder.subsampling.chunk_bytes = chunk_bytes
    x = torch.randn(3, 16, 57)
    lengths = torch.tensor([57, 40, 23]) if padded else torch.full((3,), 57)
    fast, reference = _fast_and_reference(encoder, x, lengths)
    _assert_same_valid_frames(fast, reference, time_dim=2)
    groups = 1 if chunk_bytes > 1 else 3
    assert fast_path_calls["_forward_eager"] == groups  # fast run only
    assert fast_path_calls["_forward_convs"] == 1  # reference run only
    assert fast_path_calls["_infer"] == 2  # one per layer, fast run only
    assert fast_path_calls["_relative_to_absolute"] == (2 if pos_encoding == "rel" else 0)


@pytest.mark.parametrize("kind", ["quartznet", "conformer"])
def test_ctc_model_fast_equals_reference(kind: str) -> None:
    """End to end: mel preprocessor (power spectrum), encoder and CTC head."""
    torch.manual_seed(0)
    model = _trained_looking(tiny_model(kind))
    audio = torch.randn(3, 16000) * 0.1
    lengths = torch.tensor([16000, 11000, 5000])
    fast, reference = _fast_and_reference(model, audio, lengths)
    _assert_same_valid_frames(fast, reference, time_dim=1)


def test_environment_variable_selects_the_reference(
    monkeypatch: pytest.MonkeyPatch, fast_path_calls: Counter[str]
) -> None:
    encoder = _trained_looking(JasperEncoder(8, QUARTZNET_LIKE_BLOCKS).eval())
    x, lengths = torch.randn(2, 8, 30), torch.tensor([30, 17])
    monkeypatch.setenv(REFERENCE_PATHS_ENV, "1")
    with torch.inference_mode():
        encoder(x, lengths)
    assert fast_path_calls["depthwise_conv1d_shifts"] == 0


def test_relative_scores_view_equals_shape_operations() -> None:
    from convai_asr.modules.conformer import _relative_to_absolute

    scores = torch.randn(2, 3, 7, 13)
    with torch.no_grad():
        viewed = _relative_to_absolute(scores)
        with reference_paths():
            shifted = _relative_to_absolute(scores)
    # the fast path is a view of the scores
    assert viewed.untyped_storage().data_ptr() == scores.untyped_storage().data_ptr()
    assert torch.equal(viewed, shifted)
    assert shifted[1, 2, 4, 5] == scores[1, 2, 4, (7 - 1) - 4 + 5]


# -- training: fast == reference -------------------------------------------------------------


def _outputs_and_gradients(
    model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    torch.manual_seed(1)  # the same dither and augmentation masks in every run
    out, lengths = model(*inputs)
    valid = torch.arange(out.shape[1]) < lengths[:, None]  # (B, T')
    (out * valid[:, :, None]).sum().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("kind", ["quartznet", "conformer"])
def test_training_step_fast_equals_reference(kind: str, fast_path_calls: Counter[str]) -> None:
    """A training forward and backward (no dropout; dither and augmentations drawn from the same
    seed) give the same outputs and gradients with the fast paths (patch-matmul front end, power
    spectrum) and without them."""
    torch.manual_seed(0)
    model = tiny_model(kind).train()
    inputs = (torch.randn(2, 12000) * 0.1, torch.tensor([12000, 7000]))
    fast, fast_grads = _outputs_and_gradients(model, inputs)
    with reference_paths():
        reference, reference_grads = _outputs_and_gradients(model, inputs)
    torch.testing.assert_close(fast, reference, **TOLERANCE)
    assert len(fast_grads) == len(reference_grads) > 0
    # on the scale of the largest gradient: some (a bias before a training-mode BatchNorm) are
    # zero up to rounding noise, and gradients sum over every frame
    fast_flat, reference_flat = (
        torch.cat([g.flatten() for g in fast_grads]),
        torch.cat([g.flatten() for g in reference_grads]),
    )
    scale = reference_flat.abs().max().item()
    torch.testing.assert_close(fast_flat, reference_flat, atol=1e-5 * scale, rtol=0)
    if kind == "conformer":
        assert fast_path_calls["_forward_eager"] == fast_path_calls["_forward_convs"] == 1
    assert fast_path_calls["depthwise_conv1d_shifts"] == fast_path_calls["_infer"] == 0


def test_attention_dropout_in_training(fast_path_calls: Counter[str]) -> None:
    """Training on CPU: attention weights written out and dropped by the packed-bit dropout;
    under the switch, scaled_dot_product_attention with its own dropout."""
    encoder = _tiny_conformer("rel", dropout=0.1, dropout_att=0.1).train()
    x, lengths = torch.randn(2, 16, 40), torch.tensor([40, 31])
    encoder(x, lengths)
    assert fast_path_calls["attention_weights_dropout"] == 2  # one per layer
    assert fast_path_calls["scaled_dot_product_attention"] == 0
    assert fast_path_calls["torch_dropout"] == 0 and fast_path_calls["_forward_eager"] == 1
    with reference_paths():
        encoder(x, lengths)
    assert fast_path_calls["scaled_dot_product_attention"] == 2
    assert fast_path_calls["attention_weights_dropout"] == 2  # none written out
    assert fast_path_calls["torch_dropout"] > 0 and fast_path_calls["_forward_convs"] == 1


# -- dropout: the same statistics, and the plain operator under the switch ------------------


def _drop_fraction(draw: Callable[[], torch.Tensor]) -> float:
    return (draw() == 0).float().mean().item()


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_fast_and_reference_drop_alike(p: float, fast_path_calls: Counter[str]) -> None:
    torch.manual_seed(0)
    x = torch.ones(400, 1001)  # 400k draws: the sd of a drop fraction is below 8e-4
    fast = _drop_fraction(lambda: dropout(x, p))
    assert fast_path_calls["torch_dropout"] == 0  # torch.nn.functional.dropout was not used
    with reference_paths():
        reference = _drop_fraction(lambda: dropout(x, p))
        kept = dropout(x, p)
    assert fast_path_calls["torch_dropout"] == 2  # ... and is used under the switch
    assert abs(fast - p) < 4e-3 and abs(reference - p) < 4e-3 and abs(fast - reference) < 5e-3
    survivors = kept[kept != 0]
    torch.testing.assert_close(survivors, torch.full_like(survivors, 1 / (1 - p)))


def test_dropout_reference_is_torch_dropout() -> None:
    """Under the switch the result is bit for bit ``torch.nn.functional.dropout``'s."""
    x = torch.randn(64, 33)
    with reference_paths():
        torch.manual_seed(3)
        ours = dropout_module.dropout(x, 0.3)
    torch.manual_seed(3)
    assert torch.equal(ours, torch.nn.functional.dropout(x, 0.3, training=True))


# -- traces hold the plain operators ---------------------------------------------------------


def _traced_ops(model: torch.nn.Module, *inputs: torch.Tensor) -> Iterator[str]:
    with torch.no_grad():
        traced = torch.jit.trace(model, inputs, check_trace=False)
    return (node.kind() for node in traced.inlined_graph.nodes())


def test_traces_hold_no_fast_path(fast_path_calls: Counter[str]) -> None:
    """Traced in eager-inference conditions (CPU, no grad), the graphs still hold convolutions,
    the padded relative shift and the masks, never a shortcut."""
    conformer = _trained_looking(_tiny_conformer("rel").eval())
    ops = Counter(_traced_ops(conformer, torch.randn(2, 16, 40), torch.tensor([40, 40])))
    assert ops["aten::as_strided"] == 0 and ops["aten::addcmul_"] == 0
    assert ops["aten::_convolution"] >= 2 + 2 * 3  # front end; pointwise, depthwise per layer
    assert ops["aten::masked_fill"] >= 2  # an unpadded example batch keeps the masks
    jasper = _trained_looking(JasperEncoder(8, QUARTZNET_LIKE_BLOCKS).eval())
    ops = Counter(_traced_ops(jasper, torch.randn(2, 8, 30), torch.tensor([30, 17])))
    assert ops["aten::addcmul_"] == 0 and ops["aten::_convolution"] > 0
    assert sum(fast_path_calls[name] for name in ("depthwise_conv1d_shifts", "_infer")) == 0
    assert fast_path_calls["_forward_eager"] == fast_path_calls["_relative_to_absolute"] == 0
