"""piper worker: synthesize utterances with a piper voice, one JSON request a line.

This file is a separate program, run with the Python of the side environment that has piper-tts
installed (:mod:`convai_core.datatools`). piper and espeak-ng are GPL-3 licensed, so convai's
library code never imports them: only this process does, and it imports nothing of convai.

It reads JSON lines on stdin and answers each with one JSON line once its 16-bit PCM WAV is
written (at the voice's own rate). Two kinds of request:

* ``{"key": ..., "units": ["ipa", ...], "out": "x.wav"}``: our own phonemes, one IPA string per
  convai symbol (the TTS teacher corpus). The answer, ``{"key": ..., "samples": [...], "total":
  N, "hop": H}``, gives the audio samples of every unit (its phoneme ids and the pads after them;
  the leading BOS and pad go to the first unit and the final EOS to the last), which sum to the
  clip's length. ``--no-variation`` sets the voice's sampling noise (noise_scale and
  noise_w_scale) to zero: the same request then gives the same audio and durations every run.
* ``{"key": ..., "text": "...", "out": "x.wav", "length_scale": 1.0, "noise_scale": 0.667,
  "noise_w_scale": 0.8}``: plain text, read by the voice's own phonemizer, with optional
  speaking-rate and variation settings (ASR training data). The answer is ``{"key": ...,
  "total": N, "sample_rate": R}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import wave
from typing import Any

import numpy as np


def _write(path: str, audio: Any, rate: int) -> None:
    with wave.open(path, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes())


def _units(voice: Any, settings: Any, request: dict[str, Any]) -> dict[str, Any]:
    id_map = voice.config.phoneme_id_map
    pad, bos, eos = id_map["_"], id_map["^"], id_map["$"]
    ids: list[int] = [*bos, *pad]
    owner: list[int] = [0] * len(ids)
    for index, unit in enumerate(request["units"]):
        for char in unit:
            if char not in id_map:
                raise SystemExit(f"{request['key']}: the voice has no phoneme {char!r}")
            ids += [*id_map[char], *pad]
            owner += [index] * (len(id_map[char]) + len(pad))
    ids += eos
    owner += [len(request["units"]) - 1] * len(eos)
    audio, frames = voice.phoneme_ids_to_audio(ids, settings, include_alignments=True)
    if frames is None or len(frames) != len(ids):
        raise SystemExit("the voice gave no alignments (is the onnx package installed?)")
    samples = [0] * len(request["units"])
    for unit, count in zip(owner, frames.tolist(), strict=True):
        samples[unit] += int(count)
    total = sum(samples)
    audio = np.asarray(audio, dtype=np.float32)
    audio = np.pad(audio, (0, max(0, total - len(audio))))[:total]
    _write(request["out"], audio, voice.config.sample_rate)
    return {"samples": samples, "total": total, "hop": voice.config.hop_length}


def _text(voice: Any, request: dict[str, Any]) -> dict[str, Any]:
    from piper import SynthesisConfig

    settings = SynthesisConfig(
        length_scale=request.get("length_scale"),
        noise_scale=request.get("noise_scale"),
        noise_w_scale=request.get("noise_w_scale"),
    )
    chunks = [chunk.audio_float_array for chunk in voice.synthesize(request["text"], settings)]
    if not chunks:
        raise SystemExit(f"{request['key']}: the voice made no audio of {request['text']!r}")
    audio = np.concatenate(chunks).astype(np.float32)
    _write(request["out"], audio, voice.config.sample_rate)
    return {"total": len(audio), "sample_rate": voice.config.sample_rate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="the voice's .onnx file")
    parser.add_argument("--no-variation", action="store_true", help="no sampling noise")
    args = parser.parse_args()
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(args.model, include_alignments=True)
    settings = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0) if args.no_variation else None
    for line in sys.stdin:
        request = json.loads(line)
        if "units" in request:
            reply = _units(voice, settings, request)
        else:
            reply = _text(voice, request)
        print(json.dumps({"key": request["key"], **reply}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
