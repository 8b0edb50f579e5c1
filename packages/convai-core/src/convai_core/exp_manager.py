"""Experiment manager: run folders, checkpoints, automatic resume, loggers, the final archive.

A run lives in ``<exp_dir>/<name>/<version>/``::

    config.yaml          the resolved config of the run
    versions.json        python, torch, lightning and every convai package's version
    events.jsonl         one line per start/resume (with the global step it started from) and end
    checkpoints/         top-k checkpoints by the monitored metric, and last.ckpt
    tb/  csv/            TensorBoard and CSV logs
    <name>.convai        the best model, packed at the end of training
    COMPLETED            written when training ended normally

Running the same command again resumes the newest unfinished run from ``checkpoints/last.ckpt``
(``exp_manager.resume=false`` starts a new version). Under DDP every rank uses the run folder chosen
by the launching process; with ``trainer.num_nodes > 1`` set ``exp_manager.version`` so that all
nodes agree on the folder.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from dataclasses import dataclass, field
from importlib.metadata import distributions
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from convai_core.config_utils import from_mapping
from convai_core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from convai_core.models.base import ModelBase
    from convai_core.trainer import TrainerConfig

RUN_DIR_ENV = "CONVAI_RUN_DIR"
LAST = "last.ckpt"
COMPLETED = "COMPLETED"


@dataclass
class CheckpointConfig:
    monitor: str | None = "val_loss"
    mode: str = "min"
    save_top_k: int = 3
    save_last: bool = True
    every_n_train_steps: int | None = None
    filename: str = "{epoch}-{step}"


@dataclass
class ExpManagerConfig:
    exp_dir: str = "experiments"
    name: str | None = None
    version: str | None = None
    resume: bool = True
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    tensorboard: bool = True
    csv: bool = True
    save_archive: bool = True


def parse_exp_manager_config(cfg: Mapping[str, Any] | None) -> ExpManagerConfig:
    parsed = from_mapping(ExpManagerConfig, "exp_manager", cfg)
    if not isinstance(parsed.checkpoint, CheckpointConfig):
        parsed.checkpoint = from_mapping(
            CheckpointConfig, "exp_manager.checkpoint", parsed.checkpoint
        )
    if parsed.checkpoint.mode not in ("min", "max"):
        raise ConfigError(
            f"exp_manager.checkpoint.mode must be 'min' or 'max', got {parsed.checkpoint.mode!r}"
        )
    return parsed


def package_versions() -> dict[str, str]:
    """Versions of python, torch, lightning and every installed convai distribution."""
    versions = {"python": platform.python_version()}
    for dist in distributions():
        name = dist.metadata["Name"] or ""
        if name.startswith("convai-") or name in (
            "torch",
            "torchaudio",
            "pytorch-lightning",
            "hydra-core",
            "omegaconf",
        ):
            versions[name] = dist.version
    return dict(sorted(versions.items()))


def _is_child_rank() -> bool:
    return os.environ.get("LOCAL_RANK", "0") != "0"


def _version_number(path: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", path.name)
    return int(match.group(1)) if match else -1


def choose_run_dir(cfg: ExpManagerConfig, *, default_name: str, num_nodes: int = 1) -> Path:
    """Decide the run folder (see the module docstring for the rules)."""
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited and _is_child_rank():
        return Path(inherited)
    name = cfg.name or default_name.replace("/", "_")
    base = Path(cfg.exp_dir).expanduser().resolve() / name
    if cfg.version:
        return base / cfg.version
    if num_nodes > 1:
        raise ConfigError(
            "trainer.num_nodes > 1 needs exp_manager.version set to the same value on every node, "
            "so that all nodes write to one run folder (for example exp_manager.version=run1)."
        )
    existing = sorted(
        (p for p in base.glob("version_*") if p.is_dir() and _version_number(p) >= 0),
        key=_version_number,
    )
    if cfg.resume:
        for candidate in reversed(existing):
            if (candidate / "checkpoints" / LAST).is_file() and not (
                candidate / COMPLETED
            ).exists():
                return candidate
    next_number = _version_number(existing[-1]) + 1 if existing else 0
    return base / f"version_{next_number}"


class RunRecorder(pl.Callback):
    """Writes the run's config, versions and start/resume/end events (global rank zero only)."""

    def __init__(self, run_dir: Path, config: Mapping[str, Any], resumed_from: Path | None) -> None:
        self.run_dir = run_dir
        self.config = config
        self.resumed_from = resumed_from

    def _event(self, **fields: Any) -> None:
        with open(self.run_dir / "events.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"time": time.time(), **fields}) + "\n")

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        import yaml

        self.run_dir.mkdir(parents=True, exist_ok=True)
        _write_text_atomic(
            self.run_dir / "config.yaml", yaml.safe_dump(dict(self.config), sort_keys=False)
        )
        _write_text_atomic(self.run_dir / "versions.json", json.dumps(package_versions(), indent=2))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self._event(
                event="resume" if self.resumed_from else "start",
                global_step=trainer.global_step,
                checkpoint=str(self.resumed_from) if self.resumed_from else None,
                world_size=trainer.world_size,
            )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self._event(event="end", global_step=trainer.global_step)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class ExperimentRun:
    """What :func:`setup_experiment` decided: folder, callbacks, loggers and resume point."""

    cfg: ExpManagerConfig
    name: str
    run_dir: Path
    resume_from: Path | None
    callbacks: list[pl.Callback]
    loggers: list[Any]
    best_callback: ModelCheckpoint | None

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def archive_path(self) -> Path:
        return self.run_dir / f"{self.name}.convai"

    def finalize(self, trainer: pl.Trainer, model: ModelBase) -> Path | None:
        """Pack the best checkpoint (else the current weights) into a ``.convai``; mark done."""
        if not trainer.is_global_zero:
            return None
        archive_path: Path | None = None
        if self.cfg.save_archive:
            best = self.best_callback.best_model_path if self.best_callback else ""
            if best and Path(best).is_file():
                import torch

                state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
                model.load_state_dict(state)
            archive_path = model.save_to(self.archive_path)
        (self.run_dir / COMPLETED).write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
        return archive_path


def setup_experiment(
    exp_cfg: Mapping[str, Any] | ExpManagerConfig | None,
    *,
    model_name: str,
    full_config: Mapping[str, Any],
    trainer_cfg: TrainerConfig,
    has_validation: bool,
) -> ExperimentRun:
    """Choose the run folder and build the checkpoint callbacks and loggers for a run."""
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

    cfg = exp_cfg if isinstance(exp_cfg, ExpManagerConfig) else parse_exp_manager_config(exp_cfg)
    run_dir = choose_run_dir(cfg, default_name=model_name, num_nodes=trainer_cfg.num_nodes)
    if not _is_child_rank():
        os.environ[RUN_DIR_ENV] = str(run_dir)
    name = cfg.name or model_name.replace("/", "_")
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / LAST
    resume_from = last if cfg.resume and last.is_file() else None
    for stale in ckpt_dir.glob(".*.tmp"):  # left by a run killed while writing
        if not _is_child_rank():
            stale.unlink(missing_ok=True)

    ck = cfg.checkpoint
    callbacks: list[pl.Callback] = []
    best_callback = None
    monitor = ck.monitor if has_validation else None
    if monitor and ck.save_top_k != 0:
        best_callback = ModelCheckpoint(
            dirpath=ckpt_dir,
            filename=ck.filename + f"-{{{monitor}:.4f}}",
            monitor=monitor,
            mode=ck.mode,
            save_top_k=ck.save_top_k,
            save_last=False,
            auto_insert_metric_name=True,
        )
        callbacks.append(best_callback)
    if ck.save_last:
        last_kwargs: dict[str, Any] = (
            {"every_n_train_steps": ck.every_n_train_steps}
            if ck.every_n_train_steps
            else {"every_n_epochs": 1}
        )
        callbacks.append(
            ModelCheckpoint(dirpath=ckpt_dir, save_top_k=0, save_last=True, **last_kwargs)
        )
    callbacks.append(RunRecorder(run_dir, full_config, resume_from))
    loggers: list[Any] = []
    if cfg.tensorboard:
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tb", version=""))
    if cfg.csv:
        loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=""))
    return ExperimentRun(cfg, name, run_dir, resume_from, callbacks, loggers, best_callback)
