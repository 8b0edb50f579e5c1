"""convai-asr's plugin module: hook implementations only.

The package is still empty, so it implements no hook and registers nothing yet.
"""

from __future__ import annotations
