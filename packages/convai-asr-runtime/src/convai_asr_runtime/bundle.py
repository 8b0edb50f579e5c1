"""A loaded ASR bundle: ``bundle.json`` + ``model.onnx`` (+ ``filterbank.npy`` and
``window.npy`` when the features are computed outside the graph), run with onnxruntime."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convai_asr_runtime import decode
from convai_asr_runtime.audio import audio_duration, read_audio
from convai_asr_runtime.features import mel_features
from convai_asr_runtime.schema import (
    FILTERBANK_FILE,
    METADATA_FILE,
    WINDOW_FILE,
    BundleError,
    read_metadata,
)

__all__ = ["Bundle", "expand_inputs"]


def expand_inputs(items: Sequence[str | Path]) -> list[str]:
    """Audio paths from paths and JSON-lines manifests (``audio_filepath``, relative to it).

    Raises:
        BundleError: a manifest line is not JSON or has no ``audio_filepath`` (file:line named).
        FileNotFoundError: a manifest does not exist.
    """
    paths: list[str] = []
    for item in items:
        if str(item).endswith((".json", ".jsonl")):
            manifest = Path(item)
            for number, line in enumerate(manifest.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    audio = Path(json.loads(line)["audio_filepath"])
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise BundleError(
                        f"{manifest}:{number}: not a manifest line with audio_filepath ({exc})"
                    ) from exc
                paths.append(str(audio if audio.is_absolute() else manifest.parent / audio))
        else:
            paths.append(str(item))
    return paths


class Bundle:
    """A bundle folder, validated and loaded into an onnxruntime session.

    Args:
        path: the bundle folder (written by ``convai export --format asr-bundle``).
        threads: onnxruntime intra-op threads (default: onnxruntime's choice).

    Attributes:
        settings: the validated ``bundle.json`` (:class:`~convai_asr_runtime.schema.BundleSettings`).
        meta: ``bundle.json`` as parsed, including keys the runtime does not use.

    Raises:
        BundleError: ``bundle.json`` is missing, malformed or from a newer schema, a file it
            names is missing, or the graph does not take (signal, length).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.settings = read_metadata(self.path)
        self.meta: dict[str, Any] = json.loads(
            (self.path / METADATA_FILE).read_text(encoding="utf-8")
        )
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        graph = self.path / self.settings.graph
        try:
            self.session = ort.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own (unexported) exception types
            raise BundleError(
                f"{graph}: onnxruntime cannot load the graph ({type(exc).__name__}: {exc}); "
                "re-export the bundle or upgrade onnxruntime"
            ) from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        if len(self.input_names) != 2:
            raise BundleError(
                f"{graph}: the graph takes inputs {self.input_names}; an ASR bundle's graph "
                "takes two (signal, length)"
            )
        self.sample_rate = self.settings.sample_rate
        self.tokens: list[str] = list(self.settings.tokens)
        self.blank_id = self.settings.blank_id
        self.kind = self.settings.tokenizer
        self.frame_shift_s = self.settings.frame_shift_s
        self.filterbank: np.ndarray | None = None  # numpy features (graphs of opset < 17)
        self.window: np.ndarray | None = None
        if not self.settings.includes_preprocessor:
            self.filterbank = np.load(self.path / FILTERBANK_FILE, allow_pickle=False)
            self.window = np.load(self.path / WINDOW_FILE, allow_pickle=False)

    # ------------------------------------------------------------------ graph
    def log_probs(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Per-frame log-probabilities of each waveform, trimmed to its length.

        Shapes:
            waves: items (T_i,) -> items (T'_i, V)
        """
        lengths = np.array([w.shape[0] for w in waves], dtype=np.int64)
        batch = np.zeros((len(waves), int(lengths.max())), dtype=np.float32)
        for i, w in enumerate(waves):
            batch[i, : w.shape[0]] = w
        signal, signal_len = batch, lengths
        features = self.settings.features
        if not self.settings.includes_preprocessor:
            # loaded in __init__; the schema requires the settings for such bundles
            assert self.filterbank is not None and self.window is not None
            assert features is not None
            signal, signal_len = mel_features(
                batch, lengths, features.as_dict(), self.filterbank, self.window
            )
        log_probs, out_len = self.session.run(
            None, dict(zip(self.input_names, (signal, signal_len), strict=True))
        )
        return [log_probs[i, : int(out_len[i])] for i in range(len(waves))]

    def _long(
        self, path: str, duration: float, batch_size: int, chunk: float, overlap: float
    ) -> np.ndarray:
        """Log-probabilities of a long file, run in windows of ``chunk`` seconds overlapping by
        ``overlap``; each window keeps the frames of its central region.

        Shapes:
            output: (T', V)
        """
        context, region = overlap / 2, chunk - overlap
        if region <= 0:
            raise ValueError("chunk_seconds must be larger than overlap_seconds")
        shift = self.frame_shift_s
        starts = [k * region for k in range(int(duration // region) + 1) if k * region < duration]
        kept = []
        for first in range(0, len(starts), batch_size):
            windows, offsets, regions = [], [], []
            for start in starts[first : first + batch_size]:
                begin = max(0.0, start - context)
                end = min(duration, start + region + context)
                windows.append(read_audio(path, self.sample_rate, begin, end - begin))
                offsets.append(begin)
                regions.append((start, min(duration, start + region)))
            for lp, begin, (r_start, r_end) in zip(
                self.log_probs(windows), offsets, regions, strict=True
            ):
                kept.append(lp[round((r_start - begin) / shift) : round((r_end - begin) / shift)])
        return np.concatenate(kept, axis=0)

    def _result(self, path: str, log_probs: np.ndarray, duration: float) -> dict[str, Any]:
        ids, frames = decode.greedy(log_probs, self.blank_id)
        words = decode.words(ids, frames, self.tokens, self.kind, self.frame_shift_s)
        for word in words:
            word["end"] = round(min(word["end"], duration), 3)
            word["start"] = round(min(word["start"], word["end"]), 3)
        return {
            "audio_filepath": path,
            "text": decode.detokenize(ids, self.tokens, self.kind),
            "words": words,
        }

    # ------------------------------------------------------------------ files
    def transcribe(
        self,
        audio: str | Path | Sequence[str | Path],
        *,
        batch_size: int = 8,
        chunk_seconds: float | None = None,
        overlap_seconds: float | None = None,
    ) -> list[dict[str, Any]]:
        """Transcribe files (or manifests): one ``{"audio_filepath", "text", "words"}`` each.

        Short files are batched by duration; files longer than ``chunk_seconds`` (default the
        bundle's, 30 s) are run in windows overlapping by ``overlap_seconds`` (default 4 s).

        Raises:
            AudioReadError: a file is missing, unreadable, empty or holds NaN samples.
            BundleError: a manifest line is malformed.
        """
        chunk = float(self.settings.chunk_seconds if chunk_seconds is None else chunk_seconds)
        overlap = float(
            self.settings.overlap_seconds if overlap_seconds is None else overlap_seconds
        )
        paths = expand_inputs([audio] if isinstance(audio, str | Path) else list(audio))
        durations = [audio_duration(p) for p in paths]
        results: list[dict[str, Any] | None] = [None] * len(paths)
        short = sorted(
            (i for i, d in enumerate(durations) if d <= chunk), key=durations.__getitem__
        )
        for first in range(0, len(short), batch_size):
            group = short[first : first + batch_size]
            waves = [read_audio(paths[i], self.sample_rate) for i in group]
            for i, lp in zip(group, self.log_probs(waves), strict=True):
                results[i] = self._result(paths[i], lp, durations[i])
        for i, d in enumerate(durations):
            if d > chunk:
                lp = self._long(paths[i], d, batch_size, chunk, overlap)
                results[i] = self._result(paths[i], lp, d)
        return [r for r in results if r is not None]
