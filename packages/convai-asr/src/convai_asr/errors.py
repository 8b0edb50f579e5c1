"""Errors and warnings raised by convai-asr.

Like every convai error they derive from :class:`convai_core.errors.ConvaiError`, and their messages
say what was wrong, where (the file, and the line for manifests) and what to do about it.
"""

from __future__ import annotations

from convai_core.errors import ConvaiError


class AudioError(ConvaiError):
    """An audio file is missing, unreadable, empty, holds NaN/Inf samples, or is read out of range."""


class ManifestError(ConvaiError):
    """A manifest file is missing, or one of its lines is not a valid manifest entry."""


class UpsampledAudioWarning(UserWarning):
    """Audio was recorded at a lower rate than the model's and had to be up-sampled.

    Up-sampling cannot restore the missing high frequencies, so a model trained on full-band audio
    usually transcribes such input less accurately.
    """
