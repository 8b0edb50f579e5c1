"""Trainer factory: a typed ``trainer`` config mapped onto Lightning's ``Trainer``.

The same config trains on CPU, one GPU, many GPUs (``strategy=ddp devices=N``) or many nodes
(``num_nodes=N``, launched by torchrun, SLURM or one process per node with ``NODE_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` set). Distribution is Lightning / torch.distributed; convai adds
no scheme of its own. Checkpoints are written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from convai_core.config_utils import from_mapping
from convai_core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pytorch_lightning as pl

PRECISIONS = ("32", "32-true", "16-mixed", "bf16-mixed", "bf16-true", "64", "64-true")


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bfloat16 natively (AVX512-BF16 or AMX), read from
    /proc/cpuinfo (False where it cannot be read). Elsewhere torch emulates bf16 and a
    ``bf16-mixed`` step on CPU is many times slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass
class TrainerConfig:
    """The ``trainer`` config section (names follow Lightning's Trainer arguments)."""

    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: Any = "32"
    max_epochs: int | None = None
    max_steps: int = -1
    max_time: Any = None
    val_check_interval: Any = None
    check_val_every_n_epoch: int | None = 1
    log_every_n_steps: int = 10
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    deterministic: Any = False
    benchmark: bool | None = None
    enable_progress_bar: bool = True
    enable_model_summary: bool = True
    num_sanity_val_steps: int = 2
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    ddp_timeout_s: float = 1800.0
    ddp_find_unused_parameters: bool = False


def parse_trainer_config(cfg: Mapping[str, Any] | None) -> TrainerConfig:
    """Validate a ``trainer`` config section; unknown keys and bad values raise ConfigError."""
    parsed = from_mapping(TrainerConfig, "trainer", cfg)
    parsed.precision = str(parsed.precision)
    if parsed.precision not in PRECISIONS:
        raise ConfigError(
            f"trainer.precision={parsed.precision!r} is not supported; use one of "
            f"{', '.join(PRECISIONS)}"
        )
    if parsed.num_nodes < 1:
        raise ConfigError(f"trainer.num_nodes must be >= 1, got {parsed.num_nodes}")
    return parsed


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _strategy(cfg: TrainerConfig) -> Any:
    """Return the strategy object (DDP with our timeout) or the name Lightning understands."""
    name = cfg.strategy
    if name.startswith("ddp") and name not in ("ddp_spawn", "ddp_notebook", "ddp_fork"):
        from pytorch_lightning.strategies import DDPStrategy

        return DDPStrategy(
            timeout=timedelta(seconds=cfg.ddp_timeout_s),
            find_unused_parameters=cfg.ddp_find_unused_parameters,
        )
    return name


def build_trainer(
    cfg: Mapping[str, Any] | TrainerConfig | None,
    *,
    callbacks: list[Any] | None = None,
    logger: Any = False,
    default_root_dir: str | os.PathLike[str] | None = None,
    use_distributed_sampler: bool = True,
) -> pl.Trainer:
    """Create a Lightning Trainer from a ``trainer`` config section.

    Precision ``16-mixed`` needs CUDA; on CPU use ``bf16-mixed``. Checkpoints go through
    :class:`AtomicCheckpointIO`. ``use_distributed_sampler=False`` is for models whose loaders
    shard the data per rank themselves (``ModelBase.SHARDS_ITS_OWN_DATA``).
    """
    import pytorch_lightning as pl

    tc = cfg if isinstance(cfg, TrainerConfig) else parse_trainer_config(cfg)
    accelerator = tc.accelerator
    if tc.precision == "16-mixed" and (
        accelerator == "cpu" or (accelerator == "auto" and not _cuda_available())
    ):
        raise ConfigError(
            "trainer.precision=16-mixed needs a CUDA GPU; on CPU use trainer.precision=bf16-mixed "
            "(or 32)."
        )
    kwargs = asdict(tc)
    for key in ("ddp_timeout_s", "ddp_find_unused_parameters"):
        kwargs.pop(key)
    kwargs["strategy"] = _strategy(tc)
    kwargs = {k: v for k, v in kwargs.items() if v is not None or k in ("max_epochs",)}
    if tc.max_epochs is None and tc.max_steps == -1:
        kwargs["max_epochs"] = 1000  # Lightning's default; say it rather than warn about it
    return pl.Trainer(
        **kwargs,
        callbacks=callbacks or [],
        logger=logger,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(default_root_dir) if default_root_dir else None,
        use_distributed_sampler=use_distributed_sampler,
    )


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename onto ``path``."""
    import torch

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """A Lightning CheckpointIO whose writes are atomic: a crash never leaves half a checkpoint."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        atomic_torch_save(checkpoint, path)
