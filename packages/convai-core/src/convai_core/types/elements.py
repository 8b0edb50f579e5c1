"""Element types: what the values held by a tensor (or a port) mean.

Every element type is a frozen dataclass. A consumer element accepts a producer element when the
producer's class is the consumer's class or a subclass of it (``TokenIds`` feeds ``Labels``, not the
other way round); the base :class:`ElementType` accepts anything. Subclasses with parameters (the
sample rate of :class:`AudioSignal`, ``n_mels`` of :class:`MelSpectrogram`) also require equal
values when both ends set them; ``None`` means "not declared" and matches any value.

Each class also says how a runtime check sees its values: ``dtype_family`` is ``"float"``,
``"int"`` or ``None`` (any dtype), and ``is_tensor`` is ``False`` for :class:`Text` (Python
strings).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from convai_core.errors import NeuralTypeError

__all__ = [
    "AudioSignal",
    "ElementType",
    "Embedding",
    "EncodedRepresentation",
    "Labels",
    "Lengths",
    "LogProbs",
    "Logits",
    "LossValue",
    "Mask",
    "MelSpectrogram",
    "Probs",
    "SpectrogramType",
    "Text",
    "TokenIds",
    "conversion_hint",
]


@dataclass(frozen=True)
class ElementType:
    """Base element type; as a consumer it accepts any producer (void / any element).

    Class attributes:
        dtype_family: ``"float"``, ``"int"`` or ``None`` (no dtype requirement) for runtime checks.
        is_tensor: ``False`` when values are Python objects (strings), not tensors.
    """

    dtype_family: ClassVar[str | None] = None
    is_tensor: ClassVar[bool] = True

    def is_compatible(self, producer: ElementType) -> str | None:
        """Whether this (consumer) element accepts values of the ``producer`` element.

        Args:
            producer: the element type of the port that feeds this one.

        Returns:
            ``None`` when compatible, otherwise a one-line reason.
        """
        if not isinstance(producer, ElementType):
            return f"producer element {producer!r} is not an ElementType instance"
        if type(self) is ElementType:
            return None
        if not isinstance(producer, type(self)):
            return f"element {producer} is not a kind of {type(self).__name__}"
        return self._compare_fields(producer)

    def _compare_fields(self, producer: ElementType) -> str | None:
        """Compare parameters once the classes are known to be compatible (override)."""
        return None

    def __str__(self) -> str:
        params = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) is not None
        ]
        name = type(self).__name__
        return f"{name}({', '.join(params)})" if params else name


def _check_positive(owner: str, field_name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise NeuralTypeError(
            f"{owner}({field_name}=...) must be a positive int or None (undeclared), got {value!r}."
        )


@dataclass(frozen=True)
class AudioSignal(ElementType):
    """Raw waveform samples.

    Args:
        sample_rate: samples per second, or ``None`` when not declared (matches any rate).
    """

    dtype_family: ClassVar[str | None] = "float"
    sample_rate: int | None = None

    def __post_init__(self) -> None:
        _check_positive("AudioSignal", "sample_rate", self.sample_rate)

    def _compare_fields(self, producer: ElementType) -> str | None:
        assert isinstance(producer, AudioSignal)
        if (
            self.sample_rate is not None
            and producer.sample_rate is not None
            and self.sample_rate != producer.sample_rate
        ):
            return (
                f"sample rates differ: the producer gives {producer.sample_rate} Hz audio but "
                f"the consumer expects {self.sample_rate} Hz; resample it in between "
                f"(torchaudio.functional.resample(waveform, orig_freq={producer.sample_rate}, "
                f"new_freq={self.sample_rate})) or configure both with the same sample_rate"
            )
        return None


@dataclass(frozen=True)
class SpectrogramType(ElementType):
    """Any time-frequency representation (linear, mel, MFCC...)."""

    dtype_family: ClassVar[str | None] = "float"


@dataclass(frozen=True)
class MelSpectrogram(SpectrogramType):
    """A (log-)mel spectrogram.

    Args:
        n_mels: number of mel bins, or ``None`` when not declared (matches any count).
    """

    n_mels: int | None = None

    def __post_init__(self) -> None:
        _check_positive("MelSpectrogram", "n_mels", self.n_mels)

    def _compare_fields(self, producer: ElementType) -> str | None:
        assert isinstance(producer, MelSpectrogram)
        if (
            self.n_mels is not None
            and producer.n_mels is not None
            and self.n_mels != producer.n_mels
        ):
            return (
                f"mel bin counts differ: the producer gives n_mels={producer.n_mels} but the "
                f"consumer expects n_mels={self.n_mels}; build both with the same number of mel "
                "bins (e.g. the preprocessor's n_mels and the encoder's feat_in)"
            )
        return None


@dataclass(frozen=True)
class LogProbs(ElementType):
    """Log-probabilities (output of ``log_softmax``)."""

    dtype_family: ClassVar[str | None] = "float"


@dataclass(frozen=True)
class Logits(ElementType):
    """Unnormalised scores (before ``softmax``)."""

    dtype_family: ClassVar[str | None] = "float"


@dataclass(frozen=True)
class Probs(ElementType):
    """Probabilities (output of ``softmax``)."""

    dtype_family: ClassVar[str | None] = "float"


@dataclass(frozen=True)
class Labels(ElementType):
    """Integer class ids."""

    dtype_family: ClassVar[str | None] = "int"


@dataclass(frozen=True)
class TokenIds(Labels):
    """Integer token ids of a tokenizer vocabulary."""


@dataclass(frozen=True)
class Lengths(ElementType):
    """Integer lengths of the items of a padded batch."""

    dtype_family: ClassVar[str | None] = "int"


@dataclass(frozen=True)
class Embedding(ElementType):
    """Dense vectors looked up for discrete items (tokens, speakers...)."""

    dtype_family: ClassVar[str | None] = "float"


@dataclass(frozen=True)
class EncodedRepresentation(ElementType):
    """Hidden states of an encoder."""

    dtype_family: ClassVar[str | None] = "float"


@dataclass(frozen=True)
class Text(ElementType):
    """Python strings (one ``str`` or a list of them), never a tensor."""

    is_tensor: ClassVar[bool] = False


@dataclass(frozen=True)
class LossValue(ElementType):
    """A loss (usually a scalar)."""

    dtype_family: ClassVar[str | None] = "float"


@dataclass(frozen=True)
class Mask(ElementType):
    """A padding or attention mask (bool, integer or float)."""


# (producer class, consumer class) -> how to turn one into the other. Checked in order, with
# isinstance / issubclass, so put the specific pairs first.
_CONVERSIONS: tuple[tuple[type[ElementType], type[ElementType], str], ...] = (
    (Logits, LogProbs, "apply torch.log_softmax(x, dim=-1) to the logits in between"),
    (Logits, Probs, "apply torch.softmax(x, dim=-1) to the logits in between"),
    (LogProbs, Probs, "apply x.exp() to the log-probabilities in between"),
    (
        Probs,
        LogProbs,
        "apply x.log() to the probabilities in between (or feed logits + log_softmax)",
    ),
    (
        AudioSignal,
        SpectrogramType,
        "insert a spectrogram preprocessor (e.g. an AudioToMelSpectrogram module) in between",
    ),
    (
        SpectrogramType,
        AudioSignal,
        "the consumer wants raw audio: connect it before the preprocessor, or use a consumer "
        "that takes spectrograms",
    ),
    (
        Labels,
        Embedding,
        "insert an embedding layer (torch.nn.Embedding) to turn the ids into vectors",
    ),
    (
        Labels,
        EncodedRepresentation,
        "insert an embedding layer and an encoder to turn the ids into hidden states",
    ),
    (Lengths, Mask, "build a mask from the lengths (arange(T) < lengths[:, None])"),
)


def conversion_hint(consumer: ElementType, producer: ElementType) -> str | None:
    """A concrete suggestion for feeding ``producer`` values to a ``consumer`` element.

    Args:
        consumer: the element type the receiving port declares.
        producer: the element type the feeding port declares.

    Returns:
        ``None`` when the elements are compatible or when the reason from
        :meth:`ElementType.is_compatible` already carries the fix (differing parameters),
        otherwise one sentence.
    """
    if consumer.is_compatible(producer) is None:
        return None
    if isinstance(producer, type(consumer)):  # same kind, parameters differ: reason says it
        return None
    if type(producer) is ElementType:
        return (
            f"the producer declares no element kind; declare it as {type(consumer).__name__} "
            "(or a subclass) if that is what it produces"
        )
    for source, target, hint in _CONVERSIONS:
        if isinstance(producer, source) and issubclass(type(consumer), target):
            return hint
    return (
        f"feed this input from a port that produces {type(consumer).__name__}, or insert a "
        f"module that turns {type(producer).__name__} into {type(consumer).__name__}"
    )
