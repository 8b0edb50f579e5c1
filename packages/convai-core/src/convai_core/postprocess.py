"""Cross-domain chains composed in the core: one model's text through another model.

A model that rewrites text (a punctuation and capitalization model of convai-nlp, an inverse
text normalizer...) implements the :class:`~convai_core.interfaces.TextProcessor` capability:
``process_texts(texts) -> texts``. A recognizer's command line then chains it by archive or
pretrained name (``convai transcribe --model asr.convai --postprocess punct.convai``) without
the ASR package importing the NLP one: the archive names its model's registry key, the
registry loads the class, and the capability is checked here.

Importing this module does not import torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from convai_core.errors import ConfigError
from convai_core.interfaces import TextProcessor

__all__ = ["load_text_processor"]


def load_text_processor(source: str | os.PathLike[str], map_location: str = "cpu") -> Any:
    """The text processor in ``source`` (a ``.convai`` path or a pretrained name).

    Raises:
        ConfigError: the model there cannot process text (it has no ``process_texts``).
    """
    from convai_core.models.base import ModelBase

    if Path(source).is_file():
        model = ModelBase.restore_from(source, map_location=map_location)
    else:
        model = ModelBase.from_pretrained(str(source), map_location=map_location)
    if not isinstance(model, TextProcessor):
        raise ConfigError(
            f"{source} holds a {model.cfg.get('name', type(model).__name__)} model, which does "
            "not rewrite text (no process_texts); post-process with a text model such as "
            "nlp/punctuation_capitalization."
        )
    return model
