"""CTC speech recognition: mel features -> encoder (Jasper/QuartzNet or Conformer) -> CTC head.

One class covers every CTC architecture; the ``encoder.type`` config key picks the encoder. The
model trains from manifests, logs WER/CER in validation, transcribes files (with word timestamps,
and in overlapping chunks for long audio), and swaps its vocabulary for transfer learning.

Batch legend: B batch, T samples, F mel bins, T' encoder frames, U target tokens, V vocabulary+blank.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from convai_asr.augment.spec import SpecAugment, SpecCutout
from convai_asr.data.dataset import AudioTextDataset, DurationBucketSampler, collate_audio_text
from convai_asr.data.manifest import read_manifests
from convai_asr.decoding.greedy import ctc_greedy_decode, word_timestamps
from convai_asr.metrics.wer import ErrorRateAccumulator
from convai_asr.modules.conformer import ConformerEncoder
from convai_asr.modules.ctc_head import ConvCTCDecoder
from convai_asr.modules.features import MelSpectrogramPreprocessor
from convai_asr.modules.jasper import JasperEncoder, jasper_10x5_blocks, quartznet_blocks
from convai_asr.text.normalize import TextNormalizer
from convai_asr.text.tokenizers import build_tokenizer
from convai_core.config_utils import to_plain
from convai_core.errors import ConfigError, ConvaiError, ExportError
from convai_core.models.base import ModelBase
from convai_core.types import AudioSignal, B, Lengths, LogProbs, NeuralType, T
from convai_core.types.axes import Axis, AxisKind

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from convai_asr.text.tokenizers import Tokenizer
    from convai_core.export_spec import ExportSpec

#: Checkpoint key of the training sampler's state (epoch and batches consumed).
SAMPLER_STATE_KEY = "convai_train_sampler"

log = logging.getLogger(__name__)

ENCODER_TYPES = ("jasper", "quartznet", "conformer")


def build_encoder(cfg: Mapping[str, Any], feat_in: int) -> tuple[nn.Module, int]:
    """Build the encoder named by ``cfg['type']``; returns (module, output channels).

    ``quartznet``: ``arch: {b, r, dropout}`` picks the published BxR block list; ``jasper``:
    ``blocks`` is an explicit block list or ``jasper_10x5``; ``conformer``: the keyword arguments
    of :class:`~convai_asr.modules.conformer.ConformerEncoder`.
    """
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind in ("quartznet", "jasper"):
        if kind == "quartznet":
            blocks: Any = quartznet_blocks(**dict(cfg.pop("arch", None) or {"b": 15, "r": 5}))
        else:
            blocks = cfg.pop("blocks", None)
            blocks = jasper_10x5_blocks() if blocks == "jasper_10x5" else blocks
        if cfg:
            raise ConfigError(f"model.encoder: unknown keys {sorted(cfg)} for a {kind} encoder")
        if not blocks:
            raise ConfigError("model.encoder.blocks is missing for a jasper encoder")
        encoder = JasperEncoder(feat_in=feat_in, blocks=[dict(b) for b in blocks])
        return encoder, encoder.d_model
    if kind == "conformer":
        try:
            conformer = ConformerEncoder(feat_in=feat_in, **cfg)
        except TypeError as exc:
            raise ConfigError(f"model.encoder: {exc}") from exc
        return conformer, conformer.d_model
    raise ConfigError(
        f"model.encoder.type={kind!r} is not known; use one of {', '.join(ENCODER_TYPES)}"
    )


class CTCModel(ModelBase):
    """Encoder-decoder CTC speech recognizer (QuartzNet/Jasper or Conformer encoders)."""

    # the duration-bucketing batch sampler deals each rank its own batches
    SHARDS_ITS_OWN_DATA = True

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        c = self.cfg
        self.sample_rate = int(c.get("sample_rate", 16000))
        self._setup_tokenizer(c.tokenizer)
        self.preprocessor = MelSpectrogramPreprocessor(
            sample_rate=self.sample_rate, **to_plain(c.get("preprocessor") or {})
        )
        n_mels = int((c.get("preprocessor") or {}).get("n_mels", 64))
        self.spec_augment = (
            SpecAugment(**to_plain(c.spec_augment)) if c.get("spec_augment") else None
        )
        self.spec_cutout = SpecCutout(**to_plain(c.spec_cutout)) if c.get("spec_cutout") else None
        self.encoder, enc_dim = build_encoder(to_plain(c.encoder), feat_in=n_mels)
        self.decoder = ConvCTCDecoder(feat_in=enc_dim, num_classes=self.tokenizer.vocab_size)
        self._val_errors = ErrorRateAccumulator()
        self._train_sampler: DurationBucketSampler | None = None
        self._sampler_state: dict[str, Any] | None = None  # from a checkpoint, for the next loader

    # ------------------------------------------------------------------ vocabulary
    def _setup_tokenizer(self, tokenizer_cfg: Any) -> None:
        plain = dict(to_plain(tokenizer_cfg))
        if plain.get("type") == "sentencepiece" and plain.get("model_path"):
            plain["model_path"] = self.register_artifact(
                "tokenizer.model_path", plain["model_path"]
            )
        self.tokenizer: Tokenizer = build_tokenizer(plain)
        vocabulary = None if plain.get("type") == "sentencepiece" else self.tokenizer.tokens
        self.normalizer = TextNormalizer(
            vocabulary, numbers_to_words=bool(plain.get("numbers_to_words", True))
        )

    @property
    def blank_id(self) -> int:
        return self.tokenizer.vocab_size

    def change_vocabulary(self, tokenizer_cfg: Mapping[str, Any]) -> None:
        """Use a new alphabet or tokenizer: a fresh CTC head, the encoder weights kept."""
        self.cfg.tokenizer = OmegaConf.create(dict(tokenizer_cfg))
        self._artifacts.pop("tokenizer.model_path", None)
        self._setup_tokenizer(self.cfg.tokenizer)
        enc_dim = self.decoder.feat_in
        self.decoder = ConvCTCDecoder(feat_in=enc_dim, num_classes=self.tokenizer.vocab_size)
        log.info(
            "vocabulary changed: %d tokens; the CTC head was re-initialized",
            self.tokenizer.vocab_size,
        )

    # ------------------------------------------------------------------ ports
    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        return {
            "audio_signal": NeuralType((B, T), AudioSignal(sample_rate=self.sample_rate)),
            "length": NeuralType((B,), Lengths()),
        }

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        return {
            "log_probs": NeuralType(
                (B, T, Axis(AxisKind.CLASS, self.tokenizer.vocab_size + 1)), LogProbs()
            ),
            "encoded_length": NeuralType((B,), Lengths()),
        }

    # ------------------------------------------------------------------ forward
    def forward(
        self, audio_signal: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shapes: audio_signal (B, T), length (B,) -> log_probs (B, T', V), encoded_length (B,)."""
        spec, spec_len = self.preprocessor(audio_signal, length)  # (B, F, T_spec)
        if self.training:
            if self.spec_augment is not None:
                spec = self.spec_augment(spec, spec_len)
            if self.spec_cutout is not None:
                spec = self.spec_cutout(spec, spec_len)
        encoded, encoded_len = self.encoder(spec, spec_len)  # (B, D, T')
        log_probs = self.decoder(encoded)  # (B, T', V)
        return log_probs, encoded_len

    @property
    def frame_shift_s(self) -> float:
        """Seconds between two output frames (hop length times the encoder's time stride)."""
        hop = float((self.cfg.get("preprocessor") or {}).get("window_stride", 0.01))
        # Jasper encoders name their time stride "stride", Conformers "subsampling_factor"
        for name in ("stride", "subsampling_factor"):
            stride = getattr(self.encoder, name, None)
            if stride:
                return hop * int(stride)
        raise TypeError(f"{type(self.encoder).__name__} declares no time stride")

    def _loss(
        self, batch: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        log_probs, enc_len = self(batch["audio"], batch["audio_len"])
        loss = nn.functional.ctc_loss(
            log_probs.transpose(0, 1).float(),  # (B, T', V) -> (T', B, V)
            batch["tokens"],
            enc_len,
            batch["tokens_len"],
            blank=self.blank_id,
            reduction="mean",
            zero_infinity=True,
        )
        return loss, log_probs, enc_len

    def training_step(
        self, batch: Mapping[str, torch.Tensor], batch_idx: int
    ) -> torch.Tensor | None:
        if batch["audio"].shape[0] == 0:
            return None  # every file of this batch was unreadable (skip_bad_audio)
        loss, _, _ = self._loss(batch)
        self.log(
            "train_loss",
            loss,
            prog_bar=True,
            on_step=True,
            on_epoch=True,
            batch_size=batch["audio"].shape[0],
            sync_dist=True,
        )
        self.log(
            "lr",
            self.trainer.optimizers[0].param_groups[0]["lr"],
            prog_bar=False,
            on_step=True,
            batch_size=batch["audio"].shape[0],
        )
        return loss

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        if batch["audio"].shape[0] == 0:
            return
        loss, log_probs, enc_len = self._loss(batch)
        hyps = self.decode(log_probs, enc_len)
        refs = [
            self.tokenizer.decode(batch["tokens"][i, : int(batch["tokens_len"][i])].tolist())
            for i in range(batch["tokens"].shape[0])
        ]
        self._val_errors.add(refs, hyps)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=len(refs))

    def on_validation_epoch_end(self) -> None:
        counts = self._pooled_val_errors()
        self._val_errors = ErrorRateAccumulator()
        if counts.words.reference_length > 0:  # some validation utterance was decoded
            errors = counts.compute()
            self.log("val_wer", errors["wer"], prog_bar=True, sync_dist=True)
            self.log("val_cer", errors["cer"], prog_bar=True, sync_dist=True)

    def _pooled_val_errors(self) -> ErrorRateAccumulator:
        """This epoch's validation edit counts, summed over DDP ranks.

        Each rank decodes its own share of the validation set; the corpus WER is the sum of every
        rank's edits over the sum of their reference lengths, not the mean of the ranks' rates
        (which would weigh a rank with short utterances as much as one with long ones). Every
        rank takes part in the sum, also one that decoded nothing, so none waits for another.
        """
        trainer = self._trainer
        if trainer is None or trainer.world_size <= 1:
            return self._val_errors
        local = torch.tensor(self._val_errors.as_list(), dtype=torch.long, device=self.device)
        summed = trainer.strategy.reduce(local, reduce_op="sum")  # (8,) on every rank
        pooled = ErrorRateAccumulator()
        pooled.load_list([int(v) for v in summed.tolist()])
        return pooled

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Greedy CTC decoding to text. Shapes: log_probs (B, T', V), lengths (B,)."""
        return [
            self.tokenizer.decode(h.token_ids)
            for h in ctc_greedy_decode(log_probs, lengths, blank_id=self.blank_id)
        ]

    # ------------------------------------------------------------------ data
    def build_dataloader(self, data_cfg: DictConfig, split: str) -> DataLoader[Any] | None:
        c = dict(to_plain(data_cfg))
        known = {
            "manifest",
            "batch_size",
            "batch_seconds",
            "shuffle",
            "min_duration",
            "max_duration",
            "skip_bad_audio",
            "skip_malformed",
            "num_workers",
            "seed",
        }
        from convai_core.config_utils import check_keys

        check_keys(f"model.{self.DATA_SECTIONS[split]}", c, known)
        if not c.get("manifest"):
            return None
        read = read_manifests(
            c["manifest"],
            min_duration=c.get("min_duration"),
            max_duration=c.get("max_duration"),
            skip_malformed=bool(c.get("skip_malformed", False)),
        )
        log.info("%s data: %s", split, read.summary())
        dataset = AudioTextDataset(
            read.entries,
            self.tokenizer,
            sample_rate=self.sample_rate,
            normalizer=self.normalizer,
            skip_bad_audio=bool(c.get("skip_bad_audio", False)),
        )
        if self.normalizer.removed:
            log.info(
                "%s text: removed characters outside the vocabulary: %s",
                split,
                dict(self.normalizer.removed.most_common(20)),
            )
        world, rank = 1, 0
        if self._trainer is not None:
            world, rank = self.trainer.world_size, self.trainer.global_rank
        sampler = DurationBucketSampler(
            [e.duration for e in read.entries],
            batch_seconds=c.get("batch_seconds"),
            batch_size=c.get("batch_size") if not c.get("batch_seconds") else None,
            shuffle=bool(c.get("shuffle", split == "train")),
            seed=int(c.get("seed", 0)),
            num_replicas=world,
            rank=rank,
        )
        if split == "train":
            self._restore_sampler(sampler)
            self._train_sampler = sampler
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate_audio_text,
            num_workers=int(c.get("num_workers", 0)),
        )

    # ------------------------------------------------------------------ epochs and exact resume
    def on_train_epoch_start(self) -> None:
        # Lightning hands the epoch to samplers, not to batch samplers: without this the
        # bucketing sampler would deal every epoch the same shuffle.
        if self._train_sampler is not None:
            self._train_sampler.set_epoch(self.current_epoch)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store where the training sampler is in its epoch, so that a run resumed from a
        mid-epoch checkpoint continues with the batches that come next (Lightning alone would
        restart the epoch's batches and stop after the remaining count)."""
        if self._train_sampler is None or self._trainer is None:
            return
        state = self._train_sampler.state_dict()
        # batches this rank consumed in this epoch (the sampler's own count runs ahead of the
        # model by the loader's prefetch)
        state["position"] = int(self.trainer.fit_loop.epoch_loop.batch_progress.current.ready)
        checkpoint[SAMPLER_STATE_KEY] = state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._sampler_state = checkpoint.get(SAMPLER_STATE_KEY)

    def _restore_sampler(self, sampler: DurationBucketSampler) -> None:
        state, self._sampler_state = self._sampler_state, None
        if state is None:
            return
        try:
            sampler.load_state_dict(state)
        except ConvaiError as exc:  # other data or DDP layout: the epoch starts afresh
            log.warning("training data resume: %s; this epoch starts from its first batch", exc)
            return
        log.info(
            "training data resume: epoch %d continues at batch %d of %d",
            sampler.epoch,
            int(state["position"]),
            len(sampler),
        )

    # ------------------------------------------------------------------ export
    def export_spec(
        self,
        *,
        preprocessor: bool = True,
        verify_audio: Sequence[str | Path] | None = None,
        **options: Any,
    ) -> ExportSpec:
        """The inference path for export targets (``model.export(path, format=...)``).

        Args:
            preprocessor: put the mel preprocessor in the exported graph (inputs: waveforms);
                ``False`` exports from mel features (TensorRT has no STFT).
            verify_audio: real recordings to verify exports with (default: pocketsphinx-testdata
                if installed, else speech synthesized by espeak-ng).
        """
        from convai_asr.export import ctc_export_spec

        if options:
            raise ExportError(
                f"{type(self).__name__} export options are preprocessor and verify_audio; "
                f"got {sorted(options)}"
            )
        return ctc_export_spec(self, preprocessor=preprocessor, verify_audio=verify_audio)

    # ------------------------------------------------------------------ transcription
    @torch.inference_mode()
    def transcribe(
        self,
        audio: str | Path | Sequence[str | Path],
        *,
        batch_size: int = 8,
        chunk_seconds: float = 30.0,
        overlap_seconds: float = 4.0,
    ) -> list[dict[str, Any]]:
        """Transcribe audio files (or a manifest path ending in .json/.jsonl).

        Returns one dict per file: ``audio_filepath``, ``text``, ``words`` (each ``word``,
        ``start``, ``end`` in seconds). Files longer than ``chunk_seconds`` are processed in
        overlapping chunks so memory stays bounded.
        """
        from convai_asr.transcribe import transcribe_files

        return transcribe_files(
            self,
            audio,
            batch_size=batch_size,
            chunk_seconds=chunk_seconds,
            overlap_seconds=overlap_seconds,
        )

    def words_from_log_probs(
        self, log_probs: torch.Tensor, length: int
    ) -> tuple[str, list[dict[str, Any]]]:
        """Greedy text and word timestamps of one utterance. Shapes: log_probs (T', V)."""
        hyp = ctc_greedy_decode(log_probs[None], torch.tensor([length]), blank_id=self.blank_id)[0]
        pieces = [self.tokenizer.tokens[i] for i in hyp.token_ids]
        starts = self.tokenizer.word_boundaries(hyp.token_ids)
        words = word_timestamps(hyp, pieces, starts, self.frame_shift_s)
        return self.tokenizer.decode(hyp.token_ids), words
