"""convai-tts: English text frontend, a duration-based acoustic model, Griffin-Lim, and
``convai tts`` (see the package README)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

try:
    __version__ = _dist_version("convai-tts")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
