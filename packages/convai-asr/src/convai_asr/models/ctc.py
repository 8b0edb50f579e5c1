"""CTC speech recognition: preprocessor -> augmentations -> encoder -> CTC head -> decoder.

One class covers every CTC architecture. Each part is a component node built from the registry
by its ``name`` (:func:`convai_core.components.build`), so any installed plugin's part fits::

    preprocessor: {name: asr/mel_spectrogram, n_mels: 80}
    augmentations: [{name: asr/spec_augment, time_masks: 10}, {name: asr/spec_cutout, prob: 0.5}]
    encoder: {name: asr/conformer_encoder, d_model: 176}   # or asr/quartznet_encoder, a plugin's
    head: {name: asr/ctc_head}
    tokenizer: {name: asr/char, vocabulary: [...]}
    decoding: {name: asr/ctc_greedy}
    train_ds: {dataset: asr/manifest, manifest: train.jsonl, batch_seconds: 320}

The model supplies what a part must not repeat (the encoder's ``feat_in``, the head's
``num_classes``, the decoder's ``blank_id`` and ``tokenizer``) and checks the neural types of
consecutive parts when it composes them. Augmentations whose input is audio run before the
preprocessor, the others on its features. Configs written with ``type:`` keys and top-level
``spec_augment`` / ``spec_cutout`` sections still load, with a warning naming the new key.

The model trains from manifests, logs WER/CER in validation, transcribes files (with word
timestamps, and in overlapping chunks for long audio), and swaps its vocabulary for transfer
learning.

Batch legend: B batch, T samples, F mel bins, T' encoder frames, U target tokens, V vocabulary+blank.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from convai_asr.augment.chain import AugmentationChain
from convai_asr.data.dataset import DurationBucketSampler
from convai_asr.data.loaders import build_audio_loader
from convai_asr.decoding.greedy import word_timestamps
from convai_asr.metrics.wer import ErrorRateAccumulator
from convai_asr.text.normalize import TextNormalizer
from convai_asr.text.tokenizers import LEGACY_TOKENIZER_NAMES
from convai_core.components import BuiltItem, build, build_list, rename_legacy_type
from convai_core.config_utils import to_plain
from convai_core.errors import ConfigError, ConvaiError, ExportError
from convai_core.models.base import ModelBase
from convai_core.types import AudioSignal, B, Lengths, LogProbs, NeuralType, T, connect
from convai_core.types.axes import Axis, AxisKind

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from convai_core.export_spec import ExportSpec
    from convai_core.interfaces import Decoder, Tokenizer

#: Checkpoint key of the training sampler's state (epoch and batches consumed).
SAMPLER_STATE_KEY = "convai_train_sampler"

#: The part a config leaves out, by config key.
DEFAULT_PARTS = {
    "preprocessor": "asr/mel_spectrogram",
    "head": "asr/ctc_head",
    "decoding": "asr/ctc_greedy",
}
#: Old ``encoder.type`` values and the registry keys that replace them.
LEGACY_ENCODER_NAMES = {
    "jasper": "asr/jasper_encoder",
    "quartznet": "asr/quartznet_encoder",
    "conformer": "asr/conformer_encoder",
}
_REMOVED_IN = "convai-asr 0.3"

log = logging.getLogger(__name__)


def upgrade_legacy_config(cfg: DictConfig) -> None:
    """Rewrite, in place, the config forms of convai-asr 0.1 into component nodes (with warnings).

    ``tokenizer.type`` and ``encoder.type`` become ``name`` (a QuartzNet's ``arch: {b, r,
    dropout}`` moves up into the node), a ``preprocessor`` node without ``name`` gets its default
    key, and top-level ``spec_augment`` / ``spec_cutout``
    sections join the ``augmentations`` list. Archives saved by 0.1 restore through this.
    """
    if cfg.get("tokenizer") is not None:
        cfg.tokenizer = rename_legacy_type(
            cfg.tokenizer, path="model.tokenizer", names=LEGACY_TOKENIZER_NAMES,
            removed_in=_REMOVED_IN,
        )
    if cfg.get("encoder") is not None:
        encoder = rename_legacy_type(
            cfg.encoder, path="model.encoder", names=LEGACY_ENCODER_NAMES, removed_in=_REMOVED_IN
        )
        if encoder.get("name") == "asr/quartznet_encoder" and "arch" in encoder:
            encoder = {**{k: v for k, v in encoder.items() if k != "arch"}, **encoder["arch"]}
        cfg.encoder = encoder
    for key, default in DEFAULT_PARTS.items():  # 0.1 preprocessor nodes had no name
        node = to_plain(cfg.get(key))
        if isinstance(node, Mapping) and "name" not in node:
            cfg[key] = {"name": default, **node}
    legacy = [key for key in ("spec_augment", "spec_cutout") if key in cfg]
    if legacy:
        items = list(to_plain(cfg.get("augmentations")) or [])
        for key in legacy:
            section = to_plain(cfg.pop(key))
            if section is None:
                continue
            if not isinstance(section, Mapping):
                raise ConfigError(f"model.{key} must be a mapping of its settings or null.")
            items.append({"name": f"asr/{key}", **section})
            warnings.warn(
                f"model.{key} is deprecated and stops working in {_REMOVED_IN}; list it under "
                f"model.augmentations as {{name: asr/{key}, ...}} instead.",
                FutureWarning,
                stacklevel=3,
            )
        cfg.augmentations = items


def _positional(producer: Any, consumer: Any) -> dict[str, str]:
    """Link the producer's outputs to the consumer's inputs in declaration order."""
    return dict(zip(producer.output_ports, consumer.input_ports, strict=False))


def _axis_size(module: Any, kind: AxisKind, what: str) -> int:
    """The fixed size of the ``kind`` axis of ``module``'s first output port."""
    port = next(iter(module.output_ports.values()), None)
    for axis in (port.axes or ()) if port is not None else ():
        if axis.kind is kind and axis.size is not None:
            return int(axis.size)
    raise ConfigError(
        f"{type(module).__name__} must declare the size of the {kind.name} axis of its first "
        f"output port (the model sizes the {what} from it); give output_ports a sized axis "
        f"such as {kind.name}.sized(n)."
    )


