"""Axes of a neural type: what each dimension of a tensor means.

An :class:`Axis` pairs an :class:`AxisKind` (batch, time, mel bins...) with an optional fixed size.
``size=None`` means the axis is dynamic (its length changes from call to call). The short
constants below spell the usual layouts the way the docstrings of convai do::

    (B, T)           # a batch of waveforms
    (B, MEL, T)      # a batch of mel spectrograms
    (B, TOKEN)       # a batch of token ids
    (B, T, CLASS)    # per-frame class scores

Legend: ``B`` batch, ``T`` time frames or samples, ``C``/``D`` channels or features, ``MEL``
frequency bins, ``TOKEN`` token positions, ``CLASS`` classes or vocabulary, ``ANY`` (printed ``*``)
anything.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from convai_core.errors import NeuralTypeError

__all__ = [
    "ANY",
    "CLASS",
    "MEL",
    "TOKEN",
    "Axis",
    "AxisKind",
    "B",
    "C",
    "D",
    "T",
    "compare_axes",
    "format_shape",
]


class AxisKind(enum.Enum):
    """What a tensor dimension means.

    ``DIMENSION`` is an alias of ``CHANNEL`` (feature dimensions): ``AxisKind.DIMENSION is
    AxisKind.CHANNEL``. ``ANY`` matches every kind, on either end of a connection.
    """

    BATCH = "batch"
    TIME = "time"
    CHANNEL = "channel"
    DIMENSION = "channel"  # alias: feature dimensions
    MEL = "mel"
    TOKEN = "token"
    CLASS = "class"
    ANY = "any"

    @property
    def label(self) -> str:
        """The short label used when printing a shape: ``B``, ``T``, ``C``, ``MEL``..."""
        return _LABELS[self]

    @property
    def export_name(self) -> str:
        """The lower-case name used for dynamic axes at export: ``batch``, ``time``..."""
        return self.value


_LABELS: dict[AxisKind, str] = {
    AxisKind.BATCH: "B",
    AxisKind.TIME: "T",
    AxisKind.CHANNEL: "C",
    AxisKind.MEL: "MEL",
    AxisKind.TOKEN: "TOKEN",
    AxisKind.CLASS: "CLASS",
    AxisKind.ANY: "*",
}


@dataclass(frozen=True)
class Axis:
    """One dimension of a neural type.

    Args:
        kind: what the dimension means.
        size: its fixed length, or ``None`` for a dynamic axis (any length).
        name: an optional label; it replaces the kind's label when printing and is the name of
            the axis in exported graphs. It plays no part in compatibility.

    Raises:
        NeuralTypeError: ``kind`` is not an :class:`AxisKind` or ``size`` is not a positive int.
    """

    kind: AxisKind
    size: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, AxisKind):
            raise NeuralTypeError(
                f"Axis kind must be an AxisKind, got {self.kind!r}; use e.g. Axis(AxisKind.TIME) "
                "or one of the constants B, T, C, MEL, TOKEN, CLASS, ANY from convai_core.types."
            )
        if self.size is not None and (
            isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1
        ):
            raise NeuralTypeError(
                f"Axis({self.kind.name}) size must be a positive int or None (dynamic), got "
                f"{self.size!r}."
            )
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise NeuralTypeError(
                f"Axis({self.kind.name}) name must be a non-empty str or None, got {self.name!r}."
            )

    @property
    def is_dynamic(self) -> bool:
        """True when the axis has no fixed size."""
        return self.size is None

    @property
    def label(self) -> str:
        """The printed label: the axis name if given, else the kind's short label."""
        return self.name or self.kind.label

    def sized(self, size: int | None) -> Axis:
        """Return a copy with a fixed ``size`` (``MEL.sized(80)``); ``None`` makes it dynamic."""
        return replace(self, size=size)

    def named(self, name: str | None) -> Axis:
        """Return a copy with another ``name`` (``T.named("frames")``)."""
        return replace(self, name=name)

    def accepts_kind(self, producer: Axis) -> bool:
        """Whether this (consumer) axis accepts the kind of a ``producer`` axis.

        Kinds must be equal unless either one is ``ANY``. Sizes are compared separately.
        """
        return (
            self.kind is producer.kind or self.kind is AxisKind.ANY or producer.kind is AxisKind.ANY
        )

    def __str__(self) -> str:
        return self.label if self.size is None else f"{self.label}={self.size}"


