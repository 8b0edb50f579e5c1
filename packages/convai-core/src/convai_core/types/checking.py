"""Opt-in runtime checks of tensors against the ports that declare them.

Checking is off by default. Turn it on for a block with ``with typecheck(): ...``, for the rest
of the process with ``typecheck(True)``, or for a whole run with the environment variable
``CONVAI_TYPECHECK=1`` (read once, when this module is first imported). The switch is global to
the process, not per thread.

:func:`typed` wraps a module's ``forward``: when checking is on it checks the inputs against
``self.input_ports`` and the outputs against ``self.output_ports``; when it is off the wrapper
costs one boolean test per call. :func:`check_tensors` does the work and can be called directly.

Torch is imported inside the functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from convai_core.errors import NeuralTypeError
from convai_core.types.axes import AxisKind

if TYPE_CHECKING:
    from types import TracebackType

    from convai_core.types.ports import NeuralType

__all__ = ["ENV_VAR", "check_tensors", "is_typecheck_enabled", "typecheck", "typed"]

#: Environment variable that turns checking on at import (``1``/``true``/``yes``/``on``).
ENV_VAR = "CONVAI_TYPECHECK"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _read_env() -> bool:
    raw = os.environ.get(ENV_VAR, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value not in _FALSE:
        warnings.warn(
            f"{ENV_VAR}={raw!r} is not understood; use 1/true/yes/on or 0/false/no/off. "
            "Runtime type checking stays off.",
            stacklevel=2,
        )
    return False


_ENABLED: bool = _read_env()

_F = TypeVar("_F", bound=Callable[..., Any])


def is_typecheck_enabled() -> bool:
    """Whether :func:`typed` methods check their tensors right now."""
    return _ENABLED


class typecheck:  # lower-case like torch.set_grad_enabled: a switch, not a thing
    """Turn runtime type checking on or off.

    Calling it switches at once, so it works as a global switch (``typecheck(True)``) and as a
    context manager that restores the previous setting on exit::

        with typecheck():
            model(audio_signal=audio, length=length)   # checked
        with typecheck(False):
            model(audio_signal=audio, length=length)   # not checked, even with CONVAI_TYPECHECK=1

    Args:
        enabled: the new setting.
    """

    def __init__(self, enabled: bool = True) -> None:
        global _ENABLED
        self.enabled = bool(enabled)
        self._previous = _ENABLED
        _ENABLED = self.enabled

    def __enter__(self) -> typecheck:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        global _ENABLED
        _ENABLED = self._previous


def _family_error(dtype: Any, family: str) -> str | None:
    """A reason when ``dtype`` is not of ``family`` (``"int"`` or ``"float"``), else None."""
    if family == "float" and not dtype.is_floating_point:
        return f"needs a floating-point tensor but got dtype {dtype}; convert it with .float()"
    import torch

    if family == "int" and (dtype.is_floating_point or dtype.is_complex or dtype is torch.bool):
        return f"needs an integer tensor but got dtype {dtype}; convert it with .long()"
    return None


def _rank_hint(ntype: NeuralType, rank: int) -> str:
    assert ntype.axes is not None
    expected = len(ntype.axes)
    if rank == expected - 1 and ntype.axes and ntype.axes[0].kind is AxisKind.BATCH:
        return "add the batch axis with x.unsqueeze(0)"
    if rank == expected + 1:
        return "remove the extra axis (x.squeeze(dim)) or check that the right tensor is passed"
    return f"reshape it to {ntype.shape_str} or check that the right tensor is passed"


def check_tensors(ports: Mapping[str, NeuralType], values: Mapping[str, Any], where: str) -> None:
    """Check values against the ports that declare them.

    For each port: a required port must have a value (``None`` counts as missing); a tensor port
    needs a ``torch.Tensor`` whose rank equals the number of axes, whose fixed-size axes have that
    size and whose dtype is of the element's family (integer for ``Labels``/``TokenIds``/
    ``Lengths``, floating for audio, spectrograms, logits, log-probs, embeddings...); a ``Text``
    port needs a ``str`` or a list/tuple of them. Across ports, every ``BATCH`` axis (and the
    length of a batched text list) must have the same size.

    Args:
        ports: the declared ports, e.g. ``module.input_ports``.
        values: the values by port name; names that are not ports are an error.
        where: names the call in messages, e.g. ``"QuartzNetEncoder.forward input"``.

    Shapes:
        Whatever ``ports`` declares; ``axes=None`` skips the rank and size checks of a port.

    Raises:
        NeuralTypeError: naming ``where``, the port, its declared type and what differs.
    """
    import torch

    unknown = [name for name in values if name not in ports]
    if unknown:
        raise NeuralTypeError(
            f"{where}: got values for {unknown} which are not declared ports (declared: "
            f"{list(ports)}); declare them or stop passing them."
        )
    batch_sizes: list[tuple[str, int, int]] = []  # (port, axis index, size)
    for name, ntype in ports.items():
        value = values.get(name)
        port = f"{where}: port {name!r} {ntype}"
        if value is None:
            if ntype.optional:
                continue
            raise NeuralTypeError(
                f"{port} is required but got no value; pass {name}=... or declare the port "
                "with optional=True."
            )
        if not ntype.element.is_tensor:
            items_ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
            if not (isinstance(value, str) or items_ok):
                raise NeuralTypeError(
                    f"{port} needs a str or a list of str but got {type(value).__name__}."
                )
            if items_ok and ntype.axes and ntype.axes[0].kind is AxisKind.BATCH:
                batch_sizes.append((name, 0, len(value)))
            continue
        if not isinstance(value, torch.Tensor):
            raise NeuralTypeError(
                f"{port} needs a torch.Tensor but got {type(value).__name__}; convert it with "
                "torch.as_tensor(...)."
            )
        if ntype.axes is not None:
            if value.dim() != len(ntype.axes):
                raise NeuralTypeError(
                    f"{port} expects rank {len(ntype.axes)} but got a tensor of shape "
                    f"{tuple(value.shape)} (rank {value.dim()}); {_rank_hint(ntype, value.dim())}."
                )
            for index, axis in enumerate(ntype.axes):
                actual = int(value.shape[index])
                if axis.size is not None and actual != axis.size:
                    raise NeuralTypeError(
                        f"{port} expects axis {index} ({axis.kind.name}) of size {axis.size} but "
                        f"got shape {tuple(value.shape)}; configure the module that makes this "
                        "tensor with the same size."
                    )
                if axis.kind is AxisKind.BATCH:
                    batch_sizes.append((name, index, actual))
        family = type(ntype.element).dtype_family
        reason = _family_error(value.dtype, family) if family else None
        if reason:
            raise NeuralTypeError(f"{port} {reason}.")
    if len({size for _, _, size in batch_sizes}) > 1:
        listing = ", ".join(f"port {p!r} axis {i} has {s}" for p, i, s in batch_sizes)
        raise NeuralTypeError(
            f"{where}: batch sizes disagree: {listing}; every BATCH axis must have the same "
            "size (was one input sliced or padded without the others?)."
        )


def _ports(owner: object, attribute: str) -> Mapping[str, NeuralType]:
    ports = getattr(owner, attribute, None)
    if not isinstance(ports, Mapping):
        raise NeuralTypeError(
            f"{type(owner).__name__} uses @typed but has no {attribute} mapping (got {ports!r}); "
            "add input_ports/output_ports properties returning {name: NeuralType} dicts."
        )
    return ports


def _outputs_by_port(result: Any, ports: Mapping[str, NeuralType], where: str) -> dict[str, Any]:
    """Name the values ``forward`` returned: a dict, a tuple in port order, or one value."""
    names = list(ports)
    if isinstance(result, Mapping):
        return dict(result)
    if isinstance(result, tuple | list):
        if len(result) > len(names):
            raise NeuralTypeError(
                f"{where}: returned {len(result)} values but declares {len(names)} output "
                f"ports {names}; declare the missing ports or return fewer values."
            )
        return dict(zip(names, result, strict=False))
    return {names[0]: result}


def typed(fn: _F) -> _F:
    """Decorate a module's ``forward`` so that, when checking is on, its tensors are checked.

    Inputs (keyword or positional, bound to ``forward``'s signature; ``**kwargs`` are included)
    whose names are input ports are checked against ``self.input_ports``; other arguments are
    ignored. The result (one tensor, a tuple in output-port order, or a dict) is checked against
    ``self.output_ports``. When checking is off the call costs one extra boolean test.

    Args:
        fn: a method ``forward(self, ...)``.

    Returns:
        The wrapped method.

    Raises:
        NeuralTypeError: at call time, from :func:`check_tensors`, naming
            ``<Class>.<method> input`` or ``... output``.
    """
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _ENABLED:
            return fn(self, *args, **kwargs)
        return _checked_call(fn, signature, self, args, kwargs)

    return wrapper  # type: ignore[return-value]


def _checked_call(
    fn: Callable[..., Any],
    signature: inspect.Signature,
    owner: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    where = f"{type(owner).__name__}.{fn.__name__}"
    try:
        bound = signature.bind(owner, *args, **kwargs)
    except TypeError:
        return fn(owner, *args, **kwargs)  # let Python raise its own, clearer, TypeError
    arguments: dict[str, Any] = {}
    for index, (name, value) in enumerate(bound.arguments.items()):
        kind = signature.parameters[name].kind
        if index == 0:
            continue  # self
        if kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(value)
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            arguments[name] = value
    input_ports = _ports(owner, "input_ports")
    inputs = {name: value for name, value in arguments.items() if name in input_ports}
    check_tensors(input_ports, inputs, where=f"{where} input")
    result = fn(owner, *args, **kwargs)
    output_ports = _ports(owner, "output_ports")
    if output_ports:
        outputs = _outputs_by_port(result, output_ports, f"{where} output")
        check_tensors(output_ports, outputs, where=f"{where} output")
    return result
