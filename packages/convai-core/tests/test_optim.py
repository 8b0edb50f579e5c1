"""Learning-rate schedules: warmup, cosine, linear, Noam, and config validation."""

from __future__ import annotations

import math

import pytest

from convai_core.errors import ConfigError
from convai_core.optim import (
    SchedConfig,
    build_optimizer,
    build_scheduler,
    lr_factor_fn,
    parse_optim_config,
)


def test_cosine_warms_up_then_decays_to_min_lr() -> None:
    f = lr_factor_fn(SchedConfig(name="cosine", warmup_steps=10, min_lr=1e-4), 1e-3, 110)
    warm = [f(s) for s in range(10)]
    assert warm == sorted(warm) and math.isclose(warm[-1], 1.0)
    assert math.isclose(f(10), 1.0)
    assert math.isclose(f(60), 0.1 + 0.9 * 0.5, rel_tol=1e-6)  # halfway through the decay
    assert math.isclose(f(110), 0.1) and math.isclose(f(500), 0.1)
    decay = [f(s) for s in range(10, 111)]
    assert decay == sorted(decay, reverse=True)


def test_linear_and_warmup_ratio() -> None:
    f = lr_factor_fn(SchedConfig(name="linear", warmup_ratio=0.1), 1.0, 100)
    assert math.isclose(f(9), 1.0) and math.isclose(f(55), 0.5) and math.isclose(f(100), 0.0)


def test_noam_peaks_at_warmup_and_decays_as_inverse_sqrt() -> None:
    f = lr_factor_fn(SchedConfig(name="noam", warmup_steps=100), 1.0, None)
    values = [f(s) for s in range(400)]
    assert max(range(400), key=values.__getitem__) == 99
    assert math.isclose(values[99], 1.0)
    assert math.isclose(values[399] / values[99], math.sqrt(100 / 400), rel_tol=1e-6)
    paper = lr_factor_fn(SchedConfig(name="noam", warmup_steps=100, d_model=256), 1.0, None)
    assert math.isclose(paper(99), 256**-0.5 * 100**-0.5, rel_tol=1e-6)


def test_schedules_that_need_a_length_say_so() -> None:
    with pytest.raises(ConfigError, match="total number of steps"):
        lr_factor_fn(SchedConfig(name="cosine"), 1.0, None)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"name": "adamm"}, "adamw"),
        ({"lr": 1e-3, "sched": {"name": "cosinee"}}, "cosine"),
        (
            {"lr": 1e-3, "sched": {"warmup_step": 3}},
            r"Did you mean model\.optim\.sched\.warmup_steps",
        ),
        ({"weight_decai": 0.1}, r"model\.optim\.weight_decai"),
    ],
)
def test_config_typos_are_named(cfg, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_optim_config(cfg)


def test_lr_scale_puts_named_parts_in_their_own_groups() -> None:
    import torch

    model = torch.nn.ModuleDict(
        {"encoder": torch.nn.Linear(3, 3), "decoder": torch.nn.Linear(3, 2)}
    )
    model["encoder"].bias.requires_grad_(False)
    cfg = parse_optim_config({"name": "adamw", "lr": 1e-3, "lr_scale": {"decoder": 10}})
    optimizer = build_optimizer(model.named_parameters(), cfg)
    groups = {round(g["lr"], 6): g["params"] for g in optimizer.param_groups}
    assert set(groups) == {0.001, 0.01}
    assert groups[0.01] == [model["decoder"].weight, model["decoder"].bias]
    assert groups[0.001] == [model["encoder"].weight]  # frozen bias left out
    # the schedule scales every group by the same factor
    cfg = parse_optim_config(
        {
            "name": "adamw",
            "lr": 1e-3,
            "lr_scale": {"decoder": 10},
            "sched": {"name": "cosine", "warmup_steps": 10, "total_steps": 100},
        }
    )
    optimizer = build_optimizer(model.named_parameters(), cfg)
    scheduler = build_scheduler(optimizer, cfg, None)
    assert scheduler is not None
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    lrs = [g["lr"] for g in optimizer.param_groups]
    assert abs(lrs[1] / lrs[0] - 10) < 1e-9 or abs(lrs[0] / lrs[1] - 10) < 1e-9
    with pytest.raises(
        ConfigError, match=r"lr_scale\.head: .*top-level parts are decoder, encoder"
    ):
        build_optimizer(
            model.named_parameters(),
            parse_optim_config({"name": "adamw", "lr": 1e-3, "lr_scale": {"head": 10}}),
        )
