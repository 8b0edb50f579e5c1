"""Waveform augmentations, applied to one utterance at a time while the data loader reads it.

Each augmentation is registered under ``asr/<name>`` and listed in a data section's
``augmentations`` (built with :func:`convai_core.components.build_list`, each item with an
optional ``prob``); :func:`~convai_asr.data.loaders.manifest_dataset` applies them in its
``__getitem__``, so they run in the loader's worker processes::

    train_ds:
      manifest: train.jsonl
      augmentations:
        - {name: asr/speed_perturb, min_rate: 0.9, max_rate: 1.1}
        - {name: asr/noise, min_snr_db: 10, max_snr_db: 30, color: pink, prob: 0.5}
        - {name: asr/noise, manifest: noise.jsonl, min_snr_db: 5, max_snr_db: 20, prob: 0.3}
        - {name: asr/babble, manifest: train.jsonl, min_speakers: 3, max_speakers: 6, prob: 0.2}
        - {name: asr/impulse_response, min_rt60: 0.2, max_rt60: 0.8, prob: 0.3}
        - {name: asr/telephone, prob: 0.2}

Noise and babble from manifests draw their recordings through
:class:`~convai_asr.augment.recordings.RecordingPool`; room impulse responses live in
:mod:`convai_asr.augment.reverb`.

Every augmentation takes ``(audio, generator)``: a 1-D waveform at the dataset's sample rate
(the dataset supplies ``sample_rate`` when it builds them) and the ``torch.Generator`` to draw
from, so the same generator state gives the same output. Speed perturbation and time stretch
change the length; the others keep it.

Shapes:
    audio: (T,) float32 -> (T',) float32.
"""

from __future__ import annotations

import math

import torch
import torchaudio.functional as TAF

from convai_asr.augment.chain import skipped
from convai_asr.augment.recordings import ManifestPaths, RecordingPool
from convai_core.components import BuiltItem
from convai_core.types import AudioSignal, NeuralType, T

__all__ = [
    "Babble",
    "Gain",
    "Noise",
    "SpeedPerturb",
    "Telephone",
    "TimeShift",
    "TimeStretch",
    "WaveformAugmentation",
    "WaveformChain",
    "mix_at_snr",
]


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


