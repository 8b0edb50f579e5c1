"""Kaldi feature matrices: ``feats.scp``/``cmvn.scp`` through kaldiio, CMVN as Kaldi applies
it, and ``compute-feats`` with a convai preprocessor.

CMVN statistics are Kaldi's ``(2, D+1)`` double matrix: row 0 holds the per-dimension sums and
the frame count in its last column, row 1 the sums of squares (last column 0).
``apply-cmvn`` subtracts the mean and, with ``norm_vars``, divides by the standard deviation
(variances floored at 1e-10). Statistics are per speaker when ``cmvn.scp`` is keyed by the
speakers of ``utt2spk`` (Kaldi's default), per utterance when keyed by utterances.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convai_kaldi.datadir import KaldiDataDir, kaldi_sorted, read_data_dir, read_table
from convai_kaldi.errors import KaldiDataError

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_PREPROCESSOR",
    "apply_cmvn",
    "cmvn_stats",
    "compute_feats",
    "load_matrices",
    "speaker_cmvn",
]

#: The preprocessor ``compute-feats`` uses when given neither a model nor a node.
DEFAULT_PREPROCESSOR: Mapping[str, Any] = {"name": "asr/mel_spectrogram", "n_mels": 80}


def cmvn_stats(matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Kaldi's CMVN statistics of a set of (T, D) matrices: a (2, D+1) float64 matrix."""
    dim = matrices[0].shape[1]
    stats = np.zeros((2, dim + 1), dtype=np.float64)
    for matrix in matrices:
        values = matrix.astype(np.float64)
        stats[0, :dim] += values.sum(axis=0)
        stats[1, :dim] += (values * values).sum(axis=0)
        stats[0, dim] += values.shape[0]
    return stats


def apply_cmvn(features: np.ndarray, stats: np.ndarray, *, norm_vars: bool = False) -> np.ndarray:
    """Normalize (T, D) ``features`` with (2, D+1) ``stats`` as Kaldi's ``apply-cmvn`` does.

    Raises:
        KaldiDataError: statistics of another dimension, or with a zero frame count.
    """
    dim = features.shape[1]
    if stats.shape != (2, dim + 1):
        raise KaldiDataError(
            f"CMVN statistics of shape {stats.shape} do not fit {dim}-dimensional features "
            f"(expected (2, {dim + 1}))"
        )
    count = float(stats[0, dim])
    if count < 1.0:
        raise KaldiDataError(f"CMVN statistics count {count} frames; they need at least one")
    mean = stats[0, :dim] / count
    out = features.astype(np.float64) - mean
    if norm_vars:
        var = np.maximum(stats[1, :dim] / count - mean * mean, 1e-10)
        out = out / np.sqrt(var)
    return out.astype(np.float32)


def load_matrices(scp: str | os.PathLike[str]) -> Mapping[str, np.ndarray]:
    """A lazy ``{key: matrix}`` view of a ``.scp`` file (kaldiio; float, double and
    compressed matrices; ranges such as ``file.ark:12[0:9]``)."""
    import kaldiio

    return kaldiio.load_scp(str(scp))


def speaker_cmvn(data: KaldiDataDir) -> tuple[dict[str, str], Mapping[str, np.ndarray]] | None:
    """``(utterance -> cmvn.scp key, statistics)`` of a data directory, or ``None`` without
    ``cmvn.scp``.

    Raises:
        KaldiDataError: an utterance whose speaker (or itself) has no statistics.
    """
    if data.cmvn is None or data.path is None:
        return None
    stats = load_matrices(data.path / "cmvn.scp")
    keys: dict[str, str] = {}
    for utt in data.utterances:
        speaker = data.utt2spk.get(utt)
        if speaker is not None and speaker in data.cmvn:
            keys[utt] = speaker
        elif utt in data.cmvn:
            keys[utt] = utt
        else:
            raise KaldiDataError(
                f"{data.path / 'cmvn.scp'}: no statistics for utterance {utt!r} (speaker "
                f"{speaker!r}); regenerate cmvn.scp (convai kaldi compute-feats --cmvn)"
            )
    return keys, stats


def _frame_counts(data: KaldiDataDir, feats: Mapping[str, np.ndarray]) -> dict[str, int]:
    assert data.path is not None
    counts_file = data.path / "utt2num_frames"
    counts: dict[str, int] = {}
    if counts_file.is_file():
        values, lines = read_table(counts_file)
        for utt, value in values.items():
            if not value.isdigit():
                raise KaldiDataError(f"{counts_file} line {lines[utt]}: {value!r} is not a count")
            counts[utt] = int(value)
    # utterances utt2num_frames does not list: read the matrix to count its frames
    return {u: counts[u] if u in counts else int(feats[u].shape[0]) for u in data.utterances}


