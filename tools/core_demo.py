"""`make demo-core`: train, pack and restore the core's smallest model.

The core demo trains the smallest model (an MLP classifier on
synthetic Gaussian clusters, generated on the fly: no files, no network) through the same path as
every model: `convai train` config composition, the trainer factory, the experiment manager, and
the `.convai` archive. It prints held-out accuracy before and after training and checks that the
restored archive gives the same predictions.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

OUT = Path("demo_output")


def accuracy(model, loader) -> float:
    import torch

    correct = total = 0
    model.eval()
    with torch.no_grad():
        for features, labels in loader:
            correct += int((model(features).argmax(-1) == labels).sum())
            total += len(labels)
    return correct / total


def main() -> int:
    import torch

    from convai_core.models import ModelBase
    from convai_core.train import compose_config, train

    if (OUT / "experiments").exists():
        shutil.rmtree(OUT / "experiments")
    overrides = [
        "model=core/mlp_classifier",
        "trainer.max_epochs=5",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"exp_manager.exp_dir={OUT / 'experiments'}",
        "exp_manager.name=demo",
    ]
    cfg = compose_config(overrides)
    from convai_core.registry import get_registries

    model_cls = get_registries().models.load(cfg.model.name)
    torch.manual_seed(int(cfg.seed))
    untrained = model_cls(cfg.model)
    val_loader = untrained.build_dataloader(cfg.model.validation_ds, "validation")
    before = accuracy(untrained, val_loader)

    start = time.perf_counter()
    result = train(cfg)
    seconds = time.perf_counter() - start
    assert result.archive is not None
    archive = OUT / "mlp_classifier.convai"
    shutil.copyfile(result.archive, archive)

    restored = ModelBase.restore_from(archive)
    after = accuracy(restored, val_loader)
    trained_again = accuracy(result.model, val_loader)
    print()
    print("convai demo: core/mlp_classifier on synthetic 4-class clusters (16-d, noise 2.5)")
    print(f"  {'held-out accuracy before training':<40} {before:6.1%}")
    print(f"  {'held-out accuracy after training':<40} {after:6.1%}")
    print(f"  {'training time (5 epochs, CPU)':<40} {seconds:6.1f} s")
    print(f"  {'run folder':<40} {result.run_dir}")
    print(f"  {'model archive':<40} {archive}")
    if abs(after - trained_again) > 1e-9:
        print("convai demo: the restored archive disagrees with the trained model", file=sys.stderr)
        return 1
    if after < 0.8:
        print(f"convai demo: the model did not learn (accuracy {after:.1%})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
