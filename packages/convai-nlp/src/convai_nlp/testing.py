"""Helpers for tests and examples: a task's shipped config, a quiet CPU fit, data subsets."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any


def task_config(task: str, /, **overrides: Any) -> Any:
    """The shipped config of ``nlp/<task>`` with dotted ``overrides`` applied."""
    from omegaconf import OmegaConf

    text = resources.files("convai_nlp.conf").joinpath(f"model/nlp/{task}.yaml").read_text()
    cfg = OmegaConf.create(text)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def fit_quietly(model: Any, epochs: int, seed: int = 0) -> Any:
    """Fit ``model`` for ``epochs`` on CPU without loggers, checkpoints or bars; the trainer.

    The validation set is scored once, after the last epoch (``trainer.callback_metrics``).
    """
    import pytorch_lightning as pl

    pl.seed_everything(seed, workers=True, verbose=False)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=epochs,
    )
    trainer.fit(model)
    return trainer


def subset(source: Path, target: Path, count: int, skip: int = 0) -> Path:
    """Lines ``skip`` .. ``skip + count`` of ``source`` written to ``target``."""
    lines = Path(source).read_text(encoding="utf-8").splitlines(keepends=True)
    Path(target).write_text("".join(lines[skip : skip + count]), encoding="utf-8")
    return Path(target)
