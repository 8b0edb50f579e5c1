"""Text to audio: an acoustic model and a vocoder, sentence by sentence.

Example::

    from convai_tts.synthesize import Synthesizer
    tts = Synthesizer.from_files("voice.convai")            # Griffin-Lim vocoder
    tts.to_file("Hello there. How are you?", "hello.wav")    # streamed, sentence by sentence

Long text is synthesized one sentence at a time and each sentence is written (or yielded) as soon
as it is ready, so the first audio comes after one sentence's work, not the whole text's.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convai_core.errors import ConvaiError
from convai_tts.audio import GriffinLim, MelConfig

__all__ = ["ACOUSTIC_MODELS", "VOCODER_MODELS", "Synthesizer", "load_vocoder"]

#: Silence between two sentences, in seconds.
SENTENCE_GAP_S = 0.25


#: Acoustic models a :class:`Synthesizer` reads (each has ``mels(text)`` and ``mel_config``).
ACOUSTIC_MODELS = ("tts/fastpitch", "tts/tacotron2")
#: Trained vocoders (each has ``vocoder()`` and ``mel_config``).
VOCODER_MODELS = ("tts/hifigan", "tts/waveglow")


def load_vocoder(
    spec: str | os.PathLike[str], mel_config: MelConfig, griffin_lim_iters: int = 32
) -> torch.nn.Module:
    """A vocoder module (log-mel (1, n_mels, F) -> audio (1, samples)) from its name:
    ``griffin-lim`` (no training), ``hifigan:universal`` / ``hifigan:ljspeech`` (the released
    HiFi-GAN V1 generators, see :mod:`convai_tts.models.hifigan`) or the path of a ``.convai``
    vocoder (``tts/hifigan``, ``tts/waveglow``).

    Raises:
        ConvaiError: an unknown name, an archive of another kind, or mel settings that differ
            from the acoustic model's.
    """
    text = str(spec)
    if text == "griffin-lim":
        return GriffinLim(mel_config, n_iter=griffin_lim_iters)
    if text.startswith("hifigan:"):
        from convai_tts.models.hifigan import PRETRAINED_GENERATORS, pretrained_vocoder

        name = text.split(":", 1)[1]
        if name not in PRETRAINED_GENERATORS:
            raise ConvaiError(
                f"unknown pretrained vocoder {text!r}; choose "
                + ", ".join(f"hifigan:{n}" for n in PRETRAINED_GENERATORS)
            )
        if mel_config != MelConfig():
            raise ConvaiError(
                f"vocoder {text!r} reads HiFi-GAN's mels {MelConfig().to_dict()}, the acoustic "
                f"model writes {mel_config.to_dict()}: they must be the same"
            )
        return pretrained_vocoder(name)
    if Path(text).suffix == ".convai" or Path(text).is_file():
        from convai_core.models.base import ModelBase

        vocoder_model: Any = ModelBase.restore_from(text)
        kind = str(vocoder_model.cfg.get("name"))
        if kind not in VOCODER_MODELS:
            raise ConvaiError(
                f"{text} holds a {kind} model, not a vocoder ({', '.join(VOCODER_MODELS)})"
            )
    else:
        raise ConvaiError(
            f"unknown vocoder {text!r}; use griffin-lim, hifigan:universal, hifigan:ljspeech or "
            "the path of a .convai vocoder (tts/hifigan, tts/waveglow)"
        )
    if vocoder_model.mel_config != mel_config:
        raise ConvaiError(
            f"vocoder {text!r} reads mels made with {vocoder_model.mel_config.to_dict()}, the "
            f"acoustic model writes {mel_config.to_dict()}: they must be the same"
        )
    return vocoder_model.vocoder()


class Synthesizer:
    """An acoustic model (``tts/fastpitch``, ``tts/tacotron2``) + a vocoder.

    Args:
        model: the acoustic model.
        vocoder: a name or path that :func:`load_vocoder` reads (default ``"griffin-lim"``), or
            a module that maps log-mel (1, n_mels, F) to audio (1, samples).
        griffin_lim_iters: iterations of Griffin-Lim.
    """

    def __init__(
        self,
        model: Any,
        vocoder: str | os.PathLike[str] | torch.nn.Module = "griffin-lim",
        griffin_lim_iters: int = 32,
    ):
        self.model = model.eval()
        self.mel_config: MelConfig = model.mel_config
        module = (
            vocoder
            if isinstance(vocoder, torch.nn.Module)
            else load_vocoder(vocoder, self.mel_config, griffin_lim_iters)
        )
        self.vocoder = module.to(getattr(model, "device", "cpu")).eval()

    @classmethod
    def from_files(
        cls,
        model: str | os.PathLike[str],
        vocoder: str | os.PathLike[str] = "griffin-lim",
        griffin_lim_iters: int = 32,
    ) -> Synthesizer:
        """Restore the acoustic model from a ``.convai`` archive; ``vocoder`` as
        :func:`load_vocoder` reads it."""
        from convai_core.models.base import ModelBase

        restored = ModelBase.restore_from(model)
        if str(restored.cfg.get("name")) not in ACOUSTIC_MODELS:
            raise ConvaiError(
                f"{model} holds a {restored.cfg.get('name')} model, not a TTS acoustic model "
                f"({', '.join(ACOUSTIC_MODELS)})"
            )
        return cls(restored, vocoder, griffin_lim_iters)

    @property
    def sample_rate(self) -> int:
        return self.mel_config.sample_rate

    @torch.no_grad()
    def stream(self, text: str, pace: float = 1.0) -> Iterator[np.ndarray]:
        """Audio (float32, [-1, 1]) of each sentence of ``text``, in order.

        Raises:
            ConvaiError: the text has nothing to say.
        """
        for mel in self.model.mels(text, pace=pace):
            audio = self.vocoder(mel.unsqueeze(0).float())
            yield audio.reshape(-1).cpu().numpy().astype(np.float32)

    def synthesize(self, text: str, pace: float = 1.0) -> np.ndarray:
        """All of ``text`` as one clip (sentences joined by short pauses)."""
        gap = np.zeros(int(SENTENCE_GAP_S * self.sample_rate), dtype=np.float32)
        pieces: list[np.ndarray] = []
        for audio in self.stream(text, pace):
            if pieces:
                pieces.append(gap)
            pieces.append(audio)
        return np.concatenate(pieces)

    def to_file(self, text: str, output: str | os.PathLike[str], pace: float = 1.0) -> Path:
        """Write ``text`` as 16-bit WAV at ``output``, sentence by sentence; the file appears
        (atomically renamed) only when complete. Returns the path."""
        import soundfile as sf

        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=".wav", dir=output.parent, prefix=".tts-")
        os.close(handle)
        gap = np.zeros(int(SENTENCE_GAP_S * self.sample_rate), dtype=np.float32)
        try:
            with sf.SoundFile(
                temporary, "w", samplerate=self.sample_rate, channels=1, subtype="PCM_16"
            ) as wav:
                for index, audio in enumerate(self.stream(text, pace)):
                    if index:
                        wav.write(gap)
                    wav.write(audio)
            os.replace(temporary, output)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return output