class _Outputs:
    """A producer view of a few output ports, for checking one link."""

    def __init__(self, ports: Mapping[str, NeuralType]) -> None:
        self.output_ports = dict(ports)
        self.input_ports: dict[str, NeuralType] = {}


class CTCModel(ModelBase):
    """Encoder-decoder CTC speech recognizer built from registry components."""

    # the duration-bucketing batch sampler deals each rank its own batches
    SHARDS_ITS_OWN_DATA = True

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        upgrade_legacy_config(self.cfg)
        c = self.cfg
        self.sample_rate = int(c.get("sample_rate", 16000))
        self._setup_tokenizer(c.tokenizer)
        self.preprocessor = build(
            "modules",
            self._part("preprocessor"),
            path="model.preprocessor",
            context={"sample_rate": self.sample_rate},
        )
        audio_items: list[BuiltItem] = []
        feature_items: list[BuiltItem] = []
        for item in build_list("augmentations", c.get("augmentations"), path="model.augmentations"):
            port = next(iter(getattr(item.component, "input_ports", {}).values()), None)
            on_audio = port is not None and isinstance(port.element, AudioSignal)
            (audio_items if on_audio else feature_items).append(item)
        self.audio_augmentations = AugmentationChain(audio_items)
        self.augmentations = AugmentationChain(feature_items)
        feat_in = _axis_size(self.preprocessor, AxisKind.MEL, "encoder's feat_in")
        self.encoder = build(
            "modules", c.encoder, path="model.encoder", context={"feat_in": feat_in}
        )
        archived = getattr(self.encoder, "config_for_archive", None)
        if callable(archived):  # e.g. pretrained weights: the archive rebuilds without the source
            self.cfg.encoder = OmegaConf.create(archived())
        self.decoder = self._build_head()
        self._check_composition()
        self._val_errors = ErrorRateAccumulator()
        self._train_sampler: DurationBucketSampler | None = None
        self._sampler_state: dict[str, Any] | None = None  # from a checkpoint, for the next loader

    # ------------------------------------------------------------------ parts
    def _part(self, key: str) -> Any:
        node = self.cfg.get(key)
        return node if node is not None else {"name": DEFAULT_PARTS[key]}

    def _build_head(self) -> nn.Module:
        enc_dim = _axis_size(self.encoder, AxisKind.CHANNEL, "CTC head's feat_in")
        head: nn.Module = build(
            "modules",
            self._part("head"),
            path="model.head",
            context={"feat_in": enc_dim, "num_classes": self.tokenizer.vocab_size},
        )
        self.decoding: Decoder = build(
            "decoders",
            self._part("decoding"),
            path="model.decoding",
            context={"blank_id": self.blank_id, "tokenizer": self.tokenizer},
        )
        return head

    def _check_composition(self) -> None:
        """Check the neural types of every link between parts; the error names both ends."""
        names = {}
        for key in ("preprocessor", "encoder", "head"):
            node = self.cfg.encoder if key == "encoder" else self._part(key)
            names[key] = f"model.{key} ({node if isinstance(node, str) else node.get('name')})"
        links = [
            (self.preprocessor, self.encoder, "preprocessor", "encoder"),
            (self.encoder, self.decoder, "encoder", "head"),
        ]
        for producer, consumer, p_key, c_key in links:
            connect(
                producer,
                consumer,
                mapping=_positional(producer, consumer),
                producer_name=names[p_key],
                consumer_name=names[c_key],
            )
        chains = [
            (self.audio_augmentations, _Outputs(self.input_ports), "model inputs", self.preprocessor),
            (self.augmentations, _Outputs(self.preprocessor.output_ports), names["preprocessor"],
             self.encoder),
        ]
        for chain, source, source_name, consumer in chains:
            augmentation: Any
            for augmentation, key in zip(chain.items, chain.keys, strict=True):
                name = f"model.augmentations ({key})"
                connect(
                    source,
                    augmentation,
                    mapping=_positional(source, augmentation),
                    producer_name=source_name,
                    consumer_name=name,
                )
                # the augmented signal replaces the source's first output
                signal = dict(list(augmentation.output_ports.items())[:1])
                view = _Outputs({**signal, **dict(list(source.output_ports.items())[1:])})
                connect(
                    view,
                    consumer,
                    mapping=_positional(view, consumer),
                    producer_name=name,
                    consumer_name=type(consumer).__name__,
                )

    # ------------------------------------------------------------------ vocabulary
    def _setup_tokenizer(self, tokenizer_cfg: Any) -> None:
        plain = to_plain(tokenizer_cfg)
        node = {"name": plain} if isinstance(plain, str) else dict(plain)
        self.cfg.tokenizer = node
        if node.get("model_path"):  # a tokenizer file travels inside the archive
            node["model_path"] = self.register_artifact(
                "tokenizer.model_path", node["model_path"]
            )
        self.tokenizer: Tokenizer = build("tokenizers", node, path="model.tokenizer")
        # character tokenizers name the characters transcripts may hold; sub-word ones take any
        self.normalizer = TextNormalizer(
            getattr(self.tokenizer, "alphabet", None),
            numbers_to_words=bool(self.cfg.get("numbers_to_words", True)),
        )

    @property
    def blank_id(self) -> int:
        return self.tokenizer.vocab_size

    def change_vocabulary(self, tokenizer_cfg: Mapping[str, Any]) -> None:
        """Use a new alphabet or tokenizer: a fresh CTC head, the encoder weights kept."""
        self._artifacts.pop("tokenizer.model_path", None)
        self._setup_tokenizer(
            rename_legacy_type(
                OmegaConf.create(dict(tokenizer_cfg)),
                path="tokenizer",
                names=LEGACY_TOKENIZER_NAMES,
                removed_in=_REMOVED_IN,
            )
        )
        self.decoder = self._build_head()
        log.info(
            "vocabulary changed: %d tokens; the CTC head was re-initialized",
            self.tokenizer.vocab_size,
        )

    # ------------------------------------------------------------------ ports
    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        """What the preprocessor takes: waveforms (B, T) for a mel preprocessor, or precomputed
        features (B, T, F) for one such as ``kaldi/feature_input``."""
        declared = list(getattr(self.preprocessor, "input_ports", {}).values())
        if len(declared) >= 2:
            return {"audio_signal": declared[0], "length": declared[1]}
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
        if self.training and len(self.audio_augmentations):
            audio_signal = self.audio_augmentations(audio_signal, length)
        spec, spec_len = self.preprocessor(audio_signal, length)  # (B, F, T_spec)
        if self.training and len(self.augmentations):
            spec = self.augmentations(spec, spec_len)
        encoded, encoded_len = self.encoder(spec, spec_len)  # (B, D, T')
        log_probs = self.decoder(encoded)  # (B, T', V)
        return log_probs, encoded_len

    @property
    def frame_shift_s(self) -> float:
        """Seconds between two output frames (hop length times the encoder's time stride)."""
        hop = float(getattr(self.preprocessor, "frame_shift_s", 0.01))
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

    def change_decoding(self, node: Mapping[str, Any] | DictConfig) -> Decoder:
        """Use another decoder from now on, e.g. beam search with an n-gram LM.

        Example:
            >>> model.change_decoding({"name": "asr/beam_kenlm", "lm": "lm.bin", "alpha": 0.8})

        The node is built like the config's ``decoding`` node (the model supplies ``blank_id``
        and ``tokenizer``). The saved config keeps its own ``decoding``: an archive never refers
        to an LM file outside it.

        Returns:
            The new decoder (also ``self.decoding``).

        Raises:
            ConfigError: unknown decoder key or a bad argument (named with ``decoding``).
        """
        self.decoding = build(
            "decoders",
            node,
            path="decoding",
            context={"blank_id": self.blank_id, "tokenizer": self.tokenizer},
        )
        return self.decoding

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Decode with the configured decoder to text. Shapes: log_probs (B, T', V), lengths (B,)."""
        return [self.tokenizer.decode(h.token_ids) for h in self.decoding(log_probs, lengths)]

    # ------------------------------------------------------------------ data
    def build_dataloader(self, data_cfg: DictConfig, split: str) -> DataLoader[Any] | None:
        world, rank = 1, 0
        if self._trainer is not None:
            world, rank = self.trainer.world_size, self.trainer.global_rank
        built = build_audio_loader(
            data_cfg,
            path=f"model.{self.DATA_SECTIONS[split]}",
            context={
                "tokenizer": self.tokenizer,
                "normalizer": self.normalizer,
                "sample_rate": self.sample_rate,
            },
            default_shuffle=split == "train",
            num_replicas=world,
            rank=rank,
        )
        if built is None:
            return None
        loader, sampler = built
        if split == "train":
            self._restore_sampler(sampler)
            self._train_sampler = sampler
        return loader

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
        """Decoded text and word timestamps of one utterance. Shapes: log_probs (T', V)."""
        hyp = self.decoding(log_probs[None], torch.tensor([length]))[0]
        pieces = [self.tokenizer.tokens[i] for i in hyp.token_ids]
        starts = self.tokenizer.word_boundaries(hyp.token_ids)
        words = word_timestamps(hyp, pieces, starts, self.frame_shift_s)
        return self.tokenizer.decode(hyp.token_ids), words
