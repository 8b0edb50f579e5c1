"""``tts/aligner``: learns per-symbol durations of real recordings, so a duration-based model
(``tts/fastpitch``) can train on speech that no teacher voice produced.

Train it on a manifest of clips and their text (or symbols), then write a duration manifest::

    convai train model=tts/aligner model.train_ds.manifest=clips.jsonl
    convai tts data align --model aligner.convai --manifest clips.jsonl --output durations.jsonl
    convai train model=tts/fastpitch model.train_ds.manifest=durations.jsonl

The model: symbol embeddings and two convolutions (context of a few symbols) give the symbol
vectors; :class:`~convai_tts.modules.aligner.AlignmentEncoder` aligns mel frames to them with a
beta-binomial prior; the loss is the forward-sum loss, plus from ``bin_loss_start`` steps on the
binarization loss. Durations are read from the best monotonic path (every symbol gets at least
one frame, the frames sum to the clip's).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader

from convai_core.components import build
from convai_core.config_utils import check_keys, to_plain
from convai_core.errors import ConfigError, ConvaiError
from convai_core.models.base import ModelBase
from convai_tts.audio import MelConfig
from convai_tts.modules.aligner import (
    AlignmentEncoder,
    beta_binomial_prior,
    binarization_loss,
    durations_from_path,
    forward_sum_loss,
    hard_alignment,
)

if TYPE_CHECKING:
    import pytorch_lightning as pl

__all__ = ["AlignerModel"]

_MODEL_KEYS = {
    "name", "frontend", "mel", "d_model", "d_attention", "temperature", "prior_scaling",
    "bin_loss_start", "bin_loss_weight", "optim", "train_ds", "validation_ds", "test_ds",
}  # fmt: skip
_DATA_KEYS = {
    "manifest", "batch_size", "shuffle", "max_duration", "skip_bad", "num_workers",
    "trim_silence",
}  # fmt: skip


def _drop_short_clips(dataset: Any, skip_bad: bool) -> None:
    """Refuse (or, with ``skip_bad``, leave out and count) clips with fewer frames than symbols:
    a monotonic alignment gives every symbol at least one frame."""
    kept = []
    for index, entry in enumerate(dataset.entries):
        frames = dataset.frames(index)
        if frames >= len(entry.ids):
            kept.append(entry)
            continue
        if not skip_bad:
            raise ConvaiError(
                f"{dataset.manifest}, line {entry.line}: {entry.audio} has {frames} frames for "
                f"{len(entry.ids)} symbols; an alignment needs a frame per symbol (is the text "
                "that of this clip?)"
            )
        dataset.skipped["too_short_for_text"] += 1
    if not kept:
        raise ConvaiError(f"{dataset.manifest}: no usable line (skipped: {dict(dataset.skipped)})")
    dataset.entries = kept
    if dataset._cache is not None:
        dataset._cache.clear()  # indices moved


class AlignerModel(ModelBase):
    """Symbol/frame aligner; see the module docstring.

    Config keys: ``frontend`` (tokenizer node, default ``tts/english_phonemes``), ``mel``,
    ``d_model``, ``d_attention``, ``temperature``, ``prior_scaling`` (beta-binomial spread; 0
    turns the prior off), ``bin_loss_start`` (training step from which the binarization loss is
    added), ``bin_loss_weight``, ``optim`` and the data sections (``manifest``, ``batch_size``,
    ``shuffle``, ``max_duration``, ``skip_bad``, ``trim_silence``).
    """

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        c = self.cfg
        check_keys("model", c, _MODEL_KEYS)
        self.mel_config = MelConfig.from_mapping(to_plain(c.get("mel")) or {})
        self.cfg.mel = self.mel_config.to_dict()
        frontend = dict(to_plain(c.get("frontend")) or {})
        self.cfg.frontend = {"name": "tts/english_phonemes", **frontend}
        self._frontend: Any = None
        d_model = int(c.get("d_model", 128))
        self.symbols = self._symbol_inventory()
        self.embedding = nn.Embedding(len(self.symbols), d_model, padding_idx=0)
        self.context = nn.Sequential(
            nn.Conv1d(d_model, d_model, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(d_model, d_model, 5, padding=2),
        )
        self.encoder = AlignmentEncoder(
            self.mel_config.n_mels,
            d_model,
            int(c.get("d_attention", 80)),
            float(c.get("temperature", 0.0005)),
        )
        lexicon = frontend.get("lexicon")
        if lexicon and not str(lexicon).startswith("archive:"):
            self.register_artifact("frontend.lexicon", lexicon)
        self._priors: dict[tuple[int, int], torch.Tensor] = {}

    # ------------------------------------------------------------------ text
    def _symbol_inventory(self) -> tuple[str, ...]:
        from convai_core.registry import get_registries

        cls = get_registries().tokenizers.load(str(self.cfg.frontend["name"]))
        declared = getattr(cls, "SYMBOLS", None)
        return tuple(declared) if declared is not None else tuple(self.frontend.tokens)

    @property
    def frontend(self) -> Any:
        """The text frontend (built from ``cfg.frontend`` on first use)."""
        if self._frontend is None:
            self._frontend = build("tokenizers", to_plain(self.cfg.frontend), path="model.frontend")
            lexicon = getattr(self._frontend, "lexicon_path", None)
            if lexicon is not None and "frontend.lexicon" not in self.artifacts:
                self.register_artifact("frontend.lexicon", lexicon)
        return self._frontend

    # ------------------------------------------------------------------ model
    def _prior(self, symbols: int, frames: int) -> torch.Tensor:
        key = (symbols, frames)
        if key not in self._priors:
            if len(self._priors) >= 512:  # one per clip length pair: keep the memory bounded
                self._priors.clear()
            scaling = float(self.cfg.get("prior_scaling", 1.0))
            self._priors[key] = beta_binomial_prior(symbols, frames, scaling)
        return self._priors[key]

    def _log_prior(
        self, symbol_lengths: torch.Tensor, mel_lengths: torch.Tensor, shape: tuple[int, int]
    ) -> torch.Tensor | None:
        if float(self.cfg.get("prior_scaling", 1.0)) <= 0:
            return None
        frames, symbols = shape
        prior = torch.zeros(len(symbol_lengths), frames, symbols)
        for row, (t, f) in enumerate(
            zip(symbol_lengths.tolist(), mel_lengths.tolist(), strict=True)
        ):
            prior[row, :f, :t] = self._prior(int(t), int(f))
        return prior.to(self.device)

    def forward(
        self,
        symbols: torch.Tensor,
        symbol_lengths: torch.Tensor,
        mel: torch.Tensor,
        mel_lengths: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Alignment scores ``log_scores`` and soft alignment ``soft``, both (B, F, T)."""
        pad = (
            torch.arange(symbols.shape[1], device=symbols.device)[None, :]
            >= symbol_lengths[:, None]
        )
        text = self.context(self.embedding(symbols).transpose(1, 2)).transpose(1, 2)
        prior = self._log_prior(symbol_lengths, mel_lengths, (mel.shape[2], symbols.shape[1]))
        return self.encoder(mel, text, pad, prior)

    def losses(
        self, batch: Mapping[str, torch.Tensor], with_binarization: bool
    ) -> dict[str, torch.Tensor]:
        log_scores, soft = self(
            batch["symbols"], batch["symbol_lengths"], batch["mel"], batch["mel_lengths"]
        )
        forward_sum = forward_sum_loss(log_scores, batch["symbol_lengths"], batch["mel_lengths"])
        result = {"loss": forward_sum, "forward_sum_loss": forward_sum}
        if with_binarization:
            hard = hard_alignment(soft, batch["symbol_lengths"], batch["mel_lengths"])
            binarization = binarization_loss(hard, soft)
            weight = float(self.cfg.get("bin_loss_weight", 1.0))
            result["loss"] = forward_sum + weight * binarization
            result["bin_loss"] = binarization
        return result

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        start = int(self.cfg.get("bin_loss_start", 1000))
        losses = self.losses(batch, self.global_step >= start)
        size = int(batch["symbols"].shape[0])
        self.log("train_loss", losses["loss"], prog_bar=True, batch_size=size)
        self.log("train_forward_sum_loss", losses["forward_sum_loss"], batch_size=size)
        if "bin_loss" in losses:
            self.log("train_bin_loss", losses["bin_loss"], batch_size=size)
        return losses["loss"]

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        losses = self.losses(batch, with_binarization=False)
        size = int(batch["symbols"].shape[0])
        self.log("val_loss", losses["loss"], prog_bar=True, batch_size=size, sync_dist=True)

    # ------------------------------------------------------------------ alignment
    @torch.no_grad()
    def durations(self, batch: Mapping[str, torch.Tensor]) -> list[list[int]]:
        """Frames of each symbol of each item (lists of the items' real lengths; each sums to
        the item's frame count)."""
        self.eval()
        _, soft = self(
            batch["symbols"].to(self.device),
            batch["symbol_lengths"].to(self.device),
            batch["mel"].to(self.device),
            batch["mel_lengths"].to(self.device),
        )
        path = hard_alignment(soft, batch["symbol_lengths"], batch["mel_lengths"])
        frames = durations_from_path(path).cpu()
        return [frames[row, : int(n)].tolist() for row, n in enumerate(batch["symbol_lengths"])]

    def align_manifest(
        self,
        manifest: str | os.PathLike[str],
        output: str | os.PathLike[str],
        *,
        batch_size: int = 16,
        skip_bad: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> Path:
        """Write a duration manifest (the input's lines plus ``symbols`` and ``durations``) for
        every usable line of ``manifest``; the file appears complete or not at all.
        ``progress(done, total)`` is called after each batch."""
        from convai_tts.data.text_mel import TextMelDataset, collate_text_mel

        dataset = TextMelDataset(manifest, self.frontend, self.mel_config, skip_bad=skip_bad)
        _drop_short_clips(dataset, skip_bad)
        lines = Path(manifest).read_text(encoding="utf-8").splitlines()
        tokens = list(self.frontend.tokens)
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=".jsonl", dir=output.parent, prefix=".align-")
        os.close(handle)
        try:
            with open(temporary, "w", encoding="utf-8") as sink:
                for start in range(0, len(dataset), batch_size):
                    indices = list(range(start, min(start + batch_size, len(dataset))))
                    batch = collate_text_mel([dataset[i] for i in indices])
                    for index, frames in zip(indices, self.durations(batch), strict=True):
                        entry = dataset.entries[index]
                        item = json.loads(lines[entry.line - 1])
                        # absolute: the output may live in another folder than the input
                        item["audio_filepath"] = str(entry.audio.resolve())
                        item["symbols"] = " ".join(
                            "|" if tokens[i] == " " else tokens[i] for i in entry.ids
                        )
                        item["durations"] = frames
                        sink.write(json.dumps(item, ensure_ascii=False) + "\n")
                    if progress is not None:
                        progress(indices[-1] + 1, len(dataset))
            os.replace(temporary, output)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return output

    # ------------------------------------------------------------------ data
    def build_dataloader(self, data_cfg: DictConfig, split: str) -> DataLoader[Any] | None:
        from convai_tts.data.text_mel import TextMelDataset, collate_text_mel
        from convai_tts.models.fastpitch import _LengthBuckets

        plain = dict(to_plain(data_cfg) or {})
        section = f"model.{self.DATA_SECTIONS[split]}"
        check_keys(section, plain, _DATA_KEYS)
        if not plain.get("manifest"):
            if split == "train":
                raise ConfigError(f"{section}.manifest is missing: set it to a text+audio manifest")
            return None
        dataset = TextMelDataset(
            plain["manifest"],
            self.frontend,
            self.mel_config,
            max_duration=plain.get("max_duration"),
            skip_bad=bool(plain.get("skip_bad", False)),
            trim_silence=bool(plain.get("trim_silence", False)),
        )
        _drop_short_clips(dataset, bool(plain.get("skip_bad", False)))
        if dataset.skipped:
            print(f"{section}: skipped {dict(dataset.skipped)} of {plain['manifest']}")
        sampler = _LengthBuckets(
            [dataset.frames(i) for i in range(len(dataset))],
            int(plain.get("batch_size", 16)),
            bool(plain.get("shuffle", split == "train")),
        )
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate_text_mel,
            num_workers=int(plain.get("num_workers", 0)),
        )
