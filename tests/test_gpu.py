"""GPU checks (marked ``gpu``: skipped without CUDA): AMP training and CUDA inference."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from convai_core.train import main

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_amp_training_on_cuda(precision: str, tmp_path: Path) -> None:
    code = main(
        [
            "model=core/mlp_classifier",
            "trainer.accelerator=gpu",
            "trainer.devices=1",
            f"trainer.precision={precision}",
            "trainer.max_epochs=3",
            "trainer.enable_progress_bar=false",
            f"exp_manager.exp_dir={tmp_path}",
        ]
    )
    assert code == 0
    run = tmp_path / "core_mlp_classifier" / "version_0"
    assert json.loads((run / "events.jsonl").read_text().splitlines()[-1])["global_step"] == 96
    rows = (run / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    accuracy = [
        float(r.split(",")[header.index("val_accuracy")])
        for r in rows[1:]
        if r.split(",")[header.index("val_accuracy")]
    ]
    assert accuracy[-1] > 0.8


@contextlib.contextmanager
def _full_fp32_on_cuda() -> Iterator[None]:
    """No TF32 in CUDA matmuls and convolutions (cuDNN allows it by default): TF32 keeps 10
    mantissa bits, and the Conformer's log-probabilities then drift by ~3e-3 from the CPU's."""
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("config", ["asr/conformer_ctc_small", "asr/quartznet_15x5"])
def test_ctc_model_forward_on_cuda_matches_cpu(config: str) -> None:
    """CUDA (plain operators, full float32) against the CPU's reference form and its fast paths."""
    import torch

    from convai_core.fast_paths import reference_paths
    from convai_core.registry import get_registries
    from convai_core.train import compose_config

    cfg = compose_config([f"model={config}", "model.train_ds.manifest=unused"])
    model = get_registries().models.load(cfg.model.name)(cfg.model).eval()
    torch.manual_seed(0)
    audio, lengths = torch.randn(2, 32000) * 0.1, torch.tensor([32000, 20000])
    with _full_fp32_on_cuda(), torch.inference_mode():
        fast_cpu, cpu_lengths = model(audio, lengths)
        with reference_paths():
            reference_cpu, _ = model(audio, lengths)
        gpu, gpu_lengths = model.cuda()(audio.cuda(), lengths.cuda())
    gpu = gpu.cpu()
    assert torch.equal(gpu_lengths.cpu(), cpu_lengths)
    valid = (torch.arange(gpu.shape[1]) < cpu_lengths[:, None])[:, :, None]  # (B, T', 1)
    # Both devices compute in float32 and differ only in the order of roundings (cuDNN / cuBLAS
    # reduction trees vs oneDNN / the CPU fast paths): relative errors of ~1e-6 per operation,
    # grown through 16-18 blocks of normalized activations. Measured on an H200 (torch 2.11):
    # at most 8e-6 on log-probabilities of magnitude up to 8 (Conformer; 2.4e-7 for QuartzNet)
    # without TF32, 3.4e-3 with it. 2e-4 leaves a 25x margin over the former and fails on the
    # latter, so a TF32 leak (or a real divergence between the paths) is caught.
    for cpu in (reference_cpu, fast_cpu):
        torch.testing.assert_close(gpu * valid, cpu * valid, atol=2e-4, rtol=0)


def test_no_cpu_fast_path_runs_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inference and a training step on CUDA: every fast-path site asks the switch, which says
    no, and none of the shortcut implementations runs (each is replaced by one that raises)."""
    import torch

    import convai_asr.functional as asr_functional
    from convai_asr.modules import conformer, dropout, jasper
    from convai_asr.modules.conformer import ConformerEncoder, ConvSubsampling, _ConvModule
    from convai_asr.testing import tiny_model

    answers: list[bool] = []
    for module in (asr_functional, conformer, dropout, jasper):
        switch = module.cpu_fast_path_applies

        def recorded(x: torch.Tensor, *, inference: bool, _switch=switch) -> bool:
            answers.append(_switch(x, inference=inference))
            return answers[-1]

        monkeypatch.setattr(module, "cpu_fast_path_applies", recorded)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a CPU fast path ran on CUDA")

    for owner, name in [
        (asr_functional, "depthwise_conv1d_shifts"),
        (ConvSubsampling, "_forward_eager"),
        (_ConvModule, "_infer"),
        (conformer, "_relative_to_absolute"),
        (conformer, "dropout"),  # packed-bit dropout of explicitly written attention weights
    ]:
        monkeypatch.setattr(owner, name, forbidden)
    torch_dropout_calls = []
    plain_dropout = torch.nn.functional.dropout
    monkeypatch.setattr(
        torch.nn.functional,
        "dropout",
        lambda *a, **k: torch_dropout_calls.append(1) or plain_dropout(*a, **k),
    )

    audio = (torch.randn(2, 16000) * 0.1).cuda()
    lengths = torch.tensor([16000, 9000]).cuda()
    for kind in ("quartznet", "conformer"):
        model = tiny_model(kind).cuda()
        with torch.inference_mode():
            model(audio, lengths)
    encoder = ConformerEncoder(
        16, d_model=32, n_layers=2, n_heads=4, conv_kernel=7, subsampling_conv_channels=8,
        dropout=0.1, dropout_att=0.1,
    ).cuda().train()  # fmt: skip
    out, _ = encoder(torch.randn(2, 16, 40).cuda(), torch.tensor([40, 31]).cuda())
    out.sum().backward()
    assert len(answers) > 10 and not any(answers)
    assert torch_dropout_calls  # the Dropout modules fell back to torch's CUDA kernel