class KaldiFeatureDataset:
    """Utterances of ``feats.scp`` + ``text`` for a CTC model (the ``kaldi/features`` dataset).

    Items are ``{"audio": (T, F) float32 features, "tokens": (U,) int64, "index": int}``
    (convai-asr's collate pads them into ``audio`` (B, T, F)); ``durations`` are frames times
    ``frame_shift`` seconds, for the duration-bucketing sampler.

    Shapes:
        audio: (T, F) float32, T = frames, F = feature dimension.
        tokens: (U,) int64.
    """

    def __init__(
        self,
        data: KaldiDataDir,
        tokenizer: Any,
        *,
        normalizer: Any = None,
        apply_cmvn: bool = True,
        norm_vars: bool = False,
        frame_shift: float = 0.01,
        max_duration: float | None = None,
    ) -> None:
        if data.feats is None or data.path is None:
            raise KaldiDataError(f"{data.where('feats.scp', '')}: missing; compute features first")
        if data.text is None:
            raise KaldiDataError(f"{data.where('text', '')}: missing; training needs transcripts")
        self.feats = load_matrices(data.path / "feats.scp")
        self.cmvn = speaker_cmvn(data) if apply_cmvn else None
        self.norm_vars = norm_vars
        frames = _frame_counts(data, self.feats)
        self.utterances: list[str] = []
        self.token_ids: list[list[int]] = []
        self._durations: list[float] = []
        for utt in kaldi_sorted(data.feats):
            if utt not in data.text:
                raise KaldiDataError(f"{data.where('feats.scp', utt)}: {utt!r} has no transcript")
            seconds = frames[utt] * frame_shift
            if max_duration is not None and seconds > max_duration:
                continue
            text = normalizer(data.text[utt]) if normalizer is not None else data.text[utt]
            try:
                ids = tokenizer.encode(text)
            except Exception as exc:
                raise KaldiDataError(
                    f"{data.where('text', utt)}: the transcript of {utt!r} cannot be tokenized: "
                    f"{exc}"
                ) from exc
            self.utterances.append(utt)
            self.token_ids.append(ids)
            self._durations.append(seconds)

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def durations(self) -> list[float]:
        """Each utterance's length in seconds."""
        return self._durations

    def features(self, index: int) -> np.ndarray:
        """The (T, F) features of utterance ``index``, CMVN applied when configured."""
        utt = self.utterances[index]
        matrix = np.asarray(self.feats[utt], dtype=np.float32)
        if self.cmvn is not None:
            keys, stats = self.cmvn
            matrix = apply_cmvn(matrix, np.asarray(stats[keys[utt]]), norm_vars=self.norm_vars)
        return matrix

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        return {
            "audio": torch.from_numpy(np.array(self.features(index), dtype=np.float32)),
            "tokens": torch.tensor(self.token_ids[index], dtype=torch.long),
            "index": index,
        }


def _read_audio(row: Mapping[str, Any], sample_rate: int) -> torch.Tensor:
    import soundfile
    import torch

    info = soundfile.info(row["audio_filepath"])
    start = round(float(row.get("offset") or 0.0) * info.samplerate)
    frames = round(float(row["duration"]) * info.samplerate)
    audio, rate = soundfile.read(
        row["audio_filepath"], start=start, frames=frames, dtype="float32", always_2d=True
    )
    signal = torch.from_numpy(audio.mean(axis=1))
    if rate != sample_rate:
        import torchaudio

        signal = torchaudio.functional.resample(signal, orig_freq=rate, new_freq=sample_rate)
    return signal


def _preprocessor(model: str | None, node: Mapping[str, Any] | None, sample_rate: int) -> Any:
    if model is not None:
        from convai_core.models.base import ModelBase

        restored = ModelBase.restore_from(model)
        pre = getattr(restored, "preprocessor", None)
        if pre is None:
            raise KaldiDataError(f"{model}: the model has no preprocessor to compute features")
        return pre, int(getattr(restored, "sample_rate", sample_rate))
    from convai_core.components import build

    pre = build(
        "modules",
        dict(node or DEFAULT_PREPROCESSOR),
        path="preprocessor",
        context={"sample_rate": sample_rate},
    )
    return pre, sample_rate


def _utterance_features(
    data: KaldiDataDir, preprocessor: Any, sample_rate: int, audio_dir: Path
) -> Iterator[tuple[str, np.ndarray]]:
    import torch

    from convai_kaldi.manifest import data_dir_to_rows

    rows = data_dir_to_rows(data, audio_dir=audio_dir)
    preprocessor.eval()
    with torch.inference_mode():
        for row in _progress(rows, "compute-feats"):
            signal = _read_audio(row, sample_rate)
            spec, spec_len = preprocessor(signal[None], torch.tensor([signal.shape[0]]))
            matrix = spec[0, :, : int(spec_len[0])].transpose(0, 1)  # (F, T) -> (T, F)
            yield str(row["utt_id"]), matrix.contiguous().numpy().astype(np.float32)


def _progress(rows: Sequence[Any], label: str) -> Iterator[Any]:
    """Yield ``rows``, printing a line to stderr about every 2 seconds and at the end."""
    import sys
    import time

    start = last = time.monotonic()
    for done, row in enumerate(rows, start=1):
        yield row
        now = time.monotonic()
        if now - last >= 2.0 or done == len(rows):
            last = now
            print(f"{label}: {done}/{len(rows)} utterances, {now - start:.1f} s", file=sys.stderr)


