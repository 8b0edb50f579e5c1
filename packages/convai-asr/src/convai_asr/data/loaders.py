"""Data loaders of ASR models: the dataset comes from the registry, batches from duration buckets.

A data section of an ASR model config (``train_ds``, ``validation_ds``, ``test_ds``) holds loader
keys (:data:`LOADER_KEYS`), the registry key of its dataset builder in ``dataset`` (default
``asr/manifest``), and the builder's own keys::

    train_ds:
      dataset: asr/manifest        # or a plugin's key
      manifest: train.jsonl        # -> manifest_dataset(manifest=...)
      max_duration: 20.0
      batch_seconds: 320           # loader keys
      shuffle: true

The builder gets the model's ``tokenizer``, text ``normalizer`` and ``sample_rate`` when its
signature takes them. It returns a map-style dataset whose items are the dicts
:func:`~convai_asr.data.dataset.collate_audio_text` batches (``audio`` (T,), ``tokens`` (U,),
``index``) and which lists each item's ``durations`` in seconds, for the bucketing sampler; or
``None`` when the section names no data (no manifest), which leaves that split without a loader.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from convai_asr.data.dataset import AudioTextDataset, DurationBucketSampler, collate_audio_text
from convai_asr.data.manifest import read_manifests
from convai_core.components import build, build_list
from convai_core.config_utils import to_plain
from convai_core.errors import ConfigError

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from convai_asr.text.normalize import TextNormalizer
    from convai_core.interfaces import Tokenizer

__all__ = ["DEFAULT_DATASET", "LOADER_KEYS", "build_audio_loader", "manifest_dataset"]

log = logging.getLogger(__name__)

#: The dataset builder of a data section that names none.
DEFAULT_DATASET = "asr/manifest"
#: Keys of a data section that set up the loader, not the dataset.
LOADER_KEYS = frozenset({"batch_size", "batch_seconds", "shuffle", "num_workers", "seed"})


def manifest_dataset(
    manifest: str | Sequence[str] | None,
    *,
    tokenizer: Tokenizer,
    sample_rate: int,
    normalizer: TextNormalizer | None = None,
    min_duration: float | None = None,
    max_duration: float | None = None,
    skip_malformed: bool = False,
    skip_bad_audio: bool = False,
    augmentations: list[Any] | None = None,
    config_path: str = "dataset",
) -> AudioTextDataset | None:
    """The ``asr/manifest`` dataset: utterances of NeMo-style JSON-lines manifests.

    Args:
        manifest: one path, comma-separated paths, or a list; ``None`` for no data.
        tokenizer: the model's tokenizer (supplied by the model).
        sample_rate: the model's rate in Hz (supplied by the model).
        normalizer: the model's text normalizer (supplied by the model).
        min_duration: drop utterances shorter than this many seconds.
        max_duration: drop utterances longer than this many seconds.
        skip_malformed: skip (and count) malformed manifest lines instead of raising.
        skip_bad_audio: drop unreadable audio files while training instead of raising.
        augmentations: waveform augmentation nodes (``{name: asr/speed_perturb, prob: 0.5,
            ...}``), built from the registry with this ``sample_rate`` and applied to every
            utterance as it is read (see :mod:`convai_asr.augment.waveform`).
        config_path: the section's config path, for messages (supplied by the loader).

    Returns:
        The dataset, or ``None`` when ``manifest`` is empty.
    """
    if not manifest:
        return None
    read = read_manifests(
        manifest,
        min_duration=min_duration,
        max_duration=max_duration,
        skip_malformed=skip_malformed,
    )
    log.info("data: %s", read.summary())
    from convai_asr.augment.waveform import WaveformChain

    items = build_list(
        "augmentations",
        augmentations,
        path=f"{config_path}.augmentations",
        context={"sample_rate": sample_rate},
    )
    dataset = AudioTextDataset(
        read.entries,
        tokenizer,
        sample_rate=sample_rate,
        normalizer=normalizer,
        skip_bad_audio=skip_bad_audio,
        augment=WaveformChain(items) if items else None,
    )
    if normalizer is not None and normalizer.removed:
        log.info(
            "text: removed characters outside the vocabulary: %s",
            dict(normalizer.removed.most_common(20)),
        )
    return dataset


def build_audio_loader(
    data_cfg: Any,
    *,
    path: str,
    context: Mapping[str, Any],
    default_shuffle: bool,
    num_replicas: int = 1,
    rank: int = 0,
) -> tuple[DataLoader[Any], DurationBucketSampler] | None:
    """Build a data section's dataset through the registry and its duration-bucketing loader.

    Args:
        data_cfg: the section (``model.train_ds``...).
        path: its config path, for messages.
        context: what the model supplies to the dataset builder (tokenizer, sample rate...).
        default_shuffle: shuffle when the section does not say (True for training).
        num_replicas: DDP world size; each rank gets its own batches.
        rank: this process' rank.

    Returns:
        The loader and its batch sampler, or ``None`` when the section names no data.

    Raises:
        ConfigError: an unknown dataset key or argument (see
            :func:`convai_core.components.build`), or a dataset without ``durations``.
    """
    from torch.utils.data import DataLoader

    section = dict(to_plain(data_cfg) or {})
    loader = {key: section.pop(key) for key in list(section) if key in LOADER_KEYS}
    dataset_key = section.pop("dataset", None) or DEFAULT_DATASET
    if isinstance(dataset_key, Mapping):
        raise ConfigError(
            f"{path}.dataset must be a registry key (a string such as {DEFAULT_DATASET!r}); put "
            f"the dataset's own keys beside it in {path}."
        )
    dataset = build(
        "datasets",
        {"name": dataset_key, **section},
        path=path,
        context={**context, "config_path": path},
        sibling_keys=LOADER_KEYS | {"dataset"},
    )
    if dataset is None:
        return None
    durations = getattr(dataset, "durations", None)
    if durations is None:
        raise ConfigError(
            f"{path}.dataset={dataset_key!r} gives a {type(dataset).__name__} without a "
            "'durations' attribute; ASR loaders batch utterances by duration, so the dataset "
            "must list each item's length in seconds."
        )
    sampler = DurationBucketSampler(
        list(durations),
        batch_seconds=loader.get("batch_seconds"),
        batch_size=loader.get("batch_size") if not loader.get("batch_seconds") else None,
        shuffle=bool(loader.get("shuffle", default_shuffle)),
        seed=int(loader.get("seed", 0)),
        num_replicas=num_replicas,
        rank=rank,
    )
    data_loader: DataLoader[Any] = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_audio_text,
        num_workers=int(loader.get("num_workers", 0)),
        # workers live across epochs: respawning them each epoch costs more than a short epoch
        persistent_workers=int(loader.get("num_workers", 0)) > 0,
    )
    return data_loader, sampler
