"""Run an export and the eager module on the same inputs and compare every output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from convai_core.errors import ExportError
from convai_core.export_spec import ExportSpec
from convai_export.report import Check

#: ``runner(inputs) -> outputs``: inputs as tensors, outputs as anything ``np.asarray`` takes.
Runner = Callable[[tuple[torch.Tensor, ...]], Sequence[Any]]

BATCHES = (1, 3)


def eager_outputs(spec: ExportSpec, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    with torch.no_grad():
        outputs = spec.module(*inputs)
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    return [o.detach().float().numpy() if o.is_floating_point() else o.numpy() for o in outputs]


def verify(
    spec: ExportSpec,
    runner: Runner,
    name: str,
    *,
    tolerance: float,
    shapes: Sequence[tuple[int, int]] | None = None,
) -> list[Check]:
    """Compare ``runner`` with the eager module on real and random inputs.

    Every (batch, length) of ``shapes`` (default: batch sizes 1 and 3 times the spec's two
    verification lengths) is run with each kind of input the spec makes (real and random). Float outputs must agree
    within ``tolerance`` (max absolute difference), the spec's integer outputs exactly.

    Raises:
        ExportError: a shape or value differs beyond tolerance (every comparison is listed).
    """
    if shapes is None:
        shapes = list(dict.fromkeys((b, n) for b in BATCHES for n in spec.verify_lengths))
    names = list(spec.output_ports)
    checks: list[Check] = []
    for kind in spec.input_kinds:
        for batch, length in shapes:
            inputs = spec.make_inputs(batch, length, kind)
            expected = eager_outputs(spec, inputs)
            try:
                got = [np.asarray(o) for o in runner(inputs)]
            except Exception as exc:  # the runtime rejected the input: report it as a failure
                raise ExportError(
                    f"{name} failed to run on {kind} input batch={batch} length={length}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if len(got) != len(expected):
                raise ExportError(
                    f"{name} returned {len(got)} outputs, the eager model {len(expected)}"
                )
            for port, ref, out in zip(names, expected, got, strict=True):
                exact = port in spec.integer_outputs
                if ref.shape != out.shape:
                    diff = float("inf")
                elif exact:
                    diff = float(np.abs(ref.astype(np.int64) - out.astype(np.int64)).max(initial=0))
                else:
                    delta = np.abs(ref.astype(np.float64) - out.astype(np.float64))
                    diff = float(np.nan_to_num(delta, nan=np.inf).max(initial=0.0))
                limit = 0.0 if exact else tolerance
                checks.append(
                    Check(name, kind, batch, length, port, diff, limit, bool(diff <= limit))
                )
    failed = [c for c in checks if not c.passed]
    if failed:
        lines = "\n".join(
            f"  {c.kind} batch={c.batch} length={c.length} {c.output}: max |diff| "
            f"{c.max_abs_diff:.3g} > {c.tolerance:.3g}"
            for c in failed
        )
        raise ExportError(
            f"{name} differs from the eager model on {len(failed)} of {len(checks)} "
            f"comparisons:\n{lines}\nNothing was written. Report the model config if this is "
            "not a deliberate approximation (raise tolerance=... only for fp16)."
        )
    return checks