def _permutation_hint(consumer_axes: tuple[Axis, ...], producer_axes: tuple[Axis, ...]) -> str:
    """Suggest a permute when the producer axes are the consumer axes in another order."""
    consumer_kinds = [axis.kind for axis in consumer_axes]
    producer_kinds = [axis.kind for axis in producer_axes]
    if sorted(k.value for k in consumer_kinds) != sorted(k.value for k in producer_kinds):
        return (
            "the axes mean different things; insert a module that maps the producer's axes to "
            "the consumer's, or check that the right output feeds this input"
        )
    order: list[int] = []
    for kind in consumer_kinds:
        order.append(next(i for i, k in enumerate(producer_kinds) if k is kind and i not in order))
    shapes = f"{format_shape(producer_axes)} -> {format_shape(consumer_axes)}"
    return f"the axes are in another order; permute in between: x.permute{tuple(order)}  # {shapes}"


def format_shape(axes: tuple[Axis, ...]) -> str:
    """Print axes as a shape: ``(B, MEL=80, T)``; ``()`` for a scalar."""
    return "(" + ", ".join(str(axis) for axis in axes) + ")"


def compare_axes(c_axes: tuple[Axis, ...], p_axes: tuple[Axis, ...]) -> list[tuple[str, str]]:
    """Why consumer axes ``c_axes`` reject producer axes ``p_axes``.

    The ranks must be equal, the kinds equal at every position (``ANY`` matches every kind) and
    fixed sizes equal where both ends fix them.

    Args:
        c_axes: the axes the consumer declares.
        p_axes: the axes the producer declares.

    Returns:
        ``(reason, hint)`` pairs; empty when the axes are compatible.
    """
    if len(c_axes) != len(p_axes):
        reason = (
            f"rank differs: the producer has {len(p_axes)} axes {format_shape(p_axes)}, the "
            f"consumer expects {len(c_axes)} {format_shape(c_axes)}"
        )
        hint = (
            "check that the right output feeds this input (pass mapping={output: input}), or "
            "insert a module that reshapes, squeezes or unsqueezes in between"
        )
        return [(reason, hint)]
    pairs = list(enumerate(zip(c_axes, p_axes, strict=True)))
    wrong = [
        f"axis {i} is {p.kind.name} in the producer but {c.kind.name} in the consumer"
        for i, (c, p) in pairs
        if not c.accepts_kind(p)
    ]
    if wrong:
        return [(f"axis kinds differ: {', '.join(wrong)}", _permutation_hint(c_axes, p_axes))]
    return [
        (
            f"axis {i} ({c.kind.name}) has fixed size {p.size} in the producer but {c.size} in "
            "the consumer",
            f"configure both modules with the same {c.kind.value} size ({c.size} or {p.size})",
        )
        for i, (c, p) in pairs
        if c.size and p.size and c.size != p.size
    ]


#: Batch axis.
B = Axis(AxisKind.BATCH)
#: Time axis (audio samples or frames).
T = Axis(AxisKind.TIME)
#: Channel / feature axis.
C = Axis(AxisKind.CHANNEL)
#: Alias of :data:`C` (``AxisKind.DIMENSION is AxisKind.CHANNEL``).
D = C
#: Frequency-bin axis of a spectrogram.
MEL = Axis(AxisKind.MEL)
#: Token-position axis.
TOKEN = Axis(AxisKind.TOKEN)
#: Class / vocabulary axis.
CLASS = Axis(AxisKind.CLASS)
#: An axis of any kind.
ANY = Axis(AxisKind.ANY)
