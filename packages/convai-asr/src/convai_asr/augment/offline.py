"""Offline augmentation: write augmented copies of a manifest's audio and a new manifest.

Augmenting once, before training, saves the loader's time on every epoch (the guide's advice for
slow augmentations such as time stretch or simulated rooms). The recipe is the same list of
component nodes a data section's ``augmentations`` takes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from convai_core.errors import ConfigError

__all__ = ["augment_manifest", "read_recipe"]


def read_recipe(path: str | os.PathLike[str]) -> list[Any]:
    """A recipe file: a YAML list of augmentation nodes (or ``{augmentations: [...]}``).

    Raises:
        ConfigError: the file is missing, not YAML, or holds no list.
    """
    import yaml

    recipe = Path(path)
    try:
        data = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"augmentation recipe {recipe}: cannot read it ({exc})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"augmentation recipe {recipe} is not valid YAML: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("augmentations")
    if not isinstance(data, list) or not data:
        raise ConfigError(
            f"augmentation recipe {recipe} must hold a non-empty YAML list of "
            "{name: <augmentations key>, ...} items (or a mapping with such an 'augmentations' list)"
        )
    return data


def augment_manifest(
    manifest: str | os.PathLike[str],
    recipe: Sequence[Any],
    output: str | os.PathLike[str],
    *,
    copies: int = 1,
    sample_rate: int = 16000,
    seed: int = 0,
    keep_original: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``copies`` augmented versions of every utterance of ``manifest`` under ``output``.

    Args:
        manifest: the source manifest (its entries are read and validated as for training).
        recipe: augmentation nodes, built with :func:`convai_core.components.build_list`.
        output: folder for ``audio/*.wav`` and ``manifest.jsonl``.
        copies: augmented versions per utterance.
        sample_rate: rate of the written audio (sources are resampled to it).
        seed: seeds the one random source all draws come from, in manifest order.
        keep_original: also list the source utterances in the new manifest.
        progress: called with (done, total) after each utterance.

    Returns:
        The new manifest's path (written atomically, after all audio).
    """
    import soundfile as sf
    import torch

    from convai_asr.audio import load_audio
    from convai_asr.augment.waveform import WaveformChain
    from convai_asr.data.manifest import read_manifests
    from convai_core.components import build_list

    if copies < 1:
        raise ConfigError(f"copies must be >= 1; got {copies}")
    items = build_list(
        "augmentations", list(recipe), path="recipe", context={"sample_rate": sample_rate}
    )
    chain = WaveformChain(items, generator=torch.Generator().manual_seed(seed))
    entries = read_manifests(manifest).entries
    out = Path(output)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for index, entry in enumerate(entries):
        audio = load_audio(
            entry.audio_filepath,
            sample_rate=sample_rate,
            offset=entry.offset,
            duration=entry.duration,
        )
        if keep_original:
            rows.append(
                {
                    "audio_filepath": entry.audio_filepath,
                    "duration": entry.duration,
                    "text": entry.text,
                }
            )
        for copy in range(copies):
            augmented = chain(audio).clamp(-1.0, 1.0)
            wav = out / "audio" / f"{index:06d}_{copy}.wav"
            sf.write(wav, augmented.numpy(), sample_rate, subtype="PCM_16")
            rows.append(
                {
                    "audio_filepath": str(wav.relative_to(out)),
                    "duration": round(augmented.shape[-1] / sample_rate, 4),
                    "text": entry.text,
                }
            )
        if progress is not None:
            progress(index + 1, len(entries))
    target = out / "manifest.jsonl"
    partial = target.with_name(f".{target.name}.tmp")
    partial.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    partial.replace(target)
    return target
