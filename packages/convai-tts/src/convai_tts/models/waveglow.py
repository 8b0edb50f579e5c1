"""``tts/waveglow``: a flow-based vocoder (WaveGlow, Prenger et al. 2018), log-mel -> audio.

Trained by maximum likelihood on random hop-aligned crops of audio clips
(:class:`~convai_tts.data.segments.AudioSegmentDataset`) with their log-mels; at inference,
Gaussian noise and a mel run backwards through the flow (:mod:`convai_tts.modules.waveglow`).
Its mels are those of :class:`~convai_tts.audio.MelSpectrogram` (HiFi-GAN's settings by default),
so it voices the output of ``tts/fastpitch``::

    from convai_tts.synthesize import Synthesizer
    tts = Synthesizer(fastpitch, vocoder=waveglow.vocoder())

The paper's model needs GPU-days to sound good; a few CPU steps only start it learning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader

from convai_core.config_utils import check_keys, to_plain
from convai_core.errors import ConfigError
from convai_core.models.base import ModelBase
from convai_core.types import (
    AudioSignal,
    Axis,
    AxisKind,
    ElementType,
    MelSpectrogram,
    NeuralType,
)
from convai_tts.audio import MelConfig
from convai_tts.modules.waveglow import WaveGlow, flow_nll

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from convai_core.export_spec import ExportSpec

__all__ = ["WaveGlowModel", "WaveGlowVocoder"]

_DATA_KEYS = (
    "manifest", "batch_size", "segment_samples", "shuffle", "max_duration", "skip_bad",
    "num_workers",
)  # fmt: skip
_MODEL_KEYS = {
    "name", "mel", "n_flows", "n_group", "n_early_every", "n_early_size", "wn", "sigma",
    "sigma_infer", "optim", "train_ds", "validation_ds", "test_ds",
}  # fmt: skip
_WN_KEYS = {"n_layers", "n_channels", "kernel_size"}


def _positive_int(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{path}={value!r} must be a positive integer")
    return value


class WaveGlowModel(ModelBase):
    """WaveGlow vocoder; see the module docstring.

    Config keys: ``mel`` (:class:`~convai_tts.audio.MelConfig` keys; the upsampler's kernel is
    ``mel.win_length``), ``n_flows``, ``n_group`` (a divisor of ``mel.hop_length``),
    ``n_early_every``, ``n_early_size``, ``wn`` (``n_layers``, ``n_channels``, ``kernel_size``),
    ``sigma`` (of the latent Gaussian in training), ``sigma_infer`` (of the noise at inference),
    ``optim`` and the data sections ``train_ds`` / ``validation_ds`` / ``test_ds``
    (``manifest``, ``batch_size``, ``segment_samples`` (``null``: whole clips, the default of
    validation and test), ``shuffle``, ``max_duration``, ``skip_bad``, ``num_workers``).
    """

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        c = self.cfg
        check_keys("model", c, _MODEL_KEYS)
        self.mel_config = MelConfig.from_mapping(to_plain(c.get("mel")) or {})
        self.cfg.mel = self.mel_config.to_dict()
        wn = dict(to_plain(c.get("wn")) or {})
        check_keys("model.wn", wn, _WN_KEYS)
        sizes = {
            key: _positive_int(f"model.{key}", c.get(key, default))
            for key, default in (("n_flows", 12), ("n_group", 8), ("n_early_every", 4))
        }
        early_size = c.get("n_early_size", 2)
        if isinstance(early_size, bool) or not isinstance(early_size, int) or early_size < 0:
            raise ConfigError(f"model.n_early_size={early_size!r} must be an integer >= 0")
        wn_sizes = {
            key: _positive_int(f"model.wn.{key}", wn.get(key, default))
            for key, default in (("n_layers", 8), ("n_channels", 256), ("kernel_size", 3))
        }
        if wn_sizes["kernel_size"] % 2 == 0:
            raise ConfigError(f"model.wn.kernel_size={wn_sizes['kernel_size']} must be odd")
        hop = self.mel_config.hop_length
        if hop % sizes["n_group"]:
            raise ConfigError(
                f"model.n_group={sizes['n_group']} must divide model.mel.hop_length={hop} (a "
                "mel frame must cover whole groups of samples); the usual value is 8"
            )
        self.sigma = float(c.get("sigma", 1.0))
        self.sigma_infer = float(c.get("sigma_infer", 0.6))
        if self.sigma <= 0 or self.sigma_infer < 0:
            raise ConfigError(
                f"model.sigma={self.sigma} must be > 0 and model.sigma_infer="
                f"{self.sigma_infer} >= 0"
            )
        try:
            self.waveglow = WaveGlow(
                n_mels=self.mel_config.n_mels,
                hop_length=hop,
                upsample_kernel=max(self.mel_config.win_length, hop),
                n_early_size=early_size,
                **sizes,
                **wn_sizes,
            )
        except ValueError as exc:
            raise ConfigError(f"model: {exc}") from exc

    # ------------------------------------------------------------------ ports
    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        batch = Axis(AxisKind.BATCH)
        return {
            "mel": NeuralType(
                (batch, Axis(AxisKind.MEL, self.mel_config.n_mels), Axis(AxisKind.TIME)),
                MelSpectrogram(n_mels=self.mel_config.n_mels),
            ),
            "noise": NeuralType(
                (
                    batch,
                    Axis(AxisKind.CHANNEL, self.waveglow.n_group),
                    Axis(AxisKind.TIME, name="groups"),
                ),
                ElementType(),  # standard normal noise: no domain meaning
            ),
        }

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        return {
            "audio": NeuralType(
                (Axis(AxisKind.BATCH), Axis(AxisKind.TIME, name="samples")),
                AudioSignal(sample_rate=self.mel_config.sample_rate),
            )
        }

    # ------------------------------------------------------------------ model
    def forward(self, mel: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Inference: log-mel (B, n_mels, F) and standard normal noise
        (B, n_group, F * hop // n_group), scaled here by ``sigma_infer``, -> audio
        (B, F * hop)."""
        return self.waveglow.infer(mel, noise * self.sigma_infer)

    @torch.no_grad()
    def infer(self, mel: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        """Audio (B, F * hop) of log-mels (B, n_mels, F), with freshly drawn noise of standard
        deviation ``sigma`` (default ``sigma_infer``; 0 gives the flow's mean path)."""
        sigma = self.sigma_infer if sigma is None else float(sigma)
        steps = mel.shape[2] * self.mel_config.hop_length // self.waveglow.n_group
        z = torch.randn(mel.shape[0], self.waveglow.n_group, steps, device=mel.device)
        return self.waveglow.infer(mel, z.to(mel.dtype) * sigma)

    def vocoder(self, sigma: float | None = None) -> WaveGlowVocoder:
        """This model as the vocoder of a :class:`~convai_tts.synthesize.Synthesizer`: a module
        mapping log-mel (1, n_mels, F) to audio (1, F * hop)."""
        return WaveGlowVocoder(self, sigma)

    def losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The negative log-likelihood per sample of ``batch``'s audio given its mel
        (:func:`~convai_tts.modules.waveglow.flow_nll`); padding left out."""
        z, log_s, log_det = self.waveglow(batch["audio"], batch["mel"])
        nll = flow_nll(z, log_s, log_det, self.sigma, batch.get("audio_lengths"))
        return {"loss": nll}

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.losses(batch)["loss"]
        self.log("train_loss", loss, prog_bar=True, batch_size=int(batch["audio"].shape[0]))
        return loss

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        loss = self.losses(batch)["loss"]
        size = int(batch["audio"].shape[0])
        self.log("val_loss", loss, prog_bar=True, batch_size=size, sync_dist=True)

    # ------------------------------------------------------------------ data
    def build_dataloader(self, data_cfg: DictConfig, split: str) -> DataLoader[Any] | None:
        from convai_tts.data.segments import AudioSegmentDataset, collate_segments

        plain = dict(to_plain(data_cfg) or {})
        section = f"model.{self.DATA_SECTIONS[split]}"
        check_keys(section, plain, set(_DATA_KEYS))
        if not plain.get("manifest"):
            if split == "train":
                raise ConfigError(
                    f"{section}.manifest is missing: set it to a JSON-lines manifest with "
                    "audio_filepath (22.05 kHz clips; `convai tts data prepare` makes one)"
                )
            return None
        default_segment = 16128 if split == "train" else None
        segment = plain.get("segment_samples", default_segment)
        try:
            dataset = AudioSegmentDataset(
                plain["manifest"],
                self.mel_config,
                segment,
                max_duration=plain.get("max_duration"),
                skip_bad=bool(plain.get("skip_bad", False)),
            )
        except ConfigError as exc:
            raise ConfigError(f"{section}.{exc}") from exc
        if dataset.skipped:
            print(f"{section}: skipped {dict(dataset.skipped)} of {plain['manifest']}")
        return DataLoader(
            dataset,
            batch_size=int(plain.get("batch_size", 12)),
            shuffle=bool(plain.get("shuffle", split == "train")),
            collate_fn=collate_segments,
            num_workers=int(plain.get("num_workers", 0)),
            drop_last=split == "train" and len(dataset) > int(plain.get("batch_size", 12)),
        )

    # ------------------------------------------------------------------ export
    def export_spec(self, **options: Any) -> ExportSpec:
        """Export the inference path: log-mel and standard normal noise in, audio out, with
        ``sigma_infer`` and the inverse 1x1 weights as constants of the graph.

        The exported graph takes the noise frame by frame, ``(B, n_group, F, hop // n_group)``
        (the same values as :meth:`forward`'s ``(B, n_group, F * hop // n_group)``, reshaped),
        so the mel and the noise share their batch and frame axes. Verified on mels of a
        synthetic voiced signal ("real") and of random noise bursts ("random").
        """
        from convai_core.errors import ExportError
        from convai_core.export_spec import ExportSpec, item_lengths
        from convai_tts.audio import MelSpectrogram as MelAnalysis

        if options:
            raise ExportError(f"tts/waveglow takes no export options; got {sorted(options)}")
        n_group, hop = self.waveglow.n_group, self.mel_config.hop_length
        per_frame = hop // n_group
        analysis = MelAnalysis(self.mel_config)
        rate = self.mel_config.sample_rate

        def make_inputs(batch: int, length: int, kind: str) -> tuple[torch.Tensor, ...]:
            generator = torch.Generator().manual_seed(1000 * batch + length)
            audio = torch.zeros(batch, length * hop)
            for row, frames in enumerate(item_lengths(batch, length)):
                samples = frames * hop
                t = torch.arange(samples) / rate
                if kind == "real":  # a voiced sound: harmonics of a gliding pitch, an envelope
                    f0 = 110.0 + 40.0 * row + 30.0 * torch.sin(2 * torch.pi * 3.0 * t)
                    phase = 2 * torch.pi * torch.cumsum(f0, 0) / rate
                    voiced = sum(torch.sin(h * phase) / h for h in range(1, 8))
                    envelope = 0.3 * torch.sin(torch.pi * t / max(float(t[-1]), 1e-3)) ** 2
                    audio[row, :samples] = envelope * voiced
                else:
                    gain = 0.5 * torch.rand((), generator=generator)
                    audio[row, :samples] = gain * torch.randn(samples, generator=generator)
            with torch.no_grad():
                mel = analysis(audio)  # (B, n_mels, length)
            noise = torch.randn(batch, n_group, length, per_frame, generator=generator)
            return mel, noise

        class _Inference(nn.Module):
            inverse_0: torch.Tensor

            def __init__(self, model: WaveGlowModel) -> None:
                super().__init__()
                self.waveglow = model.waveglow
                self.sigma_infer = model.sigma_infer
                with torch.no_grad():
                    inverses = model.waveglow.inverse_weights()
                self.count = len(inverses)
                for k, inverse in enumerate(inverses):
                    self.register_buffer(f"inverse_{k}", inverse.detach().clone())

            def forward(self, mel: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
                # (B, g, F, hop/g) -> (B, g, F * hop/g)
                z = noise.reshape(noise.shape[0], noise.shape[1], -1) * self.sigma_infer
                inverses = [getattr(self, f"inverse_{k}") for k in range(self.count)]
                return self.waveglow.infer(mel, z, inverses)

        self.eval()
        batch, frames = Axis(AxisKind.BATCH), Axis(AxisKind.TIME)
        input_ports = {
            "mel": self.input_ports["mel"],
            "noise": NeuralType(
                (
                    batch,
                    Axis(AxisKind.CHANNEL, n_group),
                    frames,
                    Axis(AxisKind.CHANNEL, per_frame),
                ),
                ElementType(),
            ),
        }
        return ExportSpec(
            name="tts_waveglow",
            module=_Inference(self).eval(),
            input_ports=input_ports,
            output_ports=self.output_ports,
            make_inputs=make_inputs,
            verify_lengths=(8, 40),
            dim_bounds={"batch": (1, 64), "time": (2, 1 << 14)},
            metadata={
                "mel": self.mel_config.to_dict(),
                "n_group": n_group,
                "sigma_infer": self.sigma_infer,
                "noise": "standard normal, (batch, n_group, frames, hop_length // n_group)",
            },
        )


class WaveGlowVocoder(nn.Module):
    """A :class:`WaveGlowModel` as a plain vocoder module: log-mel (B, n_mels, F) or
    (n_mels, F) -> audio (B, F * hop) or (F * hop,), fresh noise each call.

    Args:
        model: the trained vocoder.
        sigma: the noise's standard deviation (default the model's ``sigma_infer``).
    """

    def __init__(self, model: WaveGlowModel, sigma: float | None = None) -> None:
        super().__init__()
        self.model = model
        self.sigma = sigma

    @torch.no_grad()
    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        squeeze = log_mel.dim() == 2
        mel = log_mel.unsqueeze(0) if squeeze else log_mel
        audio = self.model.infer(mel.to(self.model.device, torch.float32), self.sigma)
        audio = audio.clamp(-1.0, 1.0)
        return audio.squeeze(0) if squeeze else audio
