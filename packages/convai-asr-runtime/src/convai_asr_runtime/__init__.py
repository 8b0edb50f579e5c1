"""convai-asr-runtime: speech to text with an exported convai ASR bundle, without torch.

It needs only ``numpy``, ``onnxruntime`` and ``soundfile``, and never imports torch or
convai-core. It reads audio, mixes it to mono, resamples it, batches files by length, runs the
bundle's ONNX graph (with the mel preprocessor inside it, or computes the features with numpy
when the bundle says so), decodes greedy CTC with word timestamps and transcribes long files in
overlapping windows, giving the same output as ``convai transcribe`` with the model the bundle
was exported from.

A bundle's ``bundle.json`` follows a versioned schema owned by this package
(:mod:`convai_asr_runtime.schema`, :data:`BUNDLE_SCHEMA_VERSION`): exporters write it with
:func:`~convai_asr_runtime.schema.write_metadata`, and :class:`Bundle` refuses a bundle from a
newer schema with an error that says to upgrade.

Example::

    python -m convai_asr_runtime transcribe --bundle asr_bundle/ a.wav b.flac

    from convai_asr_runtime import Bundle
    print(Bundle("asr_bundle").transcribe(["a.wav"])[0]["text"])

Importing this package imports neither numpy nor onnxruntime; :class:`Bundle` and
:class:`AudioReadError` are loaded on first use.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import TYPE_CHECKING, Any

from convai_asr_runtime.schema import BUNDLE_SCHEMA_VERSION, BundleError

if TYPE_CHECKING:
    from convai_asr_runtime.audio import AudioReadError
    from convai_asr_runtime.bundle import Bundle

try:
    __version__ = _dist_version("convai-asr-runtime")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["BUNDLE_SCHEMA_VERSION", "AudioReadError", "Bundle", "BundleError", "__version__"]

_LAZY = {"Bundle": "convai_asr_runtime.bundle", "AudioReadError": "convai_asr_runtime.audio"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'convai_asr_runtime' has no attribute {name!r}")
