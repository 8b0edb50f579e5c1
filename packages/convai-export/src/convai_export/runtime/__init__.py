"""A torch-free ASR runtime: audio files to text with an exported ``asr-bundle``.

It needs only ``onnxruntime``, ``numpy`` and ``soundfile`` (``pip install
convai-export[runtime]`` or those three alone): no torch, no convai-core. It reads audio, mixes
it to mono, resamples it, batches files by length, runs the bundle's ONNX graph (with the mel
preprocessor inside it, or computes the features with numpy when the bundle says so), decodes
greedy CTC with word timestamps and transcribes long files in overlapping chunks, giving the same
output as ``convai transcribe`` with the model the bundle was exported from.

Example::

    python -m convai_export.runtime transcribe --bundle asr_bundle/ a.wav b.flac

    from convai_export.runtime import Bundle
    print(Bundle("asr_bundle").transcribe(["a.wav"])[0]["text"])
"""

from __future__ import annotations

from convai_export.runtime.bundle import Bundle, RuntimeBundleError

__all__ = ["Bundle", "RuntimeBundleError"]
