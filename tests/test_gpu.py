"""GPU checks (marked ``gpu``: skipped without CUDA): AMP training and CUDA inference."""

from __future__ import annotations

import json
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


def test_ctc_model_forward_on_cuda_matches_cpu() -> None:
    import torch

    from convai_core.registry import get_registries
    from convai_core.train import compose_config

    cfg = compose_config(["model=asr/conformer_ctc_small", "model.train_ds.manifest=unused"])
    model = get_registries().models.load(cfg.model.name)(cfg.model).eval()
    audio, lengths = torch.randn(2, 32000) * 0.1, torch.tensor([32000, 20000])
    with torch.inference_mode():
        cpu, _ = model(audio, lengths)
        gpu, _ = model.cuda()(audio.cuda(), lengths.cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-3)
