"""``tts/tacotron2``: the autoregressive acoustic model of Shen et al. (2018), sized as in NVIDIA's
Tacotron 2 (about 28M parameters with the shipped config).

Symbols -> embedding -> encoder (3 convolutions + a bidirectional LSTM) -> memory. A decoder
writes one log-mel frame per step: the previous frame through the prenet, an attention LSTM cell,
location-sensitive attention over the memory, a decoder LSTM cell, and linear projections to the
frame and to a stop gate. A convolutional postnet adds a residual to the whole spectrogram.
Training is teacher-forced (each step reads the previous *real* frame) and learns the alignment
itself, so the data needs no durations: a manifest of clips with their symbols or text
(:class:`~convai_tts.data.text_mel.TextMelDataset`). Loss: MSE of the mel before and after the
postnet plus binary cross-entropy of the stop gate, masked to the real frames.

Inference runs the decoder on its own output until the gate's probability passes
``gate_threshold`` or ``max_decoder_steps`` frames are written, each item of a batch on its own.
The prenet's dropout stays on at inference, as in the paper, so two runs differ slightly: pass
``seed`` to :meth:`Tacotron2Model.forward` / :meth:`~Tacotron2Model.mels` for repeatable
output, or set ``prenet.at_inference: false``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional
from torch.utils.data import DataLoader

from convai_core.components import build
from convai_core.config_utils import check_keys, to_plain
from convai_core.errors import ConfigError
from convai_core.models.base import ModelBase
from convai_core.types import (
    Axis,
    AxisKind,
    EncodedRepresentation,
    Lengths,
    Logits,
    Mask,
    MelSpectrogram,
    NeuralType,
    Probs,
    TokenIds,
)
from convai_tts.audio import MelConfig
from convai_tts.modules.tacotron2 import (
    DecoderState,
    Postnet,
    Tacotron2Decoder,
    Tacotron2Encoder,
    padding_mask,
)

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from convai_core.export_spec import ExportSpec

__all__ = ["EXPORT_PARTS", "Tacotron2Model"]

#: The graphs :meth:`Tacotron2Model.export_spec` makes, selected with ``part=``.
EXPORT_PARTS = ("encoder", "decoder", "postnet")

_DATA_KEYS = (
    "manifest", "batch_size", "shuffle", "max_duration", "skip_bad", "num_workers",
    "trim_silence", "trim_db",
)  # fmt: skip
_MODEL_KEYS = {
    "name", "frontend", "mel", "symbols_embedding_dim", "encoder", "attention", "decoder",
    "prenet", "postnet", "gate_threshold", "max_decoder_steps", "grad_clip_norm", "optim",
    "train_ds", "validation_ds", "test_ds",
}  # fmt: skip
#: The sections of layer sizes and their defaults (the paper's).
# fmt: off
_SECTIONS: dict[str, dict[str, Any]] = {
    "encoder": {"channels": 512, "convs": 3, "kernel": 5, "dropout": 0.5, "lstm_hidden": 256},
    "attention": {"rnn_dim": 1024, "dim": 128, "location_filters": 32, "location_kernel": 31,
                  "dropout": 0.1},
    "decoder": {"rnn_dim": 1024, "dropout": 0.1},
    "prenet": {"dim": 256, "layers": 2, "dropout": 0.5, "at_inference": True},
    "postnet": {"channels": 512, "kernel": 5, "layers": 5, "dropout": 0.5},
}
# fmt: on
_STATE_NAMES = (
    "attention_hidden",
    "attention_cell",
    "decoder_hidden",
    "decoder_cell",
    "attention_weights",
    "cumulative_weights",
    "context",
)
_EXAMPLE_SENTENCES = ("Hello there, how are you today?", "The quick brown fox jumps.")


class Tacotron2Model(ModelBase):
    """Tacotron 2; see the module docstring.

    Config keys: ``frontend`` (a tokenizer node, default ``tts/english_phonemes``; the symbol
    inventory and embedding size come from it), ``mel`` (:class:`~convai_tts.audio.MelConfig`
    keys), ``symbols_embedding_dim``, ``encoder`` (``channels``, ``convs``, ``kernel``,
    ``dropout``, ``lstm_hidden``), ``attention`` (``rnn_dim``, ``dim``, ``location_filters``,
    ``location_kernel``, ``dropout``), ``decoder`` (``rnn_dim``, ``dropout``), ``prenet``
    (``dim``, ``layers``, ``dropout``, ``at_inference``), ``postnet`` (``channels``, ``kernel``,
    ``layers``, ``dropout``), ``gate_threshold``, ``max_decoder_steps``, ``grad_clip_norm``
    (gradient norm clipping when the trainer sets none; null: none), ``optim`` and the data
    sections ``train_ds`` / ``validation_ds`` / ``test_ds`` (``manifest``, ``batch_size``,
    ``shuffle``, ``max_duration``, ``skip_bad``, ``num_workers``, ``trim_silence``,
    ``trim_db``).
    """

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        c = self.cfg
        check_keys("model", c, _MODEL_KEYS)
        self.mel_config = MelConfig.from_mapping(to_plain(c.get("mel")) or {})
        self.cfg.mel = self.mel_config.to_dict()
        self._log_floor = self.mel_config.log_floor  # a float: a constant in exported graphs
        sizes = {name: self._section(name) for name in _SECTIONS}
        self.gate_threshold = float(c.get("gate_threshold", 0.5))
        self.max_decoder_steps = int(c.get("max_decoder_steps", 1000))
        if self.max_decoder_steps < 1:
            raise ConfigError(
                f"model.max_decoder_steps must be at least 1, got {self.max_decoder_steps}"
            )
        if not 0.0 < self.gate_threshold < 1.0:
            raise ConfigError(
                f"model.gate_threshold is a probability between 0 and 1 (0.5 in the paper), "
                f"got {self.gate_threshold}"
            )
        clip = c.get("grad_clip_norm", 1.0)
        self.grad_clip_norm = float(clip) if clip is not None else None

        self._frontend: Any = None
        frontend = dict(to_plain(c.get("frontend")) or {})
        self.cfg.frontend = {"name": "tts/english_phonemes", **frontend}
        lexicon = frontend.get("lexicon")
        if lexicon and not str(lexicon).startswith("archive:"):
            self.register_artifact("frontend.lexicon", lexicon)

        for section, key in (("encoder", "kernel"), ("attention", "location_kernel"),
                             ("postnet", "kernel")):  # fmt: skip
            if int(sizes[section][key]) % 2 == 0:
                raise ConfigError(
                    f"model.{section}.{key}={sizes[section][key]} must be odd (a centred "
                    "convolution keeps one output per step)"
                )
        embedding_dim = int(c.get("symbols_embedding_dim", 512))
        self.embedding = nn.Embedding(int(self.frontend.vocab_size), embedding_dim, padding_idx=0)
        enc = sizes["encoder"]
        self.encoder = Tacotron2Encoder(
            embedding_dim, int(enc["channels"]), int(enc["convs"]), int(enc["kernel"]),
            float(enc["dropout"]), int(enc["lstm_hidden"]),
        )  # fmt: skip
        att, dec, pre = sizes["attention"], sizes["decoder"], sizes["prenet"]
        self.decoder = Tacotron2Decoder(
            self.mel_config.n_mels,
            self.encoder.output_dim,
            prenet_dim=int(pre["dim"]),
            prenet_layers=int(pre["layers"]),
            prenet_dropout=float(pre["dropout"]),
            prenet_at_inference=bool(pre["at_inference"]),
            attention_rnn_dim=int(att["rnn_dim"]),
            attention_dim=int(att["dim"]),
            location_filters=int(att["location_filters"]),
            location_kernel=int(att["location_kernel"]),
            attention_dropout=float(att["dropout"]),
            decoder_rnn_dim=int(dec["rnn_dim"]),
            decoder_dropout=float(dec["dropout"]),
        )
        post = sizes["postnet"]
        self.postnet = Postnet(
            self.mel_config.n_mels, int(post["channels"]), int(post["kernel"]),
            int(post["layers"]), float(post["dropout"]),
        )  # fmt: skip

    def _section(self, name: str) -> dict[str, Any]:
        given = dict(to_plain(self.cfg.get(name)) or {})
        check_keys(f"model.{name}", given, set(_SECTIONS[name]))
        merged = {**_SECTIONS[name], **given}
        self.cfg[name] = merged
        return merged

    # ------------------------------------------------------------------ text
    @property
    def frontend(self) -> Any:
        """The text frontend (built from ``cfg.frontend``); it fixes the symbol ids."""
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
    def encode(
        self, symbols: torch.Tensor, symbol_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The memory the decoder attends to, its projection, and the padding mask.

        Shapes:
            symbols: (B, T), symbol_lengths: (B,); returns memory (B, T, 2 * lstm_hidden),
            processed memory (B, T, attention dim) and padding (B, T) bool.
        """
        memory = self.encoder(self.embedding(symbols), symbol_lengths)
        processed = self.decoder.attention.process_memory(memory)
        return memory, processed, padding_mask(symbol_lengths, symbols.shape[1])

    def refine(
        self, mel: torch.Tensor, mel_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's mel with the silence floor on padding, and the same plus the postnet's
        residual.

        Shapes:
            mel: (B, n_mels, F), mel_lengths: (B,); returns two (B, n_mels, F).
        """
        pad = padding_mask(mel_lengths, mel.shape[2])
        floor = torch.full_like(mel, self._log_floor)
        before = torch.where(pad.unsqueeze(1), floor, mel)
        after = torch.where(pad.unsqueeze(1), floor, before + self.postnet(before, pad))
        return before, after

    def forward(
        self, symbols: torch.Tensor, symbol_lengths: torch.Tensor, seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference: symbols (B, T) and their lengths -> log-mel after the postnet
        (B, n_mels, F), the silence floor after each item's end, and frame counts (B,).

        Args:
            seed: draw the prenet's dropout masks from a generator seeded with this (the same
                seed, the same output); None uses torch's global generator.
        """
        memory, processed, pad = self.encode(symbols, symbol_lengths)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=memory.device).manual_seed(int(seed))
        frames, mel_lengths, _ = self.decoder.infer(
            memory, processed, pad, self.max_decoder_steps, self.gate_threshold, generator
        )
        _, mel = self.refine(frames, mel_lengths)
        return mel, mel_lengths

    def teacher_forced(
        self, batch: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The model's outputs when each step reads the previous real frame.

        Shapes:
            batch: see :func:`~convai_tts.data.text_mel.collate_text_mel`; returns mel before
            and after the postnet (B, n_mels, F), gate logits (B, F) and attention weights
            (B, F, T).
        """
        memory, processed, pad = self.encode(batch["symbols"], batch["symbol_lengths"])
        frames, gate, alignments = self.decoder(memory, processed, pad, batch["mel"])
        before, after = self.refine(frames, batch["mel_lengths"])
        return before, after, gate, alignments

    def losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``loss`` = ``mel_loss`` (MSE before + after the postnet, over the real frames) +
        ``gate_loss`` (binary cross-entropy of the stop gate over every frame of the batch: the
        padding after an utterance's end counts as "stop", as in NVIDIA's recipe, so the gate
        sees more than one positive frame per utterance)."""
        before, after, gate, _ = self.teacher_forced(batch)
        target = batch["mel"]
        keep = (~padding_mask(batch["mel_lengths"], target.shape[2])).to(target.dtype)
        frames = keep.sum()
        count = frames * target.shape[1]
        mel_before = (((before - target) ** 2) * keep.unsqueeze(1)).sum() / count
        mel_after = (((after - target) ** 2) * keep.unsqueeze(1)).sum() / count
        gate_loss = functional.binary_cross_entropy_with_logits(
            gate, batch["gate"].to(gate.dtype), reduction="none"
        )
        gate_loss = gate_loss.mean()
        return {
            "loss": mel_before + mel_after + gate_loss,
            "mel_loss": mel_before + mel_after,
            "mel_loss_before": mel_before,
            "mel_loss_after": mel_after,
            "gate_loss": gate_loss,
        }

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch)
        size = int(batch["symbols"].shape[0])
        self.log("train_loss", losses["loss"], prog_bar=True, batch_size=size)
        self.log("train_mel_loss", losses["mel_loss"], batch_size=size)
        self.log("train_gate_loss", losses["gate_loss"], batch_size=size)
        return losses["loss"]

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        losses = self.losses(batch)
        size = int(batch["symbols"].shape[0])
        self.log("val_loss", losses["loss"], prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val_mel_loss", losses["mel_loss"], batch_size=size, sync_dist=True)
        self.log("val_gate_loss", losses["gate_loss"], batch_size=size, sync_dist=True)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: int | float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip by the trainer's ``gradient_clip_val`` when it sets one, else by the model's
        ``grad_clip_norm`` (the gradient norm; 1.0 in the guide's recipe)."""
        if gradient_clip_val is None and self.grad_clip_norm:
            gradient_clip_val = self.grad_clip_norm
            gradient_clip_algorithm = gradient_clip_algorithm or "norm"
        self.clip_gradients(
            optimizer,
            gradient_clip_val=gradient_clip_val,
            gradient_clip_algorithm=gradient_clip_algorithm,
        )

    # ------------------------------------------------------------------ data
    def build_dataloader(self, data_cfg: DictConfig, split: str) -> DataLoader[Any] | None:
        from convai_tts.data.text_mel import TextMelDataset, collate_text_mel
        from convai_tts.models.fastpitch import _LengthBuckets

        plain = dict(to_plain(data_cfg) or {})
        section = f"model.{self.DATA_SECTIONS[split]}"
        check_keys(section, plain, set(_DATA_KEYS))
        if not plain.get("manifest"):
            if split == "train":
                raise ConfigError(
                    f"{section}.manifest is missing: set it to a manifest of clips with their "
                    "symbols or text"
                )
            return None
        dataset = TextMelDataset(
            plain["manifest"],
            self.frontend,
            self.mel_config,
            max_duration=plain.get("max_duration"),
            skip_bad=bool(plain.get("skip_bad", False)),
            trim_silence=bool(plain.get("trim_silence", False)),
            trim_db=float(plain.get("trim_db", 40.0)),
        )
        if dataset.skipped:
            print(f"{section}: skipped {dict(dataset.skipped)} of {plain['manifest']}")
        batch_size = int(plain.get("batch_size", 16))
        shuffle = bool(plain.get("shuffle", split == "train"))
        sampler = _LengthBuckets(
            [dataset.frames(i) for i in range(len(dataset))], batch_size, shuffle
        )
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate_text_mel,
            num_workers=int(plain.get("num_workers", 0)),
        )

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def mels(self, text: str, pace: float = 1.0, seed: int | None = None) -> Iterator[torch.Tensor]:
        """Log-mel spectrograms (n_mels, F) of ``text``, one per sentence, in order.

        Args:
            text: raw text (the frontend normalizes and splits it).
            pace: > 1 speaks faster: the spectrogram is stretched in time by linear
                interpolation (an autoregressive decoder has no durations to scale).
            seed: repeatable prenet dropout (see :meth:`forward`); sentence ``i`` uses
                ``seed + i``.
        """
        if pace <= 0:
            raise ConfigError(f"pace must be positive, got {pace}")
        self.eval()
        frontend = self.frontend
        for index, symbols in enumerate(frontend.sentences(text)):
            ids = torch.tensor([frontend.symbols_to_ids(symbols)], device=self.device)
            lengths = torch.tensor([ids.shape[1]], device=self.device)
            mel, mel_lengths = self(ids, lengths, None if seed is None else seed + index)
            mel = mel[0, :, : int(mel_lengths[0])]
            if pace != 1.0:
                frames = max(1, round(mel.shape[1] / pace))
                mel = functional.interpolate(
                    mel.unsqueeze(0), size=frames, mode="linear", align_corners=True
                )[0]
            yield mel

    # ------------------------------------------------------------------ export
    def export_spec(self, part: str | None = None, **options: Any) -> ExportSpec:
        """One of the three graphs a runtime chains (``part``: ``encoder``, ``decoder`` or
        ``postnet``), each verified against this model on its own.

        An autoregressive loop is not one graph: like other deployment stacks, convai exports
        the encoder, one decoder step and the postnet, and the runtime loops the step::

            memory, processed_memory = encoder(symbols, symbol_lengths)
            state = zeros: attention_hidden / attention_cell (B, attention.rnn_dim),
                    decoder_hidden / decoder_cell (B, decoder.rnn_dim),
                    attention_weights / cumulative_weights (B, T), context (B, memory_dim)
            frame = zeros (B, n_mels)
            for step in range(max_decoder_steps):
                prenet_keep = bernoulli(1 - p, (B, prenet_keep_size)) / (1 - p)  # ones: no dropout
                frame, gate_logit, *state = decoder(frame, *state, memory, processed_memory,
                                                    symbol_lengths, prenet_keep)
                keep the frame; an item ends at the first step with sigmoid(gate_logit) >
                gate_threshold (that frame included); stop when every item has ended
            mel = postnet(decoder_mel=frames stacked on the last axis (B, n_mels, F), mel_lengths)

        The sizes, ``p``, ``gate_threshold`` and ``max_decoder_steps`` are in the spec's
        metadata.

        Raises:
            ExportError: no or an unknown ``part``, or other options.
        """
        from convai_core.errors import ExportError

        if options:
            raise ExportError(
                f"tts/tacotron2 takes only the export option part; got {sorted(options)}"
            )
        if part not in EXPORT_PARTS:
            raise ExportError(
                f"tts/tacotron2 exports in parts (an autoregressive loop is not one graph): pass "
                f"part=encoder, part=decoder or part=postnet (--option part=...); got {part!r}"
            )
        self.eval()
        if part == "encoder":
            return self._encoder_spec()
        if part == "decoder":
            return self._decoder_spec()
        return self._postnet_spec()

    def _export_metadata(self, part: str) -> dict[str, Any]:
        decoder = self.decoder
        prenet = decoder.prenet
        return {
            "part": part,
            "parts": list(EXPORT_PARTS),
            "symbols": list(self.frontend.tokens),
            "mel": self.mel_config.to_dict(),
            "n_mels": self.mel_config.n_mels,
            "gate_threshold": self.gate_threshold,
            "max_decoder_steps": self.max_decoder_steps,
            "memory_dim": decoder.memory_dim,
            "attention_rnn_dim": decoder.attention_rnn.hidden_size,
            "decoder_rnn_dim": decoder.decoder_rnn.hidden_size,
            "prenet_keep_size": decoder.prenet_keep_size,
            "prenet_dropout": prenet.dropout if prenet.at_inference else 0.0,
            "state": list(_STATE_NAMES),
        }

    def _real_ids(self, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Symbols of real sentences repeated to ``length`` (items of different lengths)."""
        from convai_core.export_spec import item_lengths

        frontend = self.frontend
        sentences = [frontend.symbols_to_ids(frontend.phonemize(s)) for s in _EXAMPLE_SENTENCES]
        lengths = item_lengths(batch, length)
        ids = torch.zeros(batch, length, dtype=torch.long)
        for row, n in enumerate(lengths):
            source = sentences[row % len(sentences)]
            ids[row, :n] = torch.tensor((source * (n // len(source) + 1))[:n])
        return ids, torch.tensor(lengths)

    def _random_ids(self, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        from convai_core.export_spec import item_lengths

        lengths = item_lengths(batch, length)
        generator = torch.Generator().manual_seed(1000 * batch + length)
        ids = torch.zeros(batch, length, dtype=torch.long)
        vocab = int(self.frontend.vocab_size)
        for row, n in enumerate(lengths):
            ids[row, :n] = torch.randint(1, vocab, (n,), generator=generator)
        return ids, torch.tensor(lengths)

    def _encoder_spec(self) -> ExportSpec:
        from convai_core.export_spec import ExportSpec

        model = self

        class _Encoder(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = model

            def forward(self, symbols: torch.Tensor, lengths: torch.Tensor) -> Any:
                memory, processed, _ = self.inner.encode(symbols, lengths)
                return memory, processed

        def make_inputs(batch: int, length: int, kind: str) -> tuple[torch.Tensor, ...]:
            return (
                self._real_ids(batch, length) if kind == "real" else self._random_ids(batch, length)
            )

        b, t = Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN)
        memory_dim = Axis(AxisKind.CHANNEL, self.decoder.memory_dim)
        attention_dim = Axis(AxisKind.CHANNEL, self.decoder.attention.memory.out_features)
        return ExportSpec(
            name="tts_tacotron2_encoder",
            module=_Encoder().eval(),
            input_ports=self.input_ports,
            output_ports={
                "memory": NeuralType((b, t, memory_dim), EncodedRepresentation()),
                "processed_memory": NeuralType((b, t, attention_dim), EncodedRepresentation()),
            },
            make_inputs=make_inputs,
            verify_lengths=(12, 40),
            dim_bounds={"token": (1, int(getattr(self.frontend, "max_symbols", 400)))},
            metadata=self._export_metadata("encoder"),
        )

    def _decoder_spec(self) -> ExportSpec:
        from convai_core.export_spec import ExportSpec, item_lengths

        decoder = self.decoder

        class _DecoderStep(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = decoder

            def forward(
                self,
                frame: torch.Tensor,
                attention_hidden: torch.Tensor,
                attention_cell: torch.Tensor,
                decoder_hidden: torch.Tensor,
                decoder_cell: torch.Tensor,
                attention_weights: torch.Tensor,
                cumulative_weights: torch.Tensor,
                context: torch.Tensor,
                memory: torch.Tensor,
                processed_memory: torch.Tensor,
                memory_lengths: torch.Tensor,
                prenet_keep: torch.Tensor,
            ) -> Any:
                state = DecoderState(
                    attention_hidden, attention_cell, decoder_hidden, decoder_cell,
                    attention_weights, cumulative_weights, context,
                )  # fmt: skip
                pad = padding_mask(memory_lengths, memory.shape[1])
                prenet_out = self.inner.prenet(frame, prenet_keep)
                new_frame, gate, new_state = self.inner.step(
                    prenet_out, state, memory, processed_memory, pad
                )
                return (new_frame, gate, *new_state)

        def make_inputs(batch: int, length: int, kind: str) -> tuple[torch.Tensor, ...]:
            generator = torch.Generator().manual_seed(7 * batch + length)
            keep = decoder.prenet.draw_keep(batch, generator)
            if kind == "real":  # the state after a few steps on real sentences
                ids, lengths = self._real_ids(batch, length)
                with torch.no_grad():
                    memory, processed, pad = self.encode(ids, lengths)
                    state = decoder.initial_state(memory)
                    frame = memory.new_zeros(batch, decoder.n_mels)
                    for _ in range(3):
                        step_keep = decoder.prenet.draw_keep(batch, generator)
                        frame, _, state = decoder.step(
                            decoder.prenet(frame, step_keep), state, memory, processed, pad
                        )
                return (frame, *state, memory, processed, lengths, keep)

            def normal(*shape: int, scale: float = 1.0) -> torch.Tensor:
                return scale * torch.randn(*shape, generator=generator)

            lengths = torch.tensor(item_lengths(batch, length))
            pad = padding_mask(lengths, length)
            weights = torch.softmax(normal(batch, length).masked_fill(pad, float("-inf")), dim=1)
            attention = decoder.attention_rnn.hidden_size
            rnn = decoder.decoder_rnn.hidden_size
            memory = normal(batch, length, decoder.memory_dim, scale=0.5)
            processed = decoder.attention.process_memory(memory).detach()
            return (
                normal(batch, decoder.n_mels, scale=2.0) - 5.0,
                normal(batch, attention, scale=0.3), normal(batch, attention),
                normal(batch, rnn, scale=0.3), normal(batch, rnn),
                weights, weights * 4.0, normal(batch, decoder.memory_dim, scale=0.5),
                memory, processed, lengths, keep,
            )  # fmt: skip

        b, t = Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN)
        mel = NeuralType((b, Axis(AxisKind.MEL, decoder.n_mels)), MelSpectrogram())

        def channels(size: int) -> NeuralType:
            return NeuralType((b, Axis(AxisKind.CHANNEL, size)), EncodedRepresentation())

        weights = NeuralType((b, t), Probs())
        state_types = [
            channels(decoder.attention_rnn.hidden_size),
            channels(decoder.attention_rnn.hidden_size),
            channels(decoder.decoder_rnn.hidden_size),
            channels(decoder.decoder_rnn.hidden_size),
            weights,
            weights,
            channels(decoder.memory_dim),
        ]
        attention_dim = decoder.attention.memory.out_features
        inputs: dict[str, NeuralType] = {"frame": mel}
        inputs.update(zip(_STATE_NAMES, state_types, strict=True))
        inputs.update(
            {
                "memory": NeuralType(
                    (b, t, Axis(AxisKind.CHANNEL, decoder.memory_dim)), EncodedRepresentation()
                ),
                "processed_memory": NeuralType(
                    (b, t, Axis(AxisKind.CHANNEL, attention_dim)), EncodedRepresentation()
                ),
                "memory_lengths": NeuralType((b,), Lengths()),
                "prenet_keep": NeuralType(
                    (b, Axis(AxisKind.CHANNEL, decoder.prenet_keep_size)), Mask()
                ),
            }
        )
        outputs: dict[str, NeuralType] = {
            "next_frame": mel,
            "gate_logit": NeuralType((b,), Logits()),
        }
        outputs.update(
            (f"next_{name}", ntype) for name, ntype in zip(_STATE_NAMES, state_types, strict=True)
        )
        return ExportSpec(
            name="tts_tacotron2_decoder",
            module=_DecoderStep().eval(),
            input_ports=inputs,
            output_ports=outputs,
            make_inputs=make_inputs,
            verify_lengths=(12, 40),
            dim_bounds={"token": (1, int(getattr(self.frontend, "max_symbols", 400)))},
            metadata=self._export_metadata("decoder"),
        )

    def _postnet_spec(self) -> ExportSpec:
        from convai_core.export_spec import ExportSpec, item_lengths

        model = self

        class _Postnet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = model

            def forward(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> Any:
                _, after = self.inner.refine(mel, mel_lengths)
                return after

        def make_inputs(batch: int, length: int, kind: str) -> tuple[torch.Tensor, ...]:
            lengths = torch.tensor(item_lengths(batch, length))
            if kind == "real":  # the decoder's own frames for real sentences
                ids, symbol_lengths = self._real_ids(batch, 24)
                generator = torch.Generator().manual_seed(batch + length)
                with torch.no_grad():
                    memory, processed, pad = self.encode(ids, symbol_lengths)
                    frames, _, _ = self.decoder.infer(
                        memory, processed, pad, length, gate_threshold=2.0, generator=generator
                    )
                return frames, lengths
            generator = torch.Generator().manual_seed(batch + length)
            noise = torch.randn(batch, self.mel_config.n_mels, length, generator=generator)
            return 2.0 * noise - 5.0, lengths

        b = Axis(AxisKind.BATCH)
        mel = NeuralType(
            (b, Axis(AxisKind.MEL, self.mel_config.n_mels), Axis(AxisKind.TIME)), MelSpectrogram()
        )
        return ExportSpec(
            name="tts_tacotron2_postnet",
            module=_Postnet().eval(),
            input_ports={"decoder_mel": mel, "mel_lengths": NeuralType((b,), Lengths())},
            output_ports={"mel": mel},
            make_inputs=make_inputs,
            verify_lengths=(24, 80),
            dim_bounds={"time": (1, 1 << 16)},  # a runtime may decode past max_decoder_steps
            metadata=self._export_metadata("postnet"),
        )
