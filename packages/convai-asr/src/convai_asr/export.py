"""What a CTC model hands to export targets (see :class:`convai_core.export_spec.ExportSpec`).

The exported module is the inference path only: mel preprocessor (unless ``preprocessor=False``,
as TensorRT has no STFT), encoder and CTC head; no SpecAugment, no dither (eval mode). Inputs
to verify exports with are real speech (files given by the caller, else the recordings of
pocketsphinx-testdata, else a sentence spoken by espeak-ng) and Gaussian noise.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from convai_asr.modules.features import MelSpectrogramPreprocessor
from convai_core.errors import ExportError
from convai_core.export_spec import ExportSpec, item_lengths

if TYPE_CHECKING:
    from convai_asr.models.ctc import CTCModel

log = logging.getLogger(__name__)

#: Bounds of the dynamic axes: up to 1 h of audio, batches of up to 1024 items.
MAX_SECONDS = 3600
MAX_BATCH = 1024


class CTCInference(nn.Module):
    """The inference path of a CTC model as a plain module (no Lightning, no augmentation).

    Shapes:
        with the preprocessor: audio_signal (B, T_samples), length (B,)
        without it: processed_signal (B, n_mels, T_frames), processed_length (B,)
        -> log_probs (B, T', V), encoded_length (B,)
    """

    def __init__(self, model: CTCModel, *, preprocessor: bool = True) -> None:
        super().__init__()
        self.preprocessor = model.preprocessor if preprocessor else None
        self.encoder = model.encoder
        self.decoder = model.decoder

    def forward(
        self, signal: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.preprocessor is not None:
            signal, length = self.preprocessor(signal, length)
        encoded, encoded_length = self.encoder(signal, length)
        return self.decoder(encoded), encoded_length


class _RealSpeech:
    """One long 1-D waveform of real speech at the model's rate, built on first use."""

    def __init__(self, sample_rate: int, paths: Sequence[str | Path] | None) -> None:
        self.sample_rate = sample_rate
        self.paths = [Path(p) for p in paths] if paths else None
        self._audio: torch.Tensor | None = None
        self.source = ""

    def _default_paths(self) -> list[Path]:
        from convai_asr.data.pocketsphinx import DATA_DIR

        found = sorted((DATA_DIR / "librivox").glob("*.wav"))
        if found:
            self.source = f"pocketsphinx-testdata ({DATA_DIR})"
            return found
        return []

    def audio(self) -> torch.Tensor:
        if self._audio is not None:
            return self._audio
        from convai_asr.audio import load_audio

        paths = self.paths
        if paths:
            self.source = ", ".join(str(p) for p in paths)
        else:
            paths = self._default_paths()
        if paths:
            pieces = [load_audio(p, sample_rate=self.sample_rate) for p in paths]
        else:
            pieces = [self._spoken()]
        audio = torch.cat(pieces)
        if audio.numel() == 0:
            raise ExportError(f"the real audio to verify with ({self.source}) is empty")
        self._audio = audio
        return audio

    def _spoken(self) -> torch.Tensor:
        from convai_asr.audio import load_audio
        from convai_asr.synth.voices import Voice, check_engines, synthesize

        voice = Voice.parse("espeak-ng:en-us")
        try:
            check_engines([voice])
        except Exception as exc:
            raise ExportError(
                "no real speech to verify the export with: pass audio files (verify_audio=[...] "
                "or `convai export --verify-audio FILE`), or install pocketsphinx-testdata or "
                f"espeak-ng ({exc})"
            ) from exc
        with tempfile.TemporaryDirectory(prefix="convai-export-") as tmp:
            wav = Path(tmp) / "speech.wav"
            text = (
                "the quick brown fox jumps over the lazy dog while seven people watch from the "
                "old wooden bridge and talk about the weather"
            )
            synthesize(voice, text, wav, sample_rate=self.sample_rate, seed=0)
            self.source = "a sentence spoken by espeak-ng"
            return load_audio(wav, sample_rate=self.sample_rate)

    def segments(self, lengths: list[int]) -> list[torch.Tensor]:
        """``len(lengths)`` pieces, each starting elsewhere in the speech; tiled when short."""
        audio = self.audio()
        out = []
        for i, n in enumerate(lengths):
            start = (i * audio.numel()) // max(len(lengths), 1) // 3
            repeats = -(-(start + n) // audio.numel())
            tiled = audio.repeat(repeats) if repeats > 1 else audio
            out.append(tiled[start : start + n])
        return out


def ctc_export_spec(
    model: CTCModel,
    *,
    preprocessor: bool = True,
    verify_audio: Sequence[str | Path] | None = None,
) -> ExportSpec:
    """The :class:`ExportSpec` of a CTC model (see the module docstring)."""
    model.eval()
    module = CTCInference(model, preprocessor=preprocessor).eval()
    pre = model.preprocessor
    rate = model.sample_rate
    real = _RealSpeech(rate, verify_audio)

    def pad(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([x.numel() for x in items], dtype=torch.int64)
        batch = torch.zeros(len(items), int(lengths.max()))
        for i, x in enumerate(items):
            batch[i, : x.numel()] = x
        return batch, lengths

    def waveforms(batch: int, samples: int, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = item_lengths(batch, samples)
        if kind == "real":
            return pad(real.segments(lengths))
        if kind != "random":
            raise ValueError(f"input kind {kind!r}: use 'real' or 'random'")
        generator = torch.Generator().manual_seed(1000 * batch + samples)
        return pad([torch.randn(n, generator=generator) * 0.1 for n in lengths])

    def make_inputs(batch: int, length: int, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
        if preprocessor:
            return waveforms(batch, length, kind)
        # features: audio that gives `length` frames, through the model's own preprocessor
        audio, audio_len = waveforms(batch, (length - 1) * pre.hop_length, kind)
        with torch.inference_mode():
            features, feature_len = pre(audio, audio_len)
        return features[:, :, :length].clone(), feature_len.clone()

    if preprocessor:
        ports_in = dict(model.input_ports)
        lengths = [rate, 7 * rate]
        bounds = {"batch": (1, MAX_BATCH), "time": (rate // 10, MAX_SECONDS * rate)}
    else:
        ports_in = dict(pre.output_ports)
        frames = round(1 / pre.frame_shift_s)
        lengths = [frames + 1, 7 * frames + 1]
        bounds = {"batch": (1, MAX_BATCH), "time": (16, MAX_SECONDS * frames)}
    metadata = asr_metadata(model, includes_preprocessor=preprocessor)
    artifacts: dict[str, Any] = {}
    for key, path in model.artifacts.items():
        if key == "tokenizer.model_path":
            artifacts["tokenizer.model"] = Path(path)
            metadata["tokenizer_model"] = "tokenizer.model"
    return ExportSpec(
        name=str(model.cfg.get("name", "asr/ctc")).replace("/", "_"),
        module=module,
        input_ports=ports_in,
        output_ports=dict(model.output_ports),
        make_inputs=make_inputs,
        verify_lengths=lengths,
        dim_bounds=bounds,
        metadata=metadata,
        tolerance=1e-3,
        integer_outputs=("encoded_length",),
        artifacts=artifacts,
        arrays={} if preprocessor else {"filterbank": pre.filterbank, "window": pre.window},
    )


def tokenizer_kind(tokenizer: Any) -> str:
    """How a runtime joins the tokens of ``tokenizer`` into text: ``"char"`` or
    ``"sentencepiece"`` (the kinds of convai-asr-runtime's bundle schema).

    Raises:
        ExportError: a tokenizer of another kind, which the runtime cannot detokenize.
    """
    from convai_asr.text.tokenizers import CharTokenizer, SentencePieceTokenizer

    if isinstance(tokenizer, SentencePieceTokenizer):
        return "sentencepiece"
    if isinstance(tokenizer, CharTokenizer):
        return "char"
    raise ExportError(
        f"{type(tokenizer).__name__} is neither a character nor a SentencePiece tokenizer; "
        "exports record how tokens join into text only for those two"
    )


def _feature_settings(pre: Any) -> dict[str, Any] | None:
    """The settings convai-asr-runtime computes features from, for the mel preprocessor only."""
    if not isinstance(pre, MelSpectrogramPreprocessor):
        return None
    return {
        "sample_rate": pre.sample_rate,
        "n_fft": pre.n_fft,
        "win_length": pre.win_length,
        "hop_length": pre.hop_length,
        "n_mels": pre.n_mels,
        "preemph": pre.preemph,
        "log": pre.log,
        "log_zero_guard": pre.log_zero_guard,
        "normalize": pre.normalize,
        "pad_to": pre.pad_to,
        "mag_power": pre.mag_power,
        "count_last_frame": pre.count_last_frame,
    }


def asr_metadata(model: CTCModel, *, includes_preprocessor: bool) -> dict[str, Any]:
    """What a runtime needs beside the graph to turn audio into text, as plain JSON values (the
    keys of convai-asr-runtime's bundle schema, :mod:`convai_asr_runtime.schema`)."""
    pre = model.preprocessor
    meta: dict[str, Any] = {
        "task": "asr/ctc",
        "model": str(model.cfg.get("name", "asr/ctc")),
        "sample_rate": model.sample_rate,
        "tokens": list(model.tokenizer.tokens),
        "blank_id": model.blank_id,
        "tokenizer": tokenizer_kind(model.tokenizer),
        "frame_shift_s": model.frame_shift_s,
        "includes_preprocessor": includes_preprocessor,
        "preprocessor": _feature_settings(pre),
        "transcribe": {"chunk_seconds": 30.0, "overlap_seconds": 4.0},
    }
    if meta["preprocessor"] is None:  # a front end the runtime cannot compute: in the graph
        if not includes_preprocessor:
            raise ExportError(
                f"{type(pre).__name__} is not a front end convai-asr-runtime computes; export "
                "with the preprocessor in the graph (preprocessor=True, opset >= 17)"
            )
        del meta["preprocessor"]
    return meta
