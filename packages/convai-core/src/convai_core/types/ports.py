"""Neural types of ports, and checks that connected ports agree.

A module declares ``input_ports`` and ``output_ports``: ordered mappings from a port name to a
:class:`NeuralType` (axes + element). :func:`connect` matches the outputs of a producer with the
inputs of a consumer and raises :class:`~convai_core.errors.NeuralTypeError` naming both ends
when they disagree. :func:`export_input_names` and :func:`dynamic_axes` turn ports into the
arguments of an ONNX / TorchScript export.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from convai_core.errors import NeuralTypeError
from convai_core.types.axes import Axis, AxisKind, compare_axes, format_shape
from convai_core.types.elements import ElementType, conversion_hint

__all__ = [
    "DYNAMIC_KINDS",
    "NeuralType",
    "Ports",
    "Typed",
    "check_chain",
    "connect",
    "dynamic_axes",
    "export_input_names",
]


@dataclass(frozen=True)
class NeuralType:
    """The type of one port: the meaning of each axis and of the values.

    Args:
        axes: one :class:`Axis` per tensor dimension, or ``None`` for any shape. A list is
            converted to a tuple; ``()`` is a scalar.
        element: what the values mean (an :class:`ElementType` *instance*).
        optional: whether the port may be left unconnected / receive ``None``.

    Raises:
        NeuralTypeError: an axis is not an :class:`Axis` or ``element`` is not an instance.

    Example:
        >>> from convai_core.types import B, T, AudioSignal, NeuralType
        >>> print(NeuralType((B, T), AudioSignal(sample_rate=16000)))
        (B, T) AudioSignal(sample_rate=16000)
    """

    axes: tuple[Axis, ...] | None
    element: ElementType
    optional: bool = False

    def __post_init__(self) -> None:
        if self.axes is not None:
            if isinstance(self.axes, Axis | str) or not isinstance(self.axes, Sequence):
                raise NeuralTypeError(
                    f"NeuralType axes must be a tuple of Axis (e.g. (B, T)) or None, got "
                    f"{self.axes!r}; write a one-axis shape as (B,)."
                )
            axes = tuple(self.axes)
            for position, axis in enumerate(axes):
                if not isinstance(axis, Axis):
                    raise NeuralTypeError(
                        f"NeuralType axis {position} must be an Axis, got {axis!r}; use the "
                        "constants B, T, C, MEL, TOKEN, CLASS, ANY from convai_core.types."
                    )
            object.__setattr__(self, "axes", axes)
        if isinstance(self.element, type) and issubclass(self.element, ElementType):
            raise NeuralTypeError(
                f"NeuralType element must be an instance, got the class {self.element.__name__}; "
                f"write {self.element.__name__}()."
            )
        if not isinstance(self.element, ElementType):
            raise NeuralTypeError(
                f"NeuralType element must be an ElementType instance, got {self.element!r}."
            )

    @property
    def shape_str(self) -> str:
        """The axes as printed: ``(B, MEL=80, T)``, ``()`` for a scalar, ``(...)`` for any."""
        return "(...)" if self.axes is None else format_shape(self.axes)

    def __str__(self) -> str:
        text = f"{self.shape_str} {self.element}"
        return f"{text}, optional" if self.optional else text

    def compare(self, producer: NeuralType) -> str | None:
        """Whether this (consumer) type accepts values of a ``producer`` type.

        Shapes agree when either side has ``axes=None``, or when both have the same rank and,
        at every position, the axis kinds match (``ANY`` matches all) and fixed sizes are equal
        (a dynamic size matches any). Elements are compared with
        :meth:`ElementType.is_compatible`.

        Args:
            producer: the type of the port that feeds this one.

        Returns:
            ``None`` when compatible, otherwise the reasons joined with ``"; "``.
        """
        problems = _problems(self, producer)
        return "; ".join(reason for reason, _ in problems) if problems else None


#: An ordered mapping from port name to its type (a plain ``dict`` keeps declaration order).
Ports = Mapping[str, NeuralType]


@runtime_checkable
class Typed(Protocol):
    """Anything that declares typed ports (modules, models, preprocessors...).

    ``input_ports`` lists the inputs in the order ``forward`` takes them, ``output_ports`` the
    outputs in the order ``forward`` returns them.
    """

    @property
    def input_ports(self) -> Mapping[str, NeuralType]: ...

    @property
    def output_ports(self) -> Mapping[str, NeuralType]: ...


def _problems(consumer: NeuralType, producer: NeuralType) -> list[tuple[str, str | None]]:
    """Every (reason, hint) for which ``consumer`` rejects ``producer``."""
    problems: list[tuple[str, str | None]] = []
    if consumer.axes is not None and producer.axes is not None:
        problems.extend(compare_axes(consumer.axes, producer.axes))
    reason = consumer.element.is_compatible(producer.element)
    if reason is not None:
        problems.append((reason, conversion_hint(consumer.element, producer.element)))
    return problems


def _ports_of(obj: object, attribute: str, name: str) -> Mapping[str, NeuralType]:
    ports = getattr(obj, attribute, None)
    if not isinstance(ports, Mapping):
        raise NeuralTypeError(
            f"{name} has no {attribute} mapping (got {ports!r}); give it input_ports and "
            "output_ports properties that return {port_name: NeuralType} dicts."
        )
    for port_name, ntype in ports.items():
        if not isinstance(ntype, NeuralType):
            raise NeuralTypeError(
                f"{name}.{attribute}[{port_name!r}] must be a NeuralType, got {ntype!r}."
            )
    return ports


def _listing(ports: Mapping[str, NeuralType]) -> str:
    return ", ".join(f"{name!r} {ntype}" for name, ntype in ports.items()) or "none"


def _unknown_port(kind: str, owner: str, port: str, ports: Mapping[str, NeuralType]) -> str:
    close = difflib.get_close_matches(port, list(ports), n=1)
    suggestion = f"; did you mean {close[0]!r}?" if close else "; fix the mapping."
    return (
        f"mapping names {kind} {port!r} but {owner} has no such {kind} "
        f"(has: {_listing(ports)}){suggestion}"
    )


def connect(
    producer: Typed,
    consumer: Typed,
    *,
    mapping: dict[str, str] | None = None,
    producer_name: str | None = None,
    consumer_name: str | None = None,
) -> dict[str, str]:
    """Check that ``producer``'s outputs can feed ``consumer``'s inputs.

    Outputs named in ``mapping`` feed the input they map to; every other consumer input is fed
    by the producer output of the same name, if there is one. Every required consumer input must
    be fed; optional inputs may stay unconnected; unused producer outputs are fine.

    Args:
        producer: declares ``output_ports``.
        consumer: declares ``input_ports``.
        mapping: explicit ``{output_name: input_name}`` links.
        producer_name: name used in messages (default: the producer's class name).
        consumer_name: name used in messages (default: the consumer's class name).

    Returns:
        The links made, ``{output_name: input_name}``, in the consumer's input order.

    Raises:
        NeuralTypeError: a mapping names an unknown port, two outputs feed one input, a required
            input is not fed, or a linked pair disagrees. The message names both ends, every
            problem found, and a hint for each.
    """
    p_name = producer_name or type(producer).__name__
    c_name = consumer_name or type(consumer).__name__
    outputs = _ports_of(producer, "output_ports", p_name)
    inputs = _ports_of(consumer, "input_ports", c_name)
    mapping = dict(mapping or {})

    fed_by: dict[str, str] = {}  # input -> output
    for out_name, in_name in mapping.items():
        for kind, owner, port, ports in (
            ("output", p_name, out_name, outputs),
            ("input", c_name, in_name, inputs),
        ):
            if port not in ports:
                message = _unknown_port(kind, owner, port, ports)
                raise NeuralTypeError(f"{p_name} -> {c_name}: {message}")
        if in_name in fed_by:
            raise NeuralTypeError(
                f"{p_name} -> {c_name}: outputs {fed_by[in_name]!r} and {out_name!r} both map to "
                f"input {in_name!r}; an input takes exactly one output, remove one of them."
            )
        fed_by[in_name] = out_name
    for in_name in inputs:
        if in_name not in fed_by and in_name in outputs and in_name not in mapping:
            fed_by[in_name] = in_name

    errors: list[str] = []
    used_outputs = set(fed_by.values())
    for in_name, in_type in inputs.items():
        c_end = f"{c_name}.input {in_name!r} {in_type}"
        if in_name not in fed_by:
            if in_type.optional:
                continue
            candidates = (
                out
                for out, out_type in outputs.items()
                if out not in used_outputs and in_type.compare(out_type) is None
            )
            candidate = next(candidates, None)
            hint = (
                f"pass mapping={{{candidate!r}: {in_name!r}}}"
                if candidate
                else f"add an output named {in_name!r} to {p_name}, feed it from an earlier "
                "stage, or declare the input with optional=True"
            )
            errors.append(
                f"{c_end} is required but no output of {p_name} feeds it "
                f"(outputs: {_listing(outputs)}). Hint: {hint}"
            )
            continue
        out_name = fed_by[in_name]
        problems = _problems(in_type, outputs[out_name])
        if problems:
            reasons = "; ".join(reason for reason, _ in problems)
            hints = "; ".join(hint for _, hint in problems if hint)
            errors.append(
                f"{p_name}.output {out_name!r} {outputs[out_name]} cannot feed {c_end}: {reasons}"
                + (f". Hint: {hints}" if hints else "")
            )
    if len(errors) == 1:
        raise NeuralTypeError(errors[0])
    if errors:
        lines = "\n".join(f"  - {error}" for error in errors)
        raise NeuralTypeError(f"{p_name} cannot feed {c_name} ({len(errors)} problems):\n{lines}")
    return {fed_by[in_name]: in_name for in_name in inputs if in_name in fed_by}


def check_chain(
    stages: Sequence[Typed | tuple[str, Typed]],
    *,
    mappings: Sequence[dict[str, str] | None] | None = None,
) -> list[dict[str, str]]:
    """Check a pipeline: every stage's outputs must feed the next stage's inputs.

    Args:
        stages: the modules in order, each a :class:`Typed` object or a ``(name, object)`` pair.
        mappings: one ``{output: input}`` mapping (or ``None``) per link, i.e.
            ``len(stages) - 1`` of them; default: link by port name everywhere.

    Returns:
        The links of each step, as returned by :func:`connect`.

    Raises:
        NeuralTypeError: ``mappings`` has the wrong length, or a link fails; the message starts
            with the positions and names of both stages.
    """
    named = [
        stage if isinstance(stage, tuple) else (type(stage).__name__, stage) for stage in stages
    ]
    links = max(len(named) - 1, 0)
    if mappings is None:
        mappings = [None] * links
    if len(mappings) != links:
        raise NeuralTypeError(
            f"check_chain got {len(named)} stages but {len(mappings)} mappings; pass one mapping "
            f"(or None) per link, i.e. {links}."
        )
    results: list[dict[str, str]] = []
    for index, mapping in enumerate(mappings):
        (p_name, producer), (c_name, consumer) = named[index], named[index + 1]
        try:
            results.append(
                connect(
                    producer,
                    consumer,
                    mapping=mapping,
                    producer_name=p_name,
                    consumer_name=c_name,
                )
            )
        except NeuralTypeError as error:
            raise NeuralTypeError(
                f"pipeline stage {index} ({p_name}) -> stage {index + 1} ({c_name}): {error}"
            ) from error
    return results


# -- export helpers ----------------------------------------------------------------------------

#: Axis kinds that :func:`dynamic_axes` marks dynamic by default (when their size is None).
#: Channel, mel and class axes are fixed by the weights even when a type leaves them open.
DYNAMIC_KINDS: frozenset[AxisKind] = frozenset({AxisKind.BATCH, AxisKind.TIME, AxisKind.TOKEN})


def export_input_names(ports: Mapping[str, NeuralType]) -> list[str]:
    """The names of the tensor ports (every port but :class:`~.elements.Text`), in order.

    Args:
        ports: e.g. a module's ``input_ports``.

    Returns:
        Port names in declaration order, for ``torch.onnx.export(input_names=...)``.
    """
    return [name for name, ntype in ports.items() if ntype.element.is_tensor]


def dynamic_axes(
    ports: Mapping[str, NeuralType],
    *,
    kinds: frozenset[AxisKind] | set[AxisKind] = DYNAMIC_KINDS,
) -> dict[str, dict[int, str]]:
    """The dynamic axes of each tensor port, for ``torch.onnx.export(dynamic_axes=...)``.

    An axis is dynamic when its size is ``None`` and its kind is in ``kinds``. Its name is the
    axis ``name`` if given, else the kind's export name (``"batch"``, ``"time"``, ``"token"``,
    ``"mel"``...); a name repeated within one port gets a suffix (``"time_2"``). Ports of
    :class:`~.elements.Text`, ports with ``axes=None`` and ports without a dynamic axis are left
    out.

    Args:
        ports: e.g. a module's ``input_ports`` or ``output_ports``.
        kinds: which axis kinds may be dynamic (default :data:`DYNAMIC_KINDS`).

    Returns:
        ``{port_name: {axis_index: axis_name}}``.
    """
    result: dict[str, dict[int, str]] = {}
    for port, ntype in ports.items():
        if not ntype.element.is_tensor or ntype.axes is None:
            continue
        names: dict[int, str] = {}
        for index, axis in enumerate(ntype.axes):
            if axis.size is not None or axis.kind not in kinds:
                continue
            base = axis.name or axis.kind.export_name
            name, count = base, 1
            while name in names.values():
                count += 1
                name = f"{base}_{count}"
            names[index] = name
        if names:
            result[port] = names
    return result
