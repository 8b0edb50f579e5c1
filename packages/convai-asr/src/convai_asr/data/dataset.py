"""Audio+transcript datasets for ASR training, their collate function and a bucketing sampler.

Batch dict legend (:func:`collate_audio_text`):
    B: batch size (utterances); T: audio samples of the longest utterance; U: tokens of the longest
    transcript.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset, Sampler

from convai_asr.audio import load_audio
from convai_asr.errors import AudioError
from convai_core.errors import ConfigError, ConvaiError

if TYPE_CHECKING:
    from convai_asr.data.manifest import ManifestEntry
    from convai_asr.text.normalize import TextNormalizer
    from convai_asr.text.tokenizers import Tokenizer

__all__ = ["AudioTextDataset", "DurationBucketSampler", "collate_audio_text"]

logger = logging.getLogger(__name__)


class AudioTextDataset(Dataset[dict[str, Any] | None]):
    """Utterances of a manifest as audio samples and token ids.

    Each item is ``{"audio": (T,) float32, "tokens": (U,) int64, "index": int}`` with ``index`` the
    position in ``entries``. Transcripts go through ``normalizer`` (if given), then ``tokenizer``.

    With ``skip_bad_audio=True`` an unreadable file (any :class:`~convai_asr.errors.AudioError`) is
    logged once with its path and reason, counted in :attr:`bad_files`, and its item is ``None``;
    :func:`collate_audio_text` drops such items, and a batch where every item was dropped comes out
    with B=0, which the model's training step must skip (return ``None``).

    Args:
        entries: the utterances (from :func:`~convai_asr.data.manifest.read_manifest`).
        tokenizer: turns normalized text into ids.
        sample_rate: the model's rate in Hz; audio is resampled to it.
        normalizer: applied to each transcript before tokenizing.
        skip_bad_audio: drop unreadable files instead of raising.
        augment: applied to each utterance's waveform after loading (in the loader's workers),
            e.g. a :class:`~convai_asr.augment.waveform.WaveformChain`.

    Attributes:
        bad_files: how many times each bad file was skipped, by path. With DataLoader workers each
            worker process keeps its own copy; the log lines are the reliable record there.

    Shapes:
        audio: (T,) float32, T = samples at ``sample_rate``.
        tokens: (U,) int64, U = number of tokens of the transcript.
    """

    def __init__(
        self,
        entries: Sequence[ManifestEntry],
        tokenizer: Tokenizer,
        *,
        sample_rate: int,
        normalizer: TextNormalizer | None = None,
        skip_bad_audio: bool = False,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.augment = augment
        self.entries = list(entries)
        self.tokenizer = tokenizer
        self.sample_rate = sample_rate
        self.normalizer = normalizer
        self.skip_bad_audio = skip_bad_audio
        self.bad_files: Counter[str] = Counter()
        # Normalize and tokenize every transcript up front: text errors surface before training
        # starts, and the normalizer's count of removed characters is complete from the start.
        self.token_ids = [self._encode(entry) for entry in self.entries]

    def _encode(self, entry: ManifestEntry) -> list[int]:
        text = self.normalizer(entry.text) if self.normalizer is not None else entry.text
        try:
            return self.tokenizer.encode(text)
        except ConvaiError as exc:
            raise ConvaiError(
                f"transcript of {entry.audio_filepath!r} (manifest line {entry.line}) cannot be "
                f"tokenized: {exc}"
            ) from exc

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def durations(self) -> list[float]:
        """Duration of each entry in seconds (for :class:`DurationBucketSampler`)."""
        return [e.duration for e in self.entries]

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        entry = self.entries[index]
        try:
            audio = load_audio(
                entry.audio_filepath,
                sample_rate=self.sample_rate,
                offset=entry.offset,
                duration=entry.duration,
            )
        except AudioError as exc:
            if not self.skip_bad_audio:
                raise
            if entry.audio_filepath not in self.bad_files:
                logger.warning(
                    "skipping bad audio %s (manifest line %d): %s",
                    entry.audio_filepath,
                    entry.line,
                    exc,
                )
            self.bad_files[entry.audio_filepath] += 1
            return None
        if self.augment is not None:
            audio = self.augment(audio)
        return {
            "audio": audio,
            "tokens": torch.tensor(self.token_ids[index], dtype=torch.long),
            "index": index,
        }


def collate_audio_text(items: Sequence[dict[str, Any] | None]) -> dict[str, torch.Tensor]:
    """Pad a list of :class:`AudioTextDataset` items into a batch; ``None`` items are dropped.

    Returns:
        ``{"audio", "audio_len", "tokens", "tokens_len", "index"}``. Audio (waveforms, or
        (T, F) feature matrices from a feature dataset, padded along T) is zero-padded and
        tokens padded with 0 (a real id: always use ``tokens_len``). When every item was dropped
        the batch has B=0 (audio of shape (0, 0)): the model should skip it.

    Shapes:
        audio: (B, T) float32, or (B, T, F) for feature items; audio_len: (B,) int64 (samples
        or frames); tokens: (B, U) int64;
        tokens_len: (B,) int64; index: (B,) int64.
    """
    kept = [item for item in items if item is not None]
    batch_size = len(kept)
    audio_len = torch.tensor([item["audio"].shape[0] for item in kept], dtype=torch.long)
    tokens_len = torch.tensor([item["tokens"].shape[0] for item in kept], dtype=torch.long)
    max_t = int(audio_len.max()) if batch_size else 0
    max_u = int(tokens_len.max()) if batch_size else 0
    # items are waveforms (T,) or feature matrices (T, F) (Kaldi feats.scp): pad the first axis
    trailing = tuple(kept[0]["audio"].shape[1:]) if batch_size else ()
    audio = torch.zeros(batch_size, max_t, *trailing, dtype=torch.float32)
    tokens = torch.zeros(batch_size, max_u, dtype=torch.long)
    for row, item in enumerate(kept):
        audio[row, : audio_len[row]] = item["audio"]
        tokens[row, : tokens_len[row]] = item["tokens"]
    return {
        "audio": audio,
        "audio_len": audio_len,
        "tokens": tokens,
        "tokens_len": tokens_len,
        "index": torch.tensor([item["index"] for item in kept], dtype=torch.long),
    }


class DurationBucketSampler(Sampler[list[int]]):
    """Batch sampler that groups utterances of similar duration, so batches carry little padding.

    Each epoch: the indices are shuffled and cut into pools of ``pool_size``; each pool is sorted
    by duration and cut into batches bounded by padded seconds (``max duration in batch * batch
    count <= batch_seconds``), by count (``batch_size``), or both; the batches of all pools are
    shuffled; then they are dealt round-robin to the ``num_replicas`` ranks. To give every rank the
    same number of batches, the largest batches are split in two until the count divides evenly
    (every index is still seen exactly once per epoch; only with fewer utterances than ranks are
    batches repeated), or with ``drop_last=True`` the leftover batches are dropped. An utterance longer than ``batch_seconds`` gets a batch of its own.

    The plan depends only on ``seed``, the epoch and the durations, so all ranks agree without
    communicating. Use it as ``DataLoader(dataset, batch_sampler=sampler, ...)`` and call
    :meth:`set_epoch` before each epoch.

    Args:
        durations: seconds of each dataset item, by index.
        batch_seconds: upper bound on padded seconds per batch.
        batch_size: upper bound on utterances per batch.
        shuffle: shuffle pools and batch order (False: batches in increasing duration).
        seed: base seed; the epoch's seed is ``seed + epoch``.
        num_replicas: number of DDP ranks.
        rank: this process's rank.
        drop_last: drop leftover batches instead of splitting batches to even out the ranks.
        pool_size: utterances sorted together; ``None`` sorts the whole data set (least padding,
            batch composition varies little between epochs; a pool of ~50 batches keeps more
            randomness).

    Raises:
        ConfigError: neither bound is given, or a bad rank, replica count or pool size.
    """

    def __init__(
        self,
        durations: Sequence[float],
        *,
        batch_seconds: float | None = None,
        batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        pool_size: int | None = None,
    ) -> None:
        if batch_seconds is None and batch_size is None:
            raise ConfigError(
                "DurationBucketSampler needs batch_seconds or batch_size (or both); set one"
            )
        if batch_seconds is not None and batch_seconds <= 0:
            raise ConfigError(f"batch_seconds must be > 0, got {batch_seconds}")
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ConfigError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}")
        if pool_size is not None and pool_size < 1:
            raise ConfigError(f"pool_size must be >= 1 or None, got {pool_size}")
        self.durations = [float(d) for d in durations]
        self.batch_seconds = batch_seconds
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self.pool_size = pool_size
        self.epoch = 0
        self._position = 0  # batches of this epoch already handed out by this rank
        self._resume_position = 0  # where the next pass starts (set by load_state_dict only)
        self._cached: tuple[int, list[list[int]]] | None = None

    # ---- planning -----------------------------------------------------------------------------

    def _fits(self, count: int, longest: float) -> bool:
        if self.batch_size is not None and count > self.batch_size:
            return False
        return self.batch_seconds is None or count == 1 or longest * count <= self.batch_seconds

    def _pool_batches(self, pool: list[int]) -> list[list[int]]:
        pool = sorted(pool, key=lambda i: self.durations[i])  # stable: ties keep shuffled order
        batches: list[list[int]] = []
        current: list[int] = []
        for index in pool:
            # sorted ascending, so the new item is the longest of the batch
            if current and not self._fits(len(current) + 1, self.durations[index]):
                batches.append(current)
                current = []
            current.append(index)
        if current:
            batches.append(current)
        return batches

    def _even_out(self, batches: list[list[int]]) -> list[list[int]]:
        remainder = len(batches) % self.num_replicas
        if remainder == 0:
            return batches
        if self.drop_last:
            return batches[: len(batches) - remainder]
        needed = self.num_replicas - remainder
        for _ in range(needed):
            largest = max(range(len(batches)), key=lambda b: len(batches[b]))
            if len(batches[largest]) < 2:  # fewer utterances than ranks: repeat batches instead
                break
            whole = batches[largest]
            half = len(whole) // 2
            batches[largest : largest + 1] = [whole[:half], whole[half:]]
        repeat = 0
        while len(batches) % self.num_replicas:
            batches.append(list(batches[repeat]))
            repeat += 1
        return batches

    def _all_batches(self, epoch: int) -> list[list[int]]:
        """The batches of every rank for ``epoch``, in the order they are dealt."""
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        generator = torch.Generator().manual_seed(self.seed + epoch)
        count = len(self.durations)
        order = (
            torch.randperm(count, generator=generator).tolist()
            if self.shuffle
            else list(range(count))
        )
        pool_size = self.pool_size or max(count, 1)
        batches: list[list[int]] = []
        for start in range(0, count, pool_size):
            batches.extend(self._pool_batches(order[start : start + pool_size]))
        if self.shuffle and batches:
            permutation = torch.randperm(len(batches), generator=generator).tolist()
            batches = [batches[i] for i in permutation]
        batches = self._even_out(batches) if batches else batches
        self._cached = (epoch, batches)
        return batches

    def batches_for_rank(self, epoch: int | None = None) -> list[list[int]]:
        """This rank's batches for ``epoch`` (default: the current epoch), from the start."""
        batches = self._all_batches(self.epoch if epoch is None else epoch)
        return batches[self.rank :: self.num_replicas]

    # ---- Sampler API --------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (its shuffle). A position restored by :meth:`load_state_dict` for
        another epoch is discarded."""
        if epoch != self.epoch:
            self._position = 0
            self._resume_position = 0
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches this rank yields in a full pass of the current epoch."""
        return len(self.batches_for_rank())

    def __iter__(self) -> Iterator[list[int]]:
        # Every pass starts at the first batch, except the first pass after load_state_dict.
        # (An abandoned pass, such as Lightning's sanity check, must not shorten the next one.)
        batches = self.batches_for_rank()
        start, self._resume_position = self._resume_position, 0
        for position in range(start, len(batches)):
            self._position = position + 1
            yield list(batches[position])
        self._position = 0

    def state_dict(self) -> dict[str, Any]:
        """Epoch and position (batches already handed out this epoch by this rank).

        The position counts batches the DataLoader *fetched*, which runs ahead of the ones the
        model consumed by the prefetch depth; a loop that needs an exact resume should store its
        own count of consumed batches in ``"position"``.
        """
        return {
            "epoch": self.epoch,
            "position": self._position,
            "num_items": len(self.durations),
            "num_replicas": self.num_replicas,
            "seed": self.seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration continues ``state["epoch"]`` at ``state["position"]``.

        Raises:
            ConvaiError: the state comes from a sampler over another data set, replica count or
                seed, so its position would point at other batches.
        """
        for key, mine in (
            ("num_items", len(self.durations)),
            ("num_replicas", self.num_replicas),
            ("seed", self.seed),
        ):
            if key in state and state[key] != mine:
                raise ConvaiError(
                    f"sampler state was saved with {key}={state[key]} but this sampler has "
                    f"{key}={mine}; resume with the same data and DDP layout, or start the epoch "
                    "afresh (drop the sampler state)"
                )
        self.epoch = int(state["epoch"])
        position = int(state["position"])
        if not 0 <= position <= len(self):
            raise ConvaiError(f"sampler position {position} is outside [0, {len(self)}]")
        self._position = position
        self._resume_position = position

    def padding_ratio(self, epoch: int | None = None) -> float:
        """Share of padded seconds in this epoch's batches (all ranks): 1 - real / padded."""
        real = padded = 0.0
        for batch in self._all_batches(self.epoch if epoch is None else epoch):
            lengths = [self.durations[i] for i in batch]
            real += math.fsum(lengths)
            padded += max(lengths) * len(lengths)
        return 1.0 - real / padded if padded else 0.0