class WaveformAugmentation:
    """Base of the per-utterance waveform augmentations: ports and argument checks.

    Args:
        sample_rate: the dataset's rate in Hz (supplied by the dataset).
    """

    def __init__(self, sample_rate: int) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive; got {sample_rate}")
        self.sample_rate = int(sample_rate)

    @property
    def input_ports(self) -> dict[str, NeuralType]:
        """``audio`` (T,): one utterance."""
        return {"audio": NeuralType((T,), AudioSignal(sample_rate=self.sample_rate))}

    @property
    def output_ports(self) -> dict[str, NeuralType]:
        """``audio`` (T',): the augmented utterance."""
        return {"audio": NeuralType((T,), AudioSignal(sample_rate=self.sample_rate))}

    def __call__(
        self, audio: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def _check_range(name: str, low: float, high: float, *, minimum: float | None = None) -> None:
        if low > high:
            raise ValueError(f"min_{name} ({low}) must not exceed max_{name} ({high})")
        if minimum is not None and low <= minimum:
            raise ValueError(f"min_{name} must be > {minimum}; got {low}")


class SpeedPerturb(WaveformAugmentation):
    """Play the utterance faster or slower (pitch moves with it), by resampling.

    A rate drawn uniformly from [min_rate, max_rate] (or one of ``rates``) makes the output
    ``1 / rate`` times as long, as in Kaldi's and NeMo's speed perturbation.

    Args:
        sample_rate: the dataset's rate (supplied).
        min_rate: slowest rate.
        max_rate: fastest rate.
        rates: a list of rates to choose from instead of the range (Kaldi's 0.9, 1.0, 1.1).
    """

    def __init__(
        self,
        sample_rate: int,
        min_rate: float = 0.9,
        max_rate: float = 1.1,
        rates: list[float] | None = None,
    ) -> None:
        super().__init__(sample_rate)
        self._check_range("rate", min_rate, max_rate, minimum=0.0)
        if rates is not None and (not rates or min(rates) <= 0):
            raise ValueError(f"rates must be a non-empty list of positive numbers; got {rates}")
        self.min_rate, self.max_rate, self.rates = min_rate, max_rate, rates

    def draw_rate(self, generator: torch.Generator | None) -> float:
        """The rate of one call."""
        if self.rates:
            return float(self.rates[int(torch.randint(len(self.rates), (), generator=generator))])
        return _uniform(self.min_rate, self.max_rate, generator)

    def __call__(
        self, audio: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        rate = self.draw_rate(generator)
        if abs(rate - 1.0) < 1e-4:
            return audio
        # resampling from sr * rate to sr keeps the samples' order: 1 / rate times as many
        source = round(self.sample_rate * rate / 10) * 10  # a multiple of 10 Hz keeps the gcd large
        return TAF.resample(audio, source, self.sample_rate)


class TimeStretch(WaveformAugmentation):
    """Change the tempo without changing the pitch (phase vocoder on a 512-point STFT).

    Args:
        sample_rate: the dataset's rate (supplied).
        min_rate: slowest rate (output ``1 / rate`` times as long).
        max_rate: fastest rate.
        n_fft: STFT size.
    """

    def __init__(
        self, sample_rate: int, min_rate: float = 0.9, max_rate: float = 1.1, n_fft: int = 512
    ) -> None:
        super().__init__(sample_rate)
        self._check_range("rate", min_rate, max_rate, minimum=0.0)
        self.min_rate, self.max_rate, self.n_fft = min_rate, max_rate, n_fft

    def __call__(
        self, audio: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        rate = _uniform(self.min_rate, self.max_rate, generator)
        if abs(rate - 1.0) < 1e-4:
            return audio
        hop = self.n_fft // 4
        window = torch.hann_window(self.n_fft, device=audio.device)
        spec = torch.stft(audio, self.n_fft, hop, window=window, return_complex=True)  # (F, N)
        advance = torch.linspace(0, math.pi * hop, spec.shape[0], device=audio.device)[:, None]
        stretched = TAF.phase_vocoder(spec, rate, advance)  # (F, ceil(N / rate))
        length = round(audio.shape[-1] / rate)
        return torch.istft(stretched, self.n_fft, hop, window=window, length=length)


class Gain(WaveformAugmentation):
    """Scale the utterance by a gain drawn uniformly in [min_db, max_db] decibels.

    Args:
        sample_rate: the dataset's rate (supplied).
        min_db: lowest gain.
        max_db: highest gain.
    """

    def __init__(self, sample_rate: int, min_db: float = -6.0, max_db: float = 6.0) -> None:
        super().__init__(sample_rate)
        self._check_range("db", min_db, max_db)
        self.min_db, self.max_db = min_db, max_db

    def __call__(
        self, audio: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return audio * 10.0 ** (_uniform(self.min_db, self.max_db, generator) / 20.0)


class TimeShift(WaveformAugmentation):
    """Shift the utterance by up to ``max_seconds`` either way, filling with silence.

    Args:
        sample_rate: the dataset's rate (supplied).
        max_seconds: largest shift.
    """

    def __init__(self, sample_rate: int, max_seconds: float = 0.1) -> None:
        super().__init__(sample_rate)
        if max_seconds < 0:
            raise ValueError(f"max_seconds must be >= 0; got {max_seconds}")
        self.max_seconds = max_seconds

    def __call__(
        self, audio: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        limit = min(round(self.max_seconds * self.sample_rate), audio.shape[-1])
        shift = int(torch.randint(-limit, limit + 1, (), generator=generator))
        shifted = torch.zeros_like(audio)
        if shift >= 0:
            shifted[shift:] = audio[: audio.shape[-1] - shift]
        else:
            shifted[:shift] = audio[-shift:]
        return shifted


#: Power-spectrum slope of each noise color: power ~ 1 / f ** exponent.
NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0, "blue": -1.0}


def colored_noise(
    samples: int, color: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gaussian noise whose power spectrum falls as ``1 / f ** exponent`` (unit variance).

    Shapes:
        -> (samples,).
    """
    if color not in NOISE_EXPONENTS:
        raise ValueError(f"color must be one of {sorted(NOISE_EXPONENTS)}; got {color!r}")
    white = torch.randn(samples, generator=generator)
    exponent = NOISE_EXPONENTS[color]
    if exponent == 0.0:
        return white
    spectrum = torch.fft.rfft(white)
    freqs = torch.arange(spectrum.shape[0], dtype=torch.float32).clamp(min=1.0)
    noise = torch.fft.irfft(spectrum / freqs ** (exponent / 2.0), n=samples)
    return noise / noise.std().clamp(min=1e-12)


def mix_at_snr(audio: torch.Tensor, noise: torch.Tensor, *, snr_db: float) -> torch.Tensor:
    """``audio`` plus ``noise`` scaled so that their mean powers differ by ``snr_db`` decibels.

    An all-zero ``audio`` or ``noise`` gives ``audio`` back unchanged.

    Shapes:
        audio: (T,), noise: (T,) -> (T,).
    """
    power = audio.pow(2).mean()
    noise_power = noise.pow(2).mean()
    if float(power) == 0.0 or float(noise_power) == 0.0:
        return audio
    scale = torch.sqrt(power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return audio + noise * scale


class Noise(WaveformAugmentation):
    """Add noise at a signal-to-noise ratio drawn in [min_snr_db, max_snr_db]: colored noise, or
    recorded noise listed in a manifest.

    Without ``manifest`` the noise is Gaussian noise of ``color``. With ``manifest`` (a
    JSON-lines list of noise recordings, see :mod:`convai_asr.augment.recordings`) each call
    mixes in a random segment of a random recording, resampled to the dataset's rate and looped
    when it is shorter than the utterance. A relative ``manifest`` path is resolved against the
    current folder (in ``convai asr augment`` recipes: against the recipe's folder); a relative
    path inside it, against the manifest's folder.

    The SNR is measured between the utterance's mean power and the noise segment's (an all-zero
    utterance, or an all-zero noise segment, leaves the utterance unchanged).

    Args:
        sample_rate: the dataset's rate (supplied).
        min_snr_db: noisiest.
        max_snr_db: cleanest.
        color: ``white`` (the default), ``pink``, ``brown`` or ``blue``; only without
            ``manifest``.
        manifest: noise manifest(s): a path, comma-separated paths or a list.
        max_files: use at most this many recordings of the manifest, evenly spaced over it.
        cache_seconds: decoded noise each loader worker keeps in memory, in seconds; a longer
            recording is read a segment at a time.

    Raises:
        ValueError: an empty SNR range, an unknown color, or both ``color`` and ``manifest``.
        ManifestError: the manifest is missing or has a malformed line (named with its number).
        AudioError: (when called) a listed noise file is missing or unreadable.
    """

    def __init__(
        self,
        sample_rate: int,
        min_snr_db: float = 10.0,
        max_snr_db: float = 30.0,
        color: str | None = None,
        manifest: ManifestPaths | None = None,
        max_files: int | None = None,
        cache_seconds: float = 600.0,
    ) -> None:
        super().__init__(sample_rate)
        self._check_range("snr_db", min_snr_db, max_snr_db)
        if color is not None and manifest is not None:
            raise ValueError(
                f"give either color ({color!r}: generated noise) or manifest (recorded noise), "
                "not both; use two asr/noise items to have both kinds"
            )
        if color is not None and color not in NOISE_EXPONENTS:
            raise ValueError(f"color must be one of {sorted(NOISE_EXPONENTS)}; got {color!r}")
        self.min_snr_db, self.max_snr_db = min_snr_db, max_snr_db
        self.color = "white" if color is None else color
        self.pool = (
            None
            if manifest is None
            else RecordingPool(
                manifest,
                sample_rate=self.sample_rate,
                what="noise",
                max_files=max_files,
                cache_seconds=cache_seconds,
            )
        )

    def draw_noise(self, samples: int, generator: torch.Generator | None) -> torch.Tensor:
        """The noise of one call, before scaling.

        Shapes:
            -> (samples,).
        """
        if self.pool is None:
            return colored_noise(samples, self.color, generator)
        return self.pool.segment(self.pool.draw_index(generator), samples, generator)

    def __call__(
        self, audio: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if float(audio.pow(2).mean()) == 0.0:
            return audio
        snr_db = _uniform(self.min_snr_db, self.max_snr_db, generator)
        noise = self.draw_noise(audio.shape[-1], generator).to(audio)
        return mix_at_snr(audio, noise, snr_db=snr_db)


class Babble(WaveformAugmentation):
    """Add babble, other people talking: the sum of several utterances of a speech manifest,
    at a signal-to-noise ratio drawn in [min_snr_db, max_snr_db].

    Each call draws a number of talkers in [min_speakers, max_speakers] and that many utterances
    of ``manifest`` (the training manifest itself will do), takes a random segment of each as
    long as the utterance (looped when shorter), scales each to the same mean power so that no
    talker dominates, and mixes their sum in at the drawn SNR (measured as for ``asr/noise``).
    An utterance may draw itself as a talker; with more than a few hundred utterances that is
    rare. Recordings are read and cached as for noise manifests
    (:mod:`convai_asr.augment.recordings`).

    Args:
        sample_rate: the dataset's rate (supplied).
        manifest: speech manifest(s): a path, comma-separated paths or a list (``text`` is not
            needed).
        min_speakers: fewest talkers.
        max_speakers: most talkers.
        min_snr_db: noisiest.
        max_snr_db: cleanest.
        max_files: use at most this many utterances of the manifest, evenly spaced over it.
        cache_seconds: decoded speech each loader worker keeps in memory, in seconds.

    Raises:
        ValueError: an empty range, or fewer than one talker.
        ManifestError: the manifest is missing or has a malformed line.
        AudioError: (when called) a listed file is missing or unreadable.
    """

    def __init__(
        self,
        sample_rate: int,
        manifest: ManifestPaths,
        min_speakers: int = 3,
        max_speakers: int = 7,
        min_snr_db: float = 5.0,
        max_snr_db: float = 20.0,
        max_files: int | None = None,
        cache_seconds: float = 600.0,
    ) -> None:
        super().__init__(sample_rate)
        self._check_range("snr_db", min_snr_db, max_snr_db)
        self._check_range("speakers", min_speakers, max_speakers, minimum=0)
        self.min_speakers, self.max_speakers = int(min_speakers), int(max_speakers)
        self.min_snr_db, self.max_snr_db = min_snr_db, max_snr_db
        self.pool = RecordingPool(
            manifest,
            sample_rate=self.sample_rate,
            what="babble speech",
            max_files=max_files,
            cache_seconds=cache_seconds,
        )

    def draw_babble(self, samples: int, generator: torch.Generator | None) -> torch.Tensor:
        """The babble of one call, before scaling: the sum of the drawn talkers.

        Shapes:
            -> (samples,).
        """
        talkers = int(
            torch.randint(self.min_speakers, self.max_speakers + 1, (), generator=generator)
        )
        babble = torch.zeros(samples)
        for _ in range(talkers):
            speech = self.pool.segment(self.pool.draw_index(generator), samples, generator)
            rms = speech.pow(2).mean().sqrt()
            if float(rms) > 0.0:
                babble += speech / rms
        return babble

    def __call__(
        self, audio: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if float(audio.pow(2).mean()) == 0.0:
            return audio
        snr_db = _uniform(self.min_snr_db, self.max_snr_db, generator)
        babble = self.draw_babble(audio.shape[-1], generator).to(audio)
        return mix_at_snr(audio, babble, snr_db=snr_db)


class Telephone(WaveformAugmentation):
    """A narrow-band telephone channel: 300-3400 Hz band at 8 kHz, 8-bit mu-law, back to the
    dataset's rate.

    Args:
        sample_rate: the dataset's rate (supplied).
        low_hz: high-pass corner.
        high_hz: low-pass corner (below 4 kHz, the 8 kHz channel's Nyquist frequency).
    """

    CHANNEL_RATE = 8000

    def __init__(self, sample_rate: int, low_hz: float = 300.0, high_hz: float = 3400.0) -> None:
        super().__init__(sample_rate)
        if not 0 < low_hz < high_hz < self.CHANNEL_RATE / 2:
            raise ValueError(
                f"need 0 < low_hz < high_hz < {self.CHANNEL_RATE / 2}; got {low_hz}, {high_hz}"
            )
        self.low_hz, self.high_hz = low_hz, high_hz

    def __call__(
        self, audio: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        narrow = TAF.resample(audio, self.sample_rate, self.CHANNEL_RATE)
        narrow = TAF.highpass_biquad(narrow, self.CHANNEL_RATE, self.low_hz)
        narrow = TAF.lowpass_biquad(narrow, self.CHANNEL_RATE, self.high_hz)
        peak = narrow.abs().max().clamp(min=1e-8)
        codes = TAF.mu_law_encoding(narrow / peak, 256)
        narrow = TAF.mu_law_decoding(codes, 256) * peak
        wide = TAF.resample(narrow, self.CHANNEL_RATE, self.sample_rate)
        return wide[..., : audio.shape[-1]]


class WaveformChain:
    """Built waveform augmentations applied in order, each with its probability.

    Args:
        items: from :func:`convai_core.components.build_list`.
        generator: the random source (default: torch's global one, which the trainer seeds in
            every loader worker).

    Shapes:
        audio: (T,) -> (T',).
    """

    def __init__(self, items: list[BuiltItem], generator: torch.Generator | None = None) -> None:
        self.items = list(items)
        self.generator = generator

    def __len__(self) -> int:
        return len(self.items)

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        for item in self.items:
            if skipped(item.probability, self.generator):
                continue
            audio = item.component(audio, self.generator)
        return audio
