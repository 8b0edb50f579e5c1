"""Neural types: what every port of a module means, and checks that connected ports agree.

A module declares ``input_ports`` and ``output_ports``, ordered ``{name: NeuralType}`` mappings.
A :class:`NeuralType` pairs axes (``B`` batch, ``T`` time, ``C``/``D`` channels, ``MEL`` mel
bins, ``TOKEN`` token positions, ``CLASS`` classes, ``ANY``) with an element type
(:class:`AudioSignal`, :class:`MelSpectrogram`, :class:`LogProbs`...). :func:`connect` checks a
producer against a consumer before anything runs; :func:`typed` + :func:`typecheck` check real
tensors at call time, on demand. Importing this package does not import torch.

Example::

    from convai_core.types import (
        B, MEL, T, AudioSignal, Lengths, MelSpectrogram, NeuralType, connect, typecheck, typed,
    )

    class AudioToMel(torch.nn.Module):
        @property
        def input_ports(self):
            return {
                "audio_signal": NeuralType((B, T), AudioSignal(sample_rate=16000)),
                "length": NeuralType((B,), Lengths()),
            }

        @property
        def output_ports(self):
            return {
                "processed_signal": NeuralType((B, MEL.sized(80), T), MelSpectrogram(n_mels=80)),
                "processed_length": NeuralType((B,), Lengths()),
            }

        @typed
        def forward(self, audio_signal, length): ...

    connect(AudioToMel(), encoder, mapping={"processed_signal": "audio_signal",
                                            "processed_length": "length"})
    with typecheck():                     # or CONVAI_TYPECHECK=1
        AudioToMel()(audio_signal=audio, length=length)
"""

from __future__ import annotations

from convai_core.errors import NeuralTypeError
from convai_core.types.axes import ANY, CLASS, MEL, TOKEN, Axis, AxisKind, B, C, D, T
from convai_core.types.checking import (
    ENV_VAR,
    check_tensors,
    is_typecheck_enabled,
    typecheck,
    typed,
)
from convai_core.types.elements import (
    AudioSignal,
    ElementType,
    Embedding,
    EncodedRepresentation,
    Labels,
    Lengths,
    Logits,
    LogProbs,
    LossValue,
    Mask,
    MelSpectrogram,
    Probs,
    SpectrogramType,
    Text,
    TokenIds,
    conversion_hint,
)
from convai_core.types.ports import (
    DYNAMIC_KINDS,
    NeuralType,
    Ports,
    Typed,
    check_chain,
    connect,
    dynamic_axes,
    export_input_names,
)

__all__ = [
    "ANY",
    "CLASS",
    "DYNAMIC_KINDS",
    "ENV_VAR",
    "MEL",
    "TOKEN",
    "AudioSignal",
    "Axis",
    "AxisKind",
    "B",
    "C",
    "D",
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
    "NeuralType",
    "NeuralTypeError",
    "Ports",
    "Probs",
    "SpectrogramType",
    "T",
    "Text",
    "TokenIds",
    "Typed",
    "check_chain",
    "check_tensors",
    "connect",
    "conversion_hint",
    "dynamic_axes",
    "export_input_names",
    "is_typecheck_enabled",
    "typecheck",
    "typed",
]
