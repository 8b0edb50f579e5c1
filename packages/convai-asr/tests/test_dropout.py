"""The packed-bits dropout: drop rate, scaling, gradient, seeding, edge cases."""

from __future__ import annotations

import pytest
import torch

from convai_asr.modules.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_drop_rate_scale_and_gradient(p: float) -> None:
    torch.manual_seed(0)
    x = torch.ones(400, 1001, requires_grad=True)  # an odd count: the last word is cut
    y = dropout(x, p)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 4e-3, dropped  # 400k draws: sd about 1e-3 at p = 0.5
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)))
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() / (1 - p))  # type: ignore[arg-type]
    # the positions are independent of each other: neighbours agree as often as chance says
    flat = (y != 0).flatten().float()
    same = (flat[1:] == flat[:-1]).float().mean().item()
    assert abs(same - ((1 - p) ** 2 + p**2)) < 6e-3, same


def test_seeded_eval_and_edge_cases() -> None:
    x = torch.randn(3, 50)
    torch.manual_seed(7)
    first = dropout(x, 0.3)
    torch.manual_seed(7)
    assert torch.equal(first, dropout(x, 0.3))
    assert dropout(x, 0.3, training=False) is x and dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        dropout(x, 1.5)
    module = Dropout(0.2)
    assert torch.equal(module.eval()(x), x)
    assert (module.train()(torch.ones(1000)) == 0).any()
    assert module.state_dict() == {} and "p=0.2" in repr(module)
