"""Room reverberation: convolve an utterance with a room impulse response (``asr/impulse_response``).

The impulse responses come from one of two places:

* simulated (the default): shoebox rooms with the image-source method of pyroomacoustics, a
  reverberation time (RT60) drawn in [min_rt60, max_rt60], room sizes drawn per axis in
  [min_room, max_room] metres and source and microphone placed at random inside, at least
  ``wall_distance`` from every wall and ``min_distance`` apart. Simulating takes from a few
  hundredths to about a second per room, so each augmentation keeps a bank of ``bank_size``
  responses, simulated on its first call (in each loader worker) from its own ``seed``; every
  call draws one of them. The bank depends on the arguments and ``seed`` only, so every worker
  (and every run) has the same rooms;
* recorded: a manifest of impulse-response files (``manifest``, listed and read as noise
  manifests are, see :mod:`convai_asr.augment.recordings`), one mono response per file
  (multi-channel files are mixed down by their mean: keep one channel per file).

The output keeps the input's length and timing: the convolution is read from the response's
direct-path peak (its largest sample), so speech does not move in time, and the reverberant tail
past the utterance's end is cut. The direct path is scaled to 1 before mixing with ``wet_dry``,
and the result is scaled to the input's RMS (not its peak: reverberation lowers the peak-to-RMS
ratio, so the peak does not grow past the input's in practice).

For slow set-ups (large banks, long RT60) ``convai asr augment`` writes reverberant copies once,
before training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torchaudio.functional as TAF

from convai_asr.augment.recordings import ManifestPaths, RecordingPool
from convai_asr.augment.waveform import WaveformAugmentation

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "ImpulseResponse",
    "RoomImpulseResponse",
    "eyring_absorption",
    "reverberate",
    "schroeder_rt60",
    "simulate_room",
]

#: Speed of sound in air at about 20 degrees Celsius, m/s (pyroomacoustics' default).
SPEED_OF_SOUND = 343.0


def schroeder_rt60(
    rir: torch.Tensor | NDArray[np.floating],
    *,
    sample_rate: int,
    start_db: float = -5.0,
    stop_db: float = -25.0,
) -> float:
    """The reverberation time (RT60) of an impulse response, by Schroeder backward integration.

    The energy decay curve (the response's energy from each time to the end, in dB of the
    total) is fitted by a least-squares line between ``start_db`` and ``stop_db``, and the
    time that line takes to fall 60 dB is returned (T20 times 3 with the defaults, ISO 3382).

    Args:
        rir: the impulse response.
        sample_rate: its rate in Hz.
        start_db: upper end of the fitted range (dB, negative).
        stop_db: lower end of the fitted range.

    Returns:
        RT60 in seconds.

    Raises:
        ValueError: the response is silent, or its decay never falls to ``stop_db``.

    Shapes:
        rir: (L,).
    """
    energy = np.asarray(torch.as_tensor(rir, dtype=torch.float64).pow(2))
    remaining = np.cumsum(energy[::-1])[::-1]
    if not remaining[0] > 0:
        raise ValueError("the impulse response is all zeros; it has no decay to measure")
    with np.errstate(divide="ignore"):
        decay_db = 10.0 * np.log10(remaining / remaining[0])
    fitted = np.flatnonzero((decay_db <= start_db) & (decay_db >= stop_db))
    if decay_db[-1] > stop_db or fitted.size < 2:
        raise ValueError(
            f"the impulse response's energy decay never falls from {start_db} to {stop_db} dB "
            f"(it ends at {decay_db[-1]:.1f} dB); give a longer response or a smaller stop_db"
        )
    slope = np.polyfit(fitted / sample_rate, decay_db[fitted], 1)[0]  # dB per second
    return float(-60.0 / slope)


def eyring_absorption(rt60: float, room: Sequence[float]) -> float:
    """The wall energy absorption that gives a shoebox room ``rt60`` by Eyring's formula.

    ``RT60 = 24 ln(10) V / (-c S ln(1 - a))``; unlike Sabine's formula this gives an absorption
    below 1 for any RT60 > 0.

    Args:
        rt60: reverberation time in seconds.
        room: the room's size (x, y, z) in metres.
    """
    x, y, z = room
    volume, surface = x * y * z, 2.0 * (x * y + x * z + y * z)
    return 1.0 - math.exp(-24.0 * math.log(10.0) * volume / (SPEED_OF_SOUND * surface * rt60))


def simulate_room(
    *,
    sample_rate: int,
    room: Sequence[float],
    source: Sequence[float],
    microphone: Sequence[float],
    absorption: float,
    max_order: int,
) -> torch.Tensor:
    """The impulse response between two points of a shoebox room (image-source method).

    Uses pyroomacoustics (imported here, so that importing this module stays light), one
    frequency-independent absorption on every wall and no air absorption.

    Args:
        sample_rate: rate of the response in Hz.
        room: size (x, y, z) in metres.
        source: source position (x, y, z) in metres.
        microphone: microphone position.
        absorption: energy absorption of the walls, in (0, 1).
        max_order: highest reflection order of the image sources.

    Raises:
        ModuleNotFoundError: pyroomacoustics is not installed (with what to do).

    Shapes:
        -> (L,) float32.
    """
    try:
        import pyroomacoustics as pra
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "asr/impulse_response simulates rooms with pyroomacoustics, which is not installed: "
            "`pip install pyroomacoustics` (a dependency of convai-asr), or give the "
            "augmentation a manifest of recorded impulse responses"
        ) from exc
    simulation = pra.ShoeBox(
        list(room),
        fs=sample_rate,
        materials=pra.Material(float(absorption)),
        max_order=int(max_order),
        air_absorption=False,
    )
    simulation.add_source(list(source))
    simulation.add_microphone(list(microphone))
    simulation.compute_rir()
    return torch.from_numpy(np.asarray(simulation.rir[0][0], dtype=np.float32))


def reverberate(
    audio: torch.Tensor, rir: torch.Tensor, *, peak: int | None = None, wet_dry: float = 1.0
) -> torch.Tensor:
    """Convolve ``audio`` with ``rir``, aligned to the direct path, at the input's RMS level.

    Args:
        audio: the dry utterance.
        rir: the impulse response.
        peak: index of its direct-path peak (default: its largest sample).
        wet_dry: share of the reverberant signal in [0, 1] (the rest is the dry input).

    Returns:
        The reverberant utterance, as long as ``audio``, scaled to ``audio``'s RMS (an all-zero
        input comes back unchanged).

    Shapes:
        audio: (T,), rir: (L,) -> (T,).
    """
    if float(audio.pow(2).mean()) == 0.0:
        return audio
    if peak is None:
        peak = int(rir.abs().argmax())
    rir = (rir / rir[peak]).to(audio)  # the direct path is 1, with its sign
    samples = audio.shape[-1]
    wet = TAF.fftconvolve(audio, rir)[peak : peak + samples]  # (T + L - 1,) -> (T,)
    mixed = wet_dry * wet + (1.0 - wet_dry) * audio
    level = mixed.pow(2).mean().sqrt()
    if float(level) == 0.0:
        return mixed
    return mixed * (audio.pow(2).mean().sqrt() / level)


@dataclass(frozen=True)
class RoomImpulseResponse:
    """One simulated impulse response of a bank.

    Attributes:
        samples: the response at the dataset's rate, from shortly before its direct path.
        peak: index of the direct-path peak in ``samples``.
        rt60: the reverberation time it was simulated for, in seconds.
        room: room size (x, y, z) in metres.
        source: source position in metres.
        microphone: microphone position in metres.
        absorption: the wall absorption that gives ``rt60`` (after calibration).

    Shapes:
        samples: (L,).
    """

    samples: torch.Tensor
    peak: int
    rt60: float
    room: tuple[float, float, float]
    source: tuple[float, float, float]
    microphone: tuple[float, float, float]
    absorption: float


def _triple(name: str, value: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(v) for v in value)
    if len(values) != 3 or min(values) <= 0:
        raise ValueError(f"{name} must be three positive sizes (x, y, z) in metres; got {value}")
    return values[0], values[1], values[2]


class ImpulseResponse(WaveformAugmentation):
    """Reverberate the utterance with a simulated or recorded room impulse response.

    See the module's description for where the responses come from, the alignment and the
    level. Simulated rooms take their wall absorption from Eyring's formula and correct it once
    from the RT60 measured on the first simulation (:func:`schroeder_rt60`): the image-source
    method in a shoebox with uniform walls overshoots Eyring's RT60 by up to 60 % in flat rooms,
    and after the correction the measured RT60 is within about 7 % of the drawn one
    (``benchmarks/room_rt60.py``).

    Args:
        sample_rate: the dataset's rate (supplied).
        manifest: a manifest of recorded impulse responses (a path, comma-separated paths or a
            list); without it rooms are simulated and the arguments below up to ``seed`` apply.
        min_rt60: shortest reverberation time, in seconds.
        max_rt60: longest reverberation time.
        min_room: smallest room size per axis (x, y, z), in metres.
        max_room: largest room size per axis.
        wall_distance: least distance of the source and the microphone from every wall.
        min_distance: least distance between the source and the microphone.
        bank_size: number of simulated responses per augmentation (per loader worker).
        seed: seeds the rooms of the bank.
        wet_dry: share of the reverberant signal in the output, in [0, 1] (1: all reverberant).
        max_files: use at most this many files of ``manifest``, evenly spaced over it.
        cache_seconds: decoded responses each loader worker keeps in memory, in seconds.

    Raises:
        ValueError: an empty or non-positive range, room sizes that leave no space for the
            source and the microphone, or ``wet_dry`` outside [0, 1].
        ManifestError: ``manifest`` is missing or has a malformed line.
        AudioError: (when called) a listed response file is missing, unreadable or silent.
    """

    #: Samples kept before the direct-path peak (the fractional-delay filter's spread).
    PRE_PEAK = 64

    def __init__(
        self,
        sample_rate: int,
        manifest: ManifestPaths | None = None,
        min_rt60: float = 0.2,
        max_rt60: float = 0.8,
        min_room: Sequence[float] = (3.0, 3.0, 2.5),
        max_room: Sequence[float] = (10.0, 8.0, 4.0),
        wall_distance: float = 0.5,
        min_distance: float = 1.0,
        bank_size: int = 32,
        seed: int = 0,
        wet_dry: float = 1.0,
        max_files: int | None = None,
        cache_seconds: float = 600.0,
    ) -> None:
        super().__init__(sample_rate)
        self._check_range("rt60", min_rt60, max_rt60, minimum=0.0)
        self.min_room, self.max_room = _triple("min_room", min_room), _triple("max_room", max_room)
        for axis, low, high in zip("xyz", self.min_room, self.max_room, strict=True):
            if low > high:
                raise ValueError(f"min_room's {axis} ({low}) must not exceed max_room's ({high})")
        if wall_distance < 0 or min_distance < 0:
            raise ValueError(
                f"wall_distance and min_distance must be >= 0; got {wall_distance}, {min_distance}"
            )
        inner = [size - 2 * wall_distance for size in self.min_room]
        if min(inner) <= 0 or math.hypot(*inner) <= min_distance:
            raise ValueError(
                f"the smallest room {self.min_room} m leaves no room for a source and a microphone "
                f"{min_distance} m apart and {wall_distance} m from the walls; make min_room "
                "larger or wall_distance / min_distance smaller"
            )
        if bank_size < 1:
            raise ValueError(f"bank_size must be >= 1; got {bank_size}")
        if not 0.0 <= wet_dry <= 1.0:
            raise ValueError(f"wet_dry must be in [0, 1]; got {wet_dry}")
        self.min_rt60, self.max_rt60 = float(min_rt60), float(max_rt60)
        self.wall_distance, self.min_distance = float(wall_distance), float(min_distance)
        self.bank_size, self.seed, self.wet_dry = int(bank_size), int(seed), float(wet_dry)
        self.pool = (
            None
            if manifest is None
            else RecordingPool(
                manifest,
                sample_rate=self.sample_rate,
                what="impulse response",
                max_files=max_files,
                cache_seconds=cache_seconds,
            )
        )
        self._bank: list[RoomImpulseResponse] | None = None

    # -- the simulated bank ---------------------------------------------------------------------

    def _draw_positions(
        self, room: tuple[float, float, float], generator: torch.Generator
    ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        margin = self.wall_distance
        low = torch.tensor([margin] * 3, dtype=torch.float64)
        span = torch.tensor(room, dtype=torch.float64) - 2 * margin
        for _ in range(1000):
            source = low + span * torch.rand(3, generator=generator, dtype=torch.float64)
            microphone = low + span * torch.rand(3, generator=generator, dtype=torch.float64)
            if float(torch.linalg.vector_norm(source - microphone)) >= self.min_distance:
                s, m = source.tolist(), microphone.tolist()
                return (s[0], s[1], s[2]), (m[0], m[1], m[2])
        raise RuntimeError(  # the constructor checked that such positions exist
            f"found no source and microphone {self.min_distance} m apart in a {room} m room"
        )

    def _simulate(self, generator: torch.Generator) -> RoomImpulseResponse:
        rt60 = self.min_rt60 + (self.max_rt60 - self.min_rt60) * float(
            torch.rand((), generator=generator, dtype=torch.float64)
        )
        low = torch.tensor(self.min_room, dtype=torch.float64)
        high = torch.tensor(self.max_room, dtype=torch.float64)
        sizes = (
            low + (high - low) * torch.rand(3, generator=generator, dtype=torch.float64)
        ).tolist()
        room = (sizes[0], sizes[1], sizes[2])
        source, microphone = self._draw_positions(room, generator)
        target = rt60
        for attempt in range(2):
            absorption = eyring_absorption(target, room)
            # images up to the order whose delay along the shortest axis reaches the RT60
            order = math.ceil(SPEED_OF_SOUND * target / min(room))
            rir = simulate_room(
                sample_rate=self.sample_rate,
                room=room,
                source=source,
                microphone=microphone,
                absorption=absorption,
                max_order=order,
            )
            if attempt == 0:
                try:
                    measured = schroeder_rt60(rir, sample_rate=self.sample_rate)
                except ValueError:
                    break
                target = rt60 * rt60 / measured  # the decay scales with the requested RT60
        peak = int(rir.abs().argmax())
        start = max(0, peak - self.PRE_PEAK)
        return RoomImpulseResponse(
            samples=rir[start:].clone(),
            peak=peak - start,
            rt60=rt60,
            room=room,
            source=source,
            microphone=microphone,
            absorption=absorption,
        )

    def bank(self) -> list[RoomImpulseResponse]:
        """The simulated responses (simulated on first use).

        Raises:
            ValueError: the augmentation reads its responses from a manifest.
        """
        if self.pool is not None:
            raise ValueError("this asr/impulse_response reads recorded responses from a manifest")
        if self._bank is None:
            generator = torch.Generator().manual_seed(self.seed)
            self._bank = [self._simulate(generator) for _ in range(self.bank_size)]
        return self._bank

    # -- applying -------------------------------------------------------------------------------

    def __call__(
        self, audio: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if self.pool is not None:
            rir = self.pool.recording(self.pool.draw_index(generator))
            return reverberate(audio, rir, wet_dry=self.wet_dry)
        bank = self.bank()
        chosen = bank[int(torch.randint(len(bank), (), generator=generator))]
        return reverberate(audio, chosen.samples, peak=chosen.peak, wet_dry=self.wet_dry)
