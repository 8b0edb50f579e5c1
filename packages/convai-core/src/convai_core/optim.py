"""Optimizers and learning-rate schedules built from a model's ``optim`` config.

Config shape (all keys optional except ``name`` and ``lr``)::

    optim:
      name: adamw            # adamw | adam | sgd | novograd-free alternatives: see OPTIMIZERS
      lr: 1e-3
      weight_decay: 0.0
      betas: [0.9, 0.98]
      fused: false           # adam/adamw: PyTorch's fused kernel (much faster steps on CPU too)
      lr_scale: {}           # parameter-name prefix -> multiplier of lr, e.g. {decoder: 10}
                             # (a new head learns fast, a pretrained encoder slowly); the
                             # longest matching prefix wins
      sched:
        name: cosine         # cosine | noam | warmup_constant | linear | none
        warmup_steps: 100    # or warmup_ratio: 0.05 (of the total steps)
        min_lr: 1e-5
        total_steps: null    # default: the trainer's estimated stepping batches
        d_model: null        # noam only: scale by d_model ** -0.5 as in the Transformer paper

The schedules are step-based: the scheduler is stepped after every optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from convai_core.config_utils import from_mapping
from convai_core.errors import ConfigError

if TYPE_CHECKING:
    import torch

OPTIMIZERS = ("adamw", "adam", "sgd", "rmsprop")
SCHEDULES = ("cosine", "noam", "warmup_constant", "linear", "none")


@dataclass
class SchedConfig:
    name: str = "none"
    warmup_steps: int | None = None
    warmup_ratio: float | None = None
    min_lr: float = 0.0
    total_steps: int | None = None
    d_model: int | None = None


@dataclass
class OptimConfig:
    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: list[float] | None = None
    momentum: float = 0.0
    eps: float = 1e-8
    fused: bool = False
    lr_scale: dict[str, float] = field(default_factory=dict)
    sched: SchedConfig = field(default_factory=SchedConfig)


def parse_optim_config(cfg: Mapping[str, Any] | None) -> OptimConfig:
    """Validate an ``optim`` config section (unknown keys and names raise ConfigError)."""
    parsed = from_mapping(OptimConfig, "model.optim", cfg)
    if isinstance(parsed.sched, Mapping) or parsed.sched is None:
        parsed.sched = from_mapping(SchedConfig, "model.optim.sched", parsed.sched)
    if parsed.name not in OPTIMIZERS:
        raise ConfigError(
            f"model.optim.name={parsed.name!r} is not supported; use one of {', '.join(OPTIMIZERS)}"
        )
    if parsed.sched.name not in SCHEDULES:
        raise ConfigError(
            f"model.optim.sched.name={parsed.sched.name!r} is not supported; use one of "
            f"{', '.join(SCHEDULES)}"
        )
    return parsed


def _param_groups(
    params: Iterable[torch.nn.Parameter] | Iterable[tuple[str, torch.nn.Parameter]],
    cfg: OptimConfig,
) -> list[Any]:
    """Trainable parameters, in groups by ``cfg.lr_scale`` when it is set (needs names)."""
    items: list[Any] = list(params)
    named = [item for item in items if isinstance(item, tuple)]
    if not cfg.lr_scale:
        plain = [item[1] if isinstance(item, tuple) else item for item in items]
        return [param for param in plain if param.requires_grad]
    if len(named) != len(items):
        raise ConfigError("model.optim.lr_scale needs named parameters (model.named_parameters())")
    prefixes = sorted(cfg.lr_scale, key=len, reverse=True)
    groups: dict[float, list[Any]] = {}
    used: set[str] = set()
    for name, param in named:
        if not param.requires_grad:
            continue
        match = next((p for p in prefixes if name == p or name.startswith(p + ".")), None)
        scale = 1.0 if match is None else float(cfg.lr_scale[match])
        if match is not None:
            used.add(match)
        groups.setdefault(scale, []).append(param)
    unused = [p for p in cfg.lr_scale if p not in used]
    if unused:
        tops = sorted({name.split(".", 1)[0] for name, _ in named})
        raise ConfigError(
            f"model.optim.lr_scale.{unused[0]}: no trainable parameter is named {unused[0]}.*; "
            f"the model's top-level parts are {', '.join(tops)}."
        )
    return [{"params": ps, "lr": cfg.lr * scale} for scale, ps in groups.items()]


def build_optimizer(
    params: Iterable[torch.nn.Parameter] | Iterable[tuple[str, torch.nn.Parameter]],
    cfg: OptimConfig,
) -> torch.optim.Optimizer:
    """Create the optimizer named by ``cfg.name`` (``named_parameters()`` for ``lr_scale``)."""
    import torch

    params = _param_groups(params, cfg)
    if cfg.name in ("adamw", "adam"):
        cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
        betas = (float(cfg.betas[0]), float(cfg.betas[1])) if cfg.betas else (0.9, 0.999)
        return cls(
            params,
            lr=cfg.lr,
            betas=betas,
            eps=cfg.eps,
            weight_decay=cfg.weight_decay,
            fused=True if cfg.fused else None,
        )
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.RMSprop(
        params, lr=cfg.lr, momentum=cfg.momentum, eps=cfg.eps, weight_decay=cfg.weight_decay
    )


def lr_factor_fn(
    sched: SchedConfig, base_lr: float, total_steps: int | None
) -> Callable[[int], float]:
    """Return ``step -> multiplier of base_lr`` for the schedule (step counts from 0).

    Shapes: scalar in, scalar out.
    """
    warmup = sched.warmup_steps
    if warmup is None and sched.warmup_ratio is not None:
        if not total_steps:
            raise ConfigError("model.optim.sched.warmup_ratio needs a known number of total steps")
        warmup = int(sched.warmup_ratio * total_steps)
    warmup = max(int(warmup or 0), 0)
    min_factor = sched.min_lr / base_lr if base_lr > 0 else 0.0

    def warm(step: int) -> float:
        return (step + 1) / warmup if warmup and step < warmup else 1.0

    if sched.name == "none":
        return lambda step: 1.0
    if sched.name == "warmup_constant":
        return warm
    if sched.name == "noam":
        w = max(warmup, 1)
        scale = sched.d_model**-0.5 if sched.d_model else w**0.5

        def noam(step: int) -> float:
            s = step + 1
            return max(scale * min(s**-0.5, s * w**-1.5), min_factor)

        return noam
    if not total_steps or total_steps <= 0:
        raise ConfigError(
            f"model.optim.sched.name={sched.name} needs the total number of steps: set "
            f"trainer.max_steps, or model.optim.sched.total_steps"
        )
    decay_steps = max(total_steps - warmup, 1)

    def decayed(step: int) -> float:
        if warmup and step < warmup:
            return warm(step)
        progress = min((step - warmup) / decay_steps, 1.0)
        if sched.name == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:  # linear
            shape = 1.0 - progress
        return min_factor + (1.0 - min_factor) * shape

    return decayed


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int | None
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """Create a step-wise LambdaLR for ``cfg.sched`` (None when the schedule is ``none``)."""
    import torch

    sched = cfg.sched
    if sched.name == "none":
        return None
    total = sched.total_steps or total_steps
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor_fn(sched, cfg.lr, total))
