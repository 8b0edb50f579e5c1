"""convai-export: deployment formats for convai models, each verified against the eager model.

Formats (registered through ``convai_register_export_targets``): ``onnx``, ``torchscript``,
``checkpoint``, ``trt-onnx`` and ``triton``, for any model that declares its ports; domain
packages register their own formats through the same hook, and ``convai export --help`` lists
every installed one. Use ``model.export(path, format=...)`` or :func:`export_model`. Importing
this package imports neither torch nor onnx.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import Any

try:
    __version__ = _dist_version("convai-export")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "export_model"]


def export_model(model: Any, output: str, format: str = "onnx", **options: Any) -> Any:
    """Export ``model`` (a :class:`~convai_core.models.ModelBase`) to ``format`` at ``output``.

    The same as ``model.export(output, format=format, **options)``; returns an
    :class:`~convai_export.report.ExportReport`.
    """
    return model.export(output, format=format, **options)