def compute_feats(
    data_dir: str | os.PathLike[str],
    *,
    ark_dir: str | os.PathLike[str] | None = None,
    model: str | None = None,
    preprocessor: Mapping[str, Any] | None = None,
    sample_rate: int = 16000,
    compress: bool = False,
    cmvn: bool = False,
    allow_pipes: bool = False,
) -> dict[str, Any]:
    """Compute features of every utterance with a convai preprocessor and write them as Kaldi
    does: ``<ark_dir>/raw_feats.ark`` + ``<data_dir>/feats.scp`` and ``utt2num_frames``;
    with ``cmvn``, per-speaker statistics in ``<ark_dir>/cmvn.ark`` + ``<data_dir>/cmvn.scp``.

    Args:
        data_dir: a data directory with ``wav.scp`` (and ``segments``).
        ark_dir: where the ark files go (default ``<data_dir>/data``).
        model: a ``.convai`` model whose preprocessor to use (features it was trained on).
        preprocessor: a preprocessor node built from the registry (default
            :data:`DEFAULT_PREPROCESSOR`), used when ``model`` is not given.
        sample_rate: the rate audio is resampled to for ``preprocessor``.
        compress: store matrices compressed (Kaldi's ``--compress=true``, kaldiio method 2).
        cmvn: also write per-speaker CMVN statistics.
        allow_pipes: allow ``wav.scp`` commands.

    Files appear only when every utterance is done: the arks are written to temporary names
    and renamed, then the ``.scp`` files are written atomically.

    Returns:
        ``{"utterances", "dim", "frames", "feats_scp", "cmvn_scp"}``.
    """
    import kaldiio

    data = read_data_dir(data_dir, allow_pipes=allow_pipes)
    folder = Path(data_dir)
    arks = Path(ark_dir) if ark_dir is not None else folder / "data"
    arks.mkdir(parents=True, exist_ok=True)
    pre, rate = _preprocessor(model, preprocessor, sample_rate)
    staging = Path(tempfile.mkdtemp(prefix=".compute-feats.", dir=arks))
    try:
        ark_tmp, scp_tmp = staging / "raw_feats.ark", staging / "feats.scp"
        frames: dict[str, int] = {}
        per_speaker: dict[str, list[np.ndarray]] = {}
        dim = 0
        method = 2 if compress else None
        with kaldiio.WriteHelper(f"ark,scp:{ark_tmp},{scp_tmp}", compression_method=method) as w:
            for utt, matrix in _utterance_features(data, pre, rate, staging / "audio"):
                w(utt, matrix)
                frames[utt] = matrix.shape[0]
                dim = matrix.shape[1]
                if cmvn:
                    speaker = data.utt2spk.get(utt, utt)
                    per_speaker.setdefault(speaker, []).append(matrix)
        final_ark = (arks / "raw_feats.ark").resolve()
        ark_tmp.replace(final_ark)
        scp_lines = _repoint(scp_tmp.read_text(), str(ark_tmp), str(final_ark))
        outputs = {"feats.scp": scp_lines}
        outputs["utt2num_frames"] = "".join(f"{u} {frames[u]}\n" for u in kaldi_sorted(frames))
        if cmvn:
            cmvn_tmp, cmvn_scp_tmp = staging / "cmvn.ark", staging / "cmvn.scp"
            stats = {spk: cmvn_stats(mats) for spk, mats in per_speaker.items()}
            kaldiio.save_ark(
                str(cmvn_tmp), {s: stats[s] for s in kaldi_sorted(stats)}, scp=str(cmvn_scp_tmp)
            )
            final_cmvn = (arks / "cmvn.ark").resolve()
            cmvn_tmp.replace(final_cmvn)
            outputs["cmvn.scp"] = _repoint(cmvn_scp_tmp.read_text(), str(cmvn_tmp), str(final_cmvn))
        for name, text in outputs.items():
            tmp = folder / f".{name}.tmp{os.getpid()}"
            tmp.write_text(_sorted_lines(text), encoding="utf-8")
            tmp.replace(folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "utterances": len(frames),
        "dim": dim,
        "frames": sum(frames.values()),
        "feats_scp": str(folder / "feats.scp"),
        "cmvn_scp": str(folder / "cmvn.scp") if cmvn else None,
    }


def _repoint(scp: str, old: str, new: str) -> str:
    """Point the lines of an ``.scp`` written for ``old`` at the renamed ark ``new``."""
    lines = []
    for line in scp.splitlines():
        key, location = line.split(maxsplit=1)
        if not location.startswith(old + ":"):
            raise KaldiDataError(f"unexpected .scp line {line!r} (expected {old}:<offset>)")
        lines.append(f"{key} {new}{location[len(old) :]}")
    return "\n".join(lines) + "\n"


def _sorted_lines(text: str) -> str:
    lines = [line for line in text.splitlines() if line]
    lines.sort(key=lambda line: line.split(maxsplit=1)[0].encode())
    return "\n".join(lines) + "\n"
