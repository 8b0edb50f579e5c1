"""Errors raised by convai.

Every error says what was wrong, where (file, line, key) and what to do about it. They derive
from :class:`ConvaiError` so callers can catch convai's own failures in one place.
"""

from __future__ import annotations


class ConvaiError(Exception):
    """Base class of every error convai raises on purpose."""


class PluginLoadError(ConvaiError):
    """A plugin could not be imported, validated or run (fatal only with CONVAI_STRICT_PLUGINS=1)."""


class DuplicateKeyError(ConvaiError):
    """Two distributions registered the same key in one registry."""


class UnknownKeyError(ConvaiError, KeyError):
    """A registry key that no installed package provides."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ConfigError(ConvaiError):
    """A configuration is missing a key, has a typo, or holds a value of the wrong kind."""


class ArchiveError(ConvaiError):
    """A `.convai` archive is truncated, corrupt, tampered with or unsafe."""


class PretrainedError(ConvaiError):
    """A pretrained model name cannot be resolved to a verified local file."""


class NeuralTypeError(ConvaiError):
    """Two connected ports, or a tensor and its port, disagree on axes or element kind."""


class ExportError(ConvaiError):
    """A model cannot be exported to a format, or its export differs from the eager model."""
