"""The one switch that decides where CPU fast paths replace the plain operators.

Domain packages compute some things in a faster form on CPU than the plain PyTorch operator
(convai-asr: shift-and-add depthwise convolution, packed-bit dropout, strided relative-position
scores...). Every such site asks :func:`cpu_fast_path_applies` and nothing else, so the
conditions are the same everywhere and one environment variable turns all of them off:

=============================  =================================================================
``CONVAI_REFERENCE_PATHS=1``   every site runs the plain operators (read at each call;
                               ``1``/``true``/``yes``/``on``), e.g. to compare against or to
                               rule the fast paths out while debugging
=============================  =================================================================

A fast path applies only when the tensor is on CPU (on CUDA and other accelerators the fused
kernels are faster than the shortcuts), no graph is being captured (:func:`graph_capture`:
``torch.jit`` tracing or scripting, ``torch.compile`` / ``torch.export``, ONNX export, whose
graphs must hold the plain operators and must not freeze a branch taken on the example input),
the reference switch is off, and, for inference-only shortcuts (which would keep too much for
backward, or fold training-time statistics), autograd is off (``torch.no_grad()`` or
``torch.inference_mode()``).

:func:`reference_paths` forces the plain operators inside a ``with`` block (this thread or task
only); tests compare the two forms with it.

Importing this module does not import torch (``import convai_core`` does not import this
module either); torch is imported when a function is first called.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch

__all__ = [
    "REFERENCE_PATHS_ENV",
    "cpu_fast_path_applies",
    "graph_capture",
    "reference_paths",
    "reference_paths_forced",
]

#: Environment variable that, set to ``1``/``true``/``yes``/``on``, turns every fast path off.
REFERENCE_PATHS_ENV = "CONVAI_REFERENCE_PATHS"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})

# depth of nested reference_paths() blocks in the current thread / task
_FORCED: ContextVar[int] = ContextVar("convai_reference_paths", default=0)


@functools.lru_cache(maxsize=16)
def _parse_flag(raw: str) -> bool:
    """Whether the raw value of ``CONVAI_REFERENCE_PATHS`` turns the switch on (cached per
    value, so an unknown value is warned about once)."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value not in _FALSE:
        warnings.warn(
            f"{REFERENCE_PATHS_ENV}={raw!r} is not understood; use 1/true/yes/on or "
            "0/false/no/off. The CPU fast paths stay on.",
            stacklevel=4,
        )
    return False


def reference_paths_forced() -> bool:
    """True when ``CONVAI_REFERENCE_PATHS`` is on or a :func:`reference_paths` block is open."""
    return _FORCED.get() > 0 or _parse_flag(os.environ.get(REFERENCE_PATHS_ENV, ""))


@contextlib.contextmanager
def reference_paths() -> Iterator[None]:
    """Run the plain operators instead of every fast path inside the block (nestable; this
    thread or asyncio task only).

    Example::

        with reference_paths(), torch.inference_mode():
            reference = model(audio, lengths)
    """
    token = _FORCED.set(_FORCED.get() + 1)
    try:
        yield
    finally:
        _FORCED.reset(token)


def graph_capture() -> bool:
    """True while a graph is being recorded: ``torch.jit`` tracing or scripting,
    ``torch.compile`` or ``torch.export`` (dynamo, strict or not), or ``torch.onnx.export``.

    Captured graphs hold the plain operators (or an export-specific form of them), never a CPU
    fast path: a trace would freeze a branch taken on its example input (a batch grouping, a
    skipped mask), and runtimes optimize the plain operators better than unrolled shortcuts.
    """
    import torch

    # dynamo first: it folds these to constants, so it traces nothing further of this function
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return True
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return True
    return bool(torch.onnx.is_in_onnx_export())


def cpu_fast_path_applies(x: torch.Tensor, *, inference: bool) -> bool:
    """Whether the CPU fast path of an operation on ``x`` may replace the plain operator.

    True only when ``x`` is on CPU, no graph is being captured (:func:`graph_capture`), the
    reference switch is off (``CONVAI_REFERENCE_PATHS``, :func:`reference_paths`) and, with
    ``inference=True``, autograd is off. The cheap checks come first: on CUDA tensors the answer
    costs well under a microsecond.

    Args:
        x: the operation's input (only its device is read).
        inference: the fast path is valid only without autograd (it keeps too much for
            backward, or folds statistics that training updates). ``False`` for shortcuts
            that also serve training (e.g. dropout's random mask).

    Shapes:
        x: any.
    """
    import torch

    # dynamo first: it folds this to a constant and never traces the environment look-ups
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return False
    if x.device.type != "cpu":
        return False
    if inference and torch.is_grad_enabled():
        return False
    if reference_paths_forced():
        return False
    return not graph_capture()
