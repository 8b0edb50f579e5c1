"""Model base class and the core's own small models (imports torch and lightning)."""

from __future__ import annotations

from convai_core.models.base import ModelBase

__all__ = ["ModelBase"]
