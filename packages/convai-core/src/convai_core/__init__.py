"""convai core: the interfaces every convai package builds on.

Importing this package is cheap: it loads no torch, lightning or hydra. Heavy pieces live in
submodules and are imported on first use (``convai_core.models``, ``convai_core.archive``,
``convai_core.trainer``...).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

try:
    __version__ = _dist_version("convai-core")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
