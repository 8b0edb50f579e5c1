"""Offline augmentation: write augmented copies of a manifest's audio and a new manifest.

Augmenting once, before training, saves the loader's time on every epoch (the guide's advice for
slow augmentations such as time stretch or simulated rooms). The recipe is the same list of
component nodes a data section's ``augmentations`` takes, with one difference: a relative
``manifest`` of an item (the noise of ``asr/noise``, the talkers of ``asr/babble``, the
responses of ``asr/impulse_response``) is resolved against the recipe file's folder, so a recipe
and its noise lists move together::

    # recipes/noisy.yaml: reads recipes/noise/music.jsonl
    - {name: asr/noise, manifest: noise/music.jsonl, min_snr_db: 5, max_snr_db: 20}
    - {name: asr/impulse_response, min_rt60: 0.3, max_rt60: 0.9, prob: 0.5}
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from convai_core.errors import ConfigError

__all__ = ["augment_manifest", "read_recipe"]

#: The item key whose relative paths a recipe resolves against its own folder.
MANIFEST_KEY = "manifest"


def _resolve_manifests(value: Any, folder: Path) -> Any:
    """``value`` (a path, comma-separated paths or a list) with relative paths made absolute."""

    def resolve(one: str) -> str:
        path = Path(one.strip()).expanduser()
        return str(path if path.is_absolute() else folder / path)

    if isinstance(value, str):
        return ",".join(resolve(p) for p in value.split(",") if p.strip())
    if isinstance(value, list):
        return [resolve(p) if isinstance(p, str) else p for p in value]
    return value


def read_recipe(path: str | os.PathLike[str]) -> list[Any]:
    """A recipe file: a YAML list of augmentation nodes (or ``{augmentations: [...]}``).

    A relative ``manifest`` of an item is made absolute against the recipe's folder.

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
    folder = recipe.absolute().parent
    return [
        {**item, MANIFEST_KEY: _resolve_manifests(item[MANIFEST_KEY], folder)}
        if isinstance(item, dict) and MANIFEST_KEY in item
        else item
        for item in data
    ]


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
