"""Dataset builders of convai-kaldi (registry kind ``datasets``).

``kaldi/audio`` reads ``wav.scp`` (+ ``segments``) + ``text`` (+ ``utt2spk``) and hands the
utterances to the ``asr/manifest`` dataset by registry key, so a Kaldi data directory trains
any ASR model exactly as a manifest does (augmentations, duration filters and all)::

    model.train_ds: {dataset: kaldi/audio, data_dir: data/train, max_duration: 16.0}

``kaldi/features`` reads ``feats.scp`` + ``text`` (and ``cmvn.scp``, applied per speaker) for a
model whose preprocessor is ``kaldi/feature_input``::

    model.train_ds: {dataset: kaldi/features, data_dir: data/train, norm_vars: false}
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from convai_kaldi.datadir import read_data_dir
from convai_kaldi.errors import KaldiDataError

__all__ = ["kaldi_audio_dataset", "kaldi_feature_dataset"]

#: What an ASR model supplies to a dataset builder (forwarded to ``asr/manifest`` as such).
_MODEL_CONTEXT = ("tokenizer", "sample_rate", "normalizer", "config_path")


def _cache_dir() -> Path:
    from convai_core.pretrained import cache_dir

    return cache_dir() / "kaldi" / "manifests"


def kaldi_audio_dataset(
    data_dir: str | None,
    *,
    allow_pipes: bool = False,
    root: str | None = None,
    manifest_dataset: str = "asr/manifest",
    **options: Any,
) -> Any:
    """The ``kaldi/audio`` dataset: a data directory's utterances as an audio dataset.

    Args:
        data_dir: the Kaldi data directory (``None`` or empty: no data for this split).
        allow_pipes: run ``wav.scp`` commands (refused by default: they run shell commands).
        root: the folder relative ``wav.scp`` paths start from (default: working directory).
        manifest_dataset: the registry key of the manifest dataset the rows go to.
        **options: that dataset's own keys (``max_duration``, ``augmentations``...) and what
            the model supplies (tokenizer, sample rate, normalizer).

    Returns:
        What ``manifest_dataset`` builds (for ``asr/manifest``: an ``AudioTextDataset``).
    """
    if not data_dir:
        return None
    from convai_core.components import build
    from convai_kaldi.manifest import data_dir_to_rows

    data = read_data_dir(data_dir, allow_pipes=allow_pipes)
    if data.text is None:
        raise KaldiDataError(f"{Path(data_dir) / 'text'}: missing; training needs transcripts")
    digest = hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
    cache = _cache_dir()
    audio_dir = cache / f"{digest}.audio"
    rows = data_dir_to_rows(data, root=root, audio_dir=audio_dir)
    cache.mkdir(parents=True, exist_ok=True)
    manifest = cache / f"{digest}.jsonl"
    tmp = manifest.with_name(f".{manifest.name}.tmp{os.getpid()}")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    tmp.replace(manifest)
    context = {key: options.pop(key) for key in _MODEL_CONTEXT if key in options}
    return build(
        "datasets",
        {"name": manifest_dataset, "manifest": str(manifest), **options},
        path=str(context.get("config_path", "dataset")),
        context=context,
    )


def kaldi_feature_dataset(
    data_dir: str | None,
    *,
    tokenizer: Any,
    normalizer: Any = None,
    apply_cmvn: bool = True,
    norm_vars: bool = False,
    frame_shift: float = 0.01,
    max_duration: float | None = None,
    allow_pipes: bool = False,
) -> Any:
    """The ``kaldi/features`` dataset: ``feats.scp`` matrices and ``text`` transcripts.

    Args:
        data_dir: the data directory (``None`` or empty: no data for this split).
        tokenizer: the model's tokenizer (supplied by the model).
        normalizer: the model's text normalizer (supplied by the model).
        apply_cmvn: apply ``cmvn.scp`` statistics when the directory has them.
        norm_vars: also normalize variances (Kaldi's ``apply-cmvn --norm-vars``).
        frame_shift: seconds per frame, for durations.
        max_duration: drop utterances longer than this many seconds.
        allow_pipes: allow ``feats.scp`` entries that are shell commands.

    Returns:
        A :class:`~convai_kaldi.features.KaldiFeatureDataset`.
    """
    if not data_dir:
        return None
    from convai_kaldi.features import KaldiFeatureDataset

    return KaldiFeatureDataset(
        read_data_dir(data_dir, allow_pipes=allow_pipes),
        tokenizer,
        normalizer=normalizer,
        apply_cmvn=apply_cmvn,
        norm_vars=norm_vars,
        frame_shift=frame_shift,
        max_duration=max_duration,
    )
