"""What a model hands to an export target: a plain module, its ports and inputs to verify with.

Export targets (``convai_register_export_targets``, implemented by convai-export) never look inside
a model class: they ask it for an :class:`ExportSpec` through :meth:`ModelBase.export_spec
<convai_core.models.base.ModelBase.export_spec>`. The spec's ``module`` is a plain
``torch.nn.Module`` (no Lightning, no trainer) whose ``forward`` takes the tensor input ports
positionally and returns the output ports in order; input names and dynamic axes of the exported
graph come from the ports (:func:`convai_core.types.export_input_names`,
:func:`convai_core.types.dynamic_axes`).

This module imports no torch; the module and tensors it carries come from the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ExportSpec", "InputKind", "generic_spec", "item_lengths"]

#: ``"random"``: random values of the right type; ``"real"``: data of the domain (real speech).
InputKind = str


@dataclass
class ExportSpec:
    """Everything an export target needs from a model.

    Attributes:
        name: a short name for file names and serving configs (e.g. ``"asr_ctc"``).
        module: the ``torch.nn.Module`` to export, in eval mode; ``forward(*inputs)`` returns a
            tuple in the order of ``output_ports``.
        input_ports: neural types of ``forward``'s inputs, in order.
        output_ports: neural types of its outputs, in order.
        make_inputs: ``make_inputs(batch_size, length, kind)`` builds one input tuple, ``length``
            counted on the time axis of the first input (samples for audio, frames for features),
            ``kind`` ``"random"`` or ``"real"``. Items of a batch get different valid lengths.
        verify_lengths: the two time lengths (in the first input's units) that exports are
            verified on, e.g. 1 s and 7 s of samples.
        dim_bounds: ``{axis export name: (min, max)}`` for dynamic axes (``"time"``...).
        metadata: what inference needs beside the graph (vocabulary, sample rate, feature
            settings...), written next to exports as JSON; plain JSON values only.
        tolerance: default maximum absolute difference between an export and the eager module.
        integer_outputs: output ports that must match exactly (lengths, ids).
        artifacts: ``{file name: path}`` of files inference needs (a tokenizer model...).
        input_kinds: the kinds ``make_inputs`` can build; exports are verified on each.
        arrays: ``{name: tensor}`` a runtime needs when a step is not inside the graph (a mel
            filterbank...), saved as ``<name>.npy``.
    """

    name: str
    module: Any
    input_ports: Mapping[str, Any]
    output_ports: Mapping[str, Any]
    make_inputs: Callable[[int, int, InputKind], tuple[Any, ...]]
    verify_lengths: Sequence[int]
    dim_bounds: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    tolerance: float = 1e-3
    integer_outputs: Sequence[str] = ()
    artifacts: Mapping[str, Any] = field(default_factory=dict)
    arrays: Mapping[str, Any] = field(default_factory=dict)
    input_kinds: Sequence[InputKind] = ("real", "random")


def item_lengths(batch: int, length: int) -> list[int]:
    """Different valid lengths per batch item: the full length, then 80%, 60%... (at least 1)."""
    return [max(1, length - (i * length) // 5) for i in range(batch)]


def generic_spec(model: Any) -> ExportSpec:
    """The spec of a model from its declared ports alone: its ``forward`` exported as is, checked
    on random inputs shaped by the ports (batch and time axes varied, other axes at their fixed
    size or 8; ``Lengths`` ports get the items' lengths, other ``int`` ports small ids).

    Raises:
        ExportError: the model declares no tensor input port.
    """
    import torch

    from convai_core.errors import ExportError
    from convai_core.types import AxisKind, export_input_names

    ports = dict(model.input_ports)
    names = export_input_names(ports)
    if not names:
        raise ExportError(
            f"{type(model).__name__} declares no tensor input ports, so there is nothing to "
            "export; declare input_ports / output_ports or override export_spec()."
        )
    timed = {AxisKind.TIME, AxisKind.TOKEN}
    has_time = any(axis.kind in timed for name in names for axis in (ports[name].axes or ()))

    class _Forward(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: Any) -> Any:
            return self.inner(*inputs)

    def make_inputs(batch: int, length: int, kind: str) -> tuple[Any, ...]:
        if kind != "random":
            raise ValueError(f"{type(model).__name__} has only random export inputs, not {kind!r}")
        generator = torch.Generator().manual_seed(1000 * batch + length)
        lengths = item_lengths(batch, length)
        tensors = []
        for name in names:
            ntype = ports[name]
            if ntype.axes is None:
                raise ExportError(f"input port {name!r} has no declared axes; cannot shape it")
            shape = []
            for axis in ntype.axes:
                if axis.kind is AxisKind.BATCH:
                    shape.append(batch)
                elif axis.kind in timed:
                    shape.append(length)
                else:
                    shape.append(int(axis.size) if axis.size is not None else 8)
            element = type(ntype.element).__name__
            if element == "Lengths":
                tensors.append(torch.tensor(lengths, dtype=torch.int64).reshape(shape))
            elif ntype.element.dtype_family == "int":
                tensors.append(torch.randint(0, 2, shape, generator=generator))
            else:
                tensors.append(torch.randn(shape, generator=generator))
        return tuple(tensors)

    model.eval()
    return ExportSpec(
        name=str(model.cfg.get("name", type(model).__name__)).replace("/", "_"),
        module=_Forward(model).eval(),
        input_ports=ports,
        output_ports=dict(model.output_ports),
        make_inputs=make_inputs,
        verify_lengths=[16, 64] if has_time else [1],
        dim_bounds={"batch": (1, 1 << 16), "time": (2, 1 << 20), "token": (2, 1 << 20)},
        input_kinds=("random",),
        integer_outputs=tuple(
            name for name, t in model.output_ports.items() if t.element.dtype_family == "int"
        ),
    )
