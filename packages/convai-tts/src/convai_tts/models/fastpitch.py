"""``tts/fastpitch``: a non-autoregressive acoustic model (FastSpeech/FastPitch family) that
trains on a CPU from symbols with known durations.

Symbols -> embedding -> encoder (feed-forward Transformer blocks) -> each vector repeated for its
frames (teacher durations in training, predicted ones at inference) -> decoder blocks -> a linear
layer to log-mel frames. A duration predictor learns ``log(frames + 1)`` per symbol from the
encoder's output (its gradient does not flow into the encoder). Loss: L1 + L2 on the mel frames
and MSE on log durations, all masked to the real lengths. A vocoder turns the mel into audio:
:class:`~convai_tts.audio.GriffinLim` needs no training.

With ``pitch.enabled`` the model is FastPitch proper: each symbol's mean F0 over its voiced
frames (YIN, :func:`~convai_tts.audio.pitch_track`), normalized by the training data's mean and
standard deviation of voiced symbols, is predicted from the encoder's output like the duration,
and a one-dimensional convolution of it (the teacher's pitch in training, the predicted one at
inference) is added to the symbol vectors before they are repeated. Inference can then shift the
voice's pitch (``pitch_shift`` semitones).

With ``reduction_factor`` r > 1 the decoder runs at 1/r of the frame rate: each group of r frame
vectors is averaged into one decoder input, and each decoder output is projected to r mel frames
(the "reduction factor" of Tacotron and of ESPnet's FastSpeech 2). Most of a step's work is the
decoder over frames, so r = 2 makes a CPU step about half as long.

The symbol inventory (the embedding's size) is the frontend's: ``tts/english_phonemes`` (ARPAbet)
or ``tts/mandarin_pinyin`` (initials, finals, tones).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader, Sampler

from convai_core.components import build
from convai_core.config_utils import check_keys, to_plain
from convai_core.errors import ConfigError
from convai_core.models.base import ModelBase
from convai_core.types import Axis, AxisKind, Lengths, MelSpectrogram, NeuralType, TokenIds
from convai_tts.audio import MelConfig
from convai_tts.modules.fastspeech import DurationPredictor, FFTStack, regulate_length

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from convai_core.export_spec import ExportSpec
    from convai_tts.text.frontend import EnglishPhonemizer

__all__ = ["FastPitchModel"]

_DATA_KEYS = ("manifest", "batch_size", "shuffle", "max_duration", "skip_bad", "num_workers")
_MODEL_KEYS = {
    "name", "frontend", "mel", "d_model", "heads", "encoder_layers", "decoder_layers", "ff_dim",
    "kernel", "dropout", "decoder_dropout", "duration_predictor", "duration_loss_weight", "optim",
    "pitch", "pitch_stats", "train_ds", "validation_ds", "test_ds", "reduction_factor",
}  # fmt: skip
#: Sentences an export is verified on (a frontend may name its own: ``EXAMPLE_SENTENCES``).
_EXAMPLES = ("Hello there, how are you today?", "The quick brown fox jumps.")
_PITCH_KEYS = {"enabled", "hidden", "kernel", "dropout", "loss_weight", "embedding_kernel"}


class _LengthBuckets(Sampler[list[int]]):
    """Batches of similar length: shuffled, then sorted by frames inside windows of 50 batches,
    so padding stays small while the order still changes every epoch."""

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(len(self.lengths)))
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        if self.shuffle:
            rng.shuffle(order)
        window = self.batch_size * 50
        batches: list[list[int]] = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=self.lengths.__getitem__)
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        if self.shuffle:
            rng.shuffle(batches)
        return iter(batches)

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


class FastPitchModel(ModelBase):
    """Duration-based acoustic model; see the module docstring.

    Config keys: ``frontend`` (a tokenizer node, default ``tts/english_phonemes``), ``mel``
    (:class:`~convai_tts.audio.MelConfig` keys), ``d_model``, ``heads``, ``encoder_layers``,
    ``decoder_layers``, ``ff_dim``, ``kernel``, ``dropout``, ``decoder_dropout`` (default:
    ``dropout``), ``duration_predictor`` (``hidden``,
    ``kernel``, ``dropout``), ``duration_loss_weight``, ``reduction_factor`` (mel frames per
    decoder step, default 1), ``optim`` and the data sections
    ``train_ds`` / ``validation_ds`` (``manifest``, ``batch_size``, ``shuffle``,
    ``max_duration``, ``skip_bad``).
    """

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        c = self.cfg
        check_keys("model", c, _MODEL_KEYS)
        self.mel_config = MelConfig.from_mapping(to_plain(c.get("mel")) or {})
        self.cfg.mel = self.mel_config.to_dict()
        d_model = int(c.get("d_model", 192))
        self._frontend: EnglishPhonemizer | None = None
        frontend = dict(to_plain(c.get("frontend")) or {})
        self.cfg.frontend = {"name": "tts/english_phonemes", **frontend}
        self.symbols: tuple[str, ...] = self._symbol_inventory()
        self.embedding = nn.Embedding(len(self.symbols), d_model, padding_idx=0)
        heads, ff_dim = int(c.get("heads", 2)), int(c.get("ff_dim", 384))
        kernel, dropout = int(c.get("kernel", 3)), float(c.get("dropout", 0.1))
        self.encoder = FFTStack(
            d_model, int(c.get("encoder_layers", 4)), heads, ff_dim, kernel, dropout
        )
        decoder_dropout = float(c.get("decoder_dropout", dropout))
        self.decoder = FFTStack(
            d_model, int(c.get("decoder_layers", 4)), heads, ff_dim, kernel, decoder_dropout
        )
        predictor = dict(to_plain(c.get("duration_predictor")) or {})
        check_keys("model.duration_predictor", predictor, {"hidden", "kernel", "dropout"})
        self.duration_predictor = DurationPredictor(d_model, **predictor)
        self.reduction_factor = int(c.get("reduction_factor", 1))
        if self.reduction_factor < 1:
            raise ConfigError(
                f"model.reduction_factor={self.reduction_factor}: use 1 (a decoder step per mel "
                "frame) or more (that many frames per step)"
            )
        self.mel_out = nn.Linear(d_model, self.mel_config.n_mels * self.reduction_factor)
        pitch = dict(to_plain(c.get("pitch")) or {})
        check_keys("model.pitch", pitch, _PITCH_KEYS)
        self.pitch_predictor: DurationPredictor | None = None
        self.pitch_embedding: nn.Conv1d | None = None
        if pitch.get("enabled", False):
            self.pitch_predictor = DurationPredictor(
                d_model, **{k: pitch[k] for k in ("hidden", "kernel", "dropout") if k in pitch}
            )
            width = int(pitch.get("embedding_kernel", 3))
            if width % 2 == 0:
                raise ConfigError(
                    f"model.pitch.embedding_kernel={width} must be odd (the output keeps one "
                    "value per symbol)"
                )
            self.pitch_embedding = nn.Conv1d(1, d_model, width, padding=width // 2)
        lexicon = frontend.get("lexicon")
        if lexicon and not str(lexicon).startswith("archive:"):
            self.register_artifact("frontend.lexicon", lexicon)

    # ------------------------------------------------------------------ text
    def _symbol_inventory(self) -> tuple[str, ...]:
        """The frontend's symbols by id: its class's ``SYMBOLS`` when it declares them (no
        dictionary to load), else those of a built frontend."""
        from convai_core.registry import get_registries

        node = to_plain(self.cfg.frontend)
        cls = get_registries().tokenizers.load(str(node["name"]))
        declared = getattr(cls, "SYMBOLS", None)
        if declared is not None:
            return tuple(declared)
        return tuple(self.frontend.tokens)

    @property
    def frontend(self) -> EnglishPhonemizer:
        """The text frontend (built from ``cfg.frontend`` on first use)."""
        if self._frontend is None:
            node = to_plain(self.cfg.frontend)
            self._frontend = build("tokenizers", node, path="model.frontend")
            lexicon = getattr(self._frontend, "lexicon_path", None)
            if lexicon is not None and "frontend.lexicon" not in self.artifacts:
                self.register_artifact("frontend.lexicon", lexicon)
        return self._frontend

    # ------------------------------------------------------------------ ports
    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        return {
            "symbols": NeuralType((Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN)), TokenIds()),
            "symbol_lengths": NeuralType((Axis(AxisKind.BATCH),), Lengths()),
        }

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        mel = Axis(AxisKind.MEL, self.mel_config.n_mels)
        return {
            "mel": NeuralType((Axis(AxisKind.BATCH), mel, Axis(AxisKind.TIME)), MelSpectrogram()),
            "mel_lengths": NeuralType((Axis(AxisKind.BATCH),), Lengths()),
        }

    # ------------------------------------------------------------------ model
    def _encode(self, symbols: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pad = torch.arange(symbols.shape[1], device=symbols.device)[None, :] >= lengths[:, None]
        encoded = self.encoder(self.embedding(symbols), pad)
        log_durations = self.duration_predictor(encoded.detach(), pad)
        return encoded, log_durations, pad

    def _pitch_stats(self) -> tuple[float, float]:
        stats = to_plain(self.cfg.get("pitch_stats")) or {}
        return float(stats.get("mean", 0.0)), float(stats.get("std", 1.0))

    def normalize_pitch(self, hertz: torch.Tensor) -> torch.Tensor:
        """Per-symbol F0 in Hz -> the model's pitch values (0 stays 0: unvoiced)."""
        mean, std = self._pitch_stats()
        return torch.where(hertz > 0, (hertz - mean) / std, torch.zeros_like(hertz))

    def _add_pitch(
        self, encoded: torch.Tensor, pitch: torch.Tensor, pad: torch.Tensor
    ) -> torch.Tensor:
        assert self.pitch_embedding is not None
        values = pitch.masked_fill(pad, 0.0).unsqueeze(1)  # (B, 1, T)
        return encoded + self.pitch_embedding(values).transpose(1, 2)

    def _decode(
        self, encoded: torch.Tensor, durations: torch.Tensor, max_frames: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.reduction_factor
        frames, mel_lengths = regulate_length(encoded, durations, max_frames, multiple=r)
        pad = torch.arange(frames.shape[1], device=frames.device)[None, :] >= mel_lengths[:, None]
        if r > 1:
            # decoder step j: the mean of the real frames among j*r .. j*r + r - 1 (an
            # utterance's last group may hold fewer); the frame count is a multiple of r
            batch, _, width = frames.shape
            groups = frames.reshape(batch, -1, r, width)  # (B, S, r, D)
            real = (~pad).to(frames.dtype).reshape(batch, -1, r).sum(dim=2)  # (B, S)
            inputs = groups.sum(dim=2) / real.clamp(min=1.0).unsqueeze(-1)  # (B, S, D)
            decoded = self.decoder(inputs, real == 0)
            grouped = self.mel_out(decoded)  # (B, S, r * n_mels): r frames per step
            mel = grouped.reshape(batch, -1, self.mel_config.n_mels).transpose(1, 2)
        else:
            decoded = self.decoder(frames, pad)
            mel = self.mel_out(decoded).transpose(1, 2)  # (B, n_mels, F)
        floor = self.mel_config.log_floor
        mel = torch.where(pad.unsqueeze(1), torch.full_like(mel, floor), mel)
        if max_frames is not None and mel.shape[2] > max_frames:
            mel = mel[:, :, :max_frames]  # a frame count rounded up to r: back to the target's
        return mel, mel_lengths

    def forward(
        self,
        symbols: torch.Tensor,
        symbol_lengths: torch.Tensor,
        pace: float = 1.0,
        pitch_shift: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference: symbols (B, T) and their lengths -> log-mel (B, n_mels, F) and frame
        counts (B,), with predicted durations (``pace`` > 1 speaks faster) and, with pitch
        enabled, predicted pitch (``pitch_shift`` semitones up or down)."""
        encoded, log_durations, pad = self._encode(symbols, symbol_lengths)
        if self.pitch_predictor is not None:
            predicted = self.pitch_predictor(encoded, pad)
            if pitch_shift:
                mean, std = self._pitch_stats()
                hertz = (predicted * std + mean) * 2.0 ** (pitch_shift / 12.0)
                predicted = (hertz - mean) / std
            encoded = self._add_pitch(encoded, predicted, pad)
        durations = torch.clamp(torch.round((torch.exp(log_durations) - 1.0) / pace), min=0.0)
        durations = durations.masked_fill(pad, 0.0).long()
        # every utterance gets at least one frame (an all-silent prediction is still a clip)
        durations[:, 0] = torch.clamp(durations[:, 0], min=1)
        return self._decode(encoded, durations)

    def losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        encoded, log_durations, pad = self._encode(batch["symbols"], batch["symbol_lengths"])
        pitch_loss: torch.Tensor | None = None
        if self.pitch_predictor is not None:
            target_pitch = self.normalize_pitch(batch["pitch"])
            # unlike the duration predictor's, the pitch predictor's gradient reaches the encoder
            # (as in FastPitch): intonation depends on context the encoder must learn to carry
            predicted = self.pitch_predictor(encoded, pad)
            keep_pitch = (~pad).to(encoded.dtype)
            pitch_loss = (((predicted - target_pitch) ** 2) * keep_pitch).sum() / keep_pitch.sum()
            encoded = self._add_pitch(encoded, target_pitch, pad)
        mel, mel_lengths = self._decode(encoded, batch["durations"], batch["mel"].shape[2])
        keep = (~pad).to(mel.dtype)
        target_log = torch.log(batch["durations"].to(mel.dtype) + 1.0)
        duration_loss = (((log_durations - target_log) ** 2) * keep).sum() / keep.sum()
        frames = torch.arange(mel.shape[2], device=mel.device)[None, :] < mel_lengths[:, None]
        frame_mask = frames.unsqueeze(1).to(mel.dtype)
        count = frame_mask.sum() * mel.shape[1]
        difference = (mel - batch["mel"]) * frame_mask
        l1 = difference.abs().sum() / count
        l2 = (difference**2).sum() / count
        weight = float(self.cfg.get("duration_loss_weight", 1.0))
        result = {
            "loss": l1 + l2 + weight * duration_loss,
            "mel_l1": l1,
            "duration_loss": duration_loss,
        }
        if pitch_loss is not None:
            pitch_weight = float((to_plain(self.cfg.get("pitch")) or {}).get("loss_weight", 0.1))
            result["loss"] = result["loss"] + pitch_weight * pitch_loss
            result["pitch_loss"] = pitch_loss
        return result

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch)
        size = int(batch["symbols"].shape[0])
        self.log("train_loss", losses["loss"], prog_bar=True, batch_size=size)
        self.log("train_mel_l1", losses["mel_l1"], batch_size=size)
        self.log("train_duration_loss", losses["duration_loss"], batch_size=size)
        if "pitch_loss" in losses:
            self.log("train_pitch_loss", losses["pitch_loss"], batch_size=size)
        return losses["loss"]

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        losses = self.losses(batch)
        size = int(batch["symbols"].shape[0])
        self.log("val_loss", losses["loss"], prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val_mel_l1", losses["mel_l1"], batch_size=size, sync_dist=True)
        self.log("val_duration_loss", losses["duration_loss"], batch_size=size, sync_dist=True)
        if "pitch_loss" in losses:
            self.log("val_pitch_loss", losses["pitch_loss"], batch_size=size, sync_dist=True)

    # ------------------------------------------------------------------ data
    def build_dataloader(self, data_cfg: DictConfig, split: str) -> DataLoader[Any] | None:
        from convai_tts.data.dataset import DurationDataset, collate_durations

        plain = dict(to_plain(data_cfg) or {})
        section = f"model.{self.DATA_SECTIONS[split]}"
        check_keys(section, plain, set(_DATA_KEYS))
        if not plain.get("manifest"):
            if split == "train":
                raise ConfigError(f"{section}.manifest is missing: set it to a duration manifest")
            return None
        with_pitch = self.pitch_predictor is not None
        dataset = DurationDataset(
            plain["manifest"],
            self.mel_config,
            max_duration=plain.get("max_duration"),
            skip_bad=bool(plain.get("skip_bad", False)),
            symbols=self.symbols,
            pitch=with_pitch,
        )
        if dataset.skipped:
            print(f"{section}: skipped {dict(dataset.skipped)} of {plain['manifest']}")
        if with_pitch and split == "train" and not self.cfg.get("pitch_stats"):
            mean, std = dataset.pitch_stats()
            self.cfg.pitch_stats = {"mean": mean, "std": std}
            print(f"{section}: voiced symbols' pitch {mean:.1f} Hz +- {std:.1f} (pitch_stats)")
        batch_size = int(plain.get("batch_size", 16))
        shuffle = bool(plain.get("shuffle", split == "train"))
        sampler = _LengthBuckets(
            [dataset.frames(i) for i in range(len(dataset))], batch_size, shuffle
        )
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate_durations,
            num_workers=int(plain.get("num_workers", 0)),
        )

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def mels(
        self, text: str, pace: float = 1.0, pitch_shift: float = 0.0
    ) -> Iterator[torch.Tensor]:
        """Log-mel spectrograms (n_mels, F) of ``text``, one per sentence, in order."""
        self.eval()
        frontend = self.frontend
        for symbols in frontend.sentences(text):
            ids = torch.tensor([frontend.symbols_to_ids(symbols)], device=self.device)
            lengths = torch.tensor([ids.shape[1]], device=self.device)
            mel, frames = self(ids, lengths, pace, pitch_shift)
            yield mel[0, :, : int(frames[0])]

    def export_spec(self, **options: Any) -> ExportSpec:
        """Export :meth:`forward` (symbols in, log-mel and frame counts out), checked on real
        sentences of the frontend and on random symbols."""
        from convai_core.errors import ExportError
        from convai_core.export_spec import ExportSpec, item_lengths

        if options:
            raise ExportError(f"tts/fastpitch takes no export options; got {sorted(options)}")
        frontend = self.frontend
        sentences = [
            frontend.symbols_to_ids(frontend.phonemize(s))
            for s in getattr(frontend, "EXAMPLE_SENTENCES", _EXAMPLES)
        ]

        vocab = len(self.symbols)

        def make_inputs(batch: int, length: int, kind: str) -> tuple[torch.Tensor, ...]:
            ids = torch.zeros(batch, length, dtype=torch.long)
            lengths = item_lengths(batch, length)
            generator = torch.Generator().manual_seed(1000 * batch + length)
            for row, n in enumerate(lengths):
                if kind == "real":
                    source = sentences[row % len(sentences)]
                    row_ids = (source * (n // len(source) + 1))[:n]
                    ids[row, :n] = torch.tensor(row_ids)
                else:
                    ids[row, :n] = torch.randint(1, vocab, (n,), generator=generator)
            return ids, torch.tensor(lengths)

        model = self

        class _Inference(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = model

            def forward(self, symbols: torch.Tensor, lengths: torch.Tensor) -> Any:
                return self.inner(symbols, lengths)

        self.eval()
        return ExportSpec(
            name="tts_fastpitch",
            module=_Inference().eval(),
            input_ports=self.input_ports,
            output_ports=self.output_ports,
            make_inputs=make_inputs,
            verify_lengths=(12, 40),
            dim_bounds={"token": (1, int(getattr(frontend, "max_symbols", 400)))},
            metadata={"symbols": list(self.symbols), "mel": self.mel_config.to_dict()},
            integer_outputs=("mel_lengths",),
        )
