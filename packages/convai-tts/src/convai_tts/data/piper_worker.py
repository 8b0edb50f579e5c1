"""Teacher worker: synthesize utterances with a piper voice and report per-unit durations.

This file is a separate program, run by :mod:`convai_tts.data.teacher` with the Python of a side
virtual environment that has piper-tts installed. piper and espeak-ng are GPL-3 licensed, so
convai's library code never imports them: only this process does, and it imports nothing of
convai. It reads JSON lines on stdin, ``{"key": ..., "units": ["ipa", ...], "out": "x.wav"}``
(one IPA string per convai symbol), writes each utterance as 16-bit PCM WAV and answers with one
JSON line, ``{"key": ..., "samples": [...], "total": N}``: the audio samples of every unit (the
unit's phoneme ids and the pads after them, the leading BOS and pad going to the first unit and
the final EOS to the last), which sum to the clip's length. With ``--no-variation`` the voice's
sampling noise (piper's noise_scale and noise_w_scale) is set to zero: the same request gives
the same audio and durations on every run.
"""

from __future__ import annotations

import argparse
import json
import sys
import wave
from typing import Any

import numpy as np


def _voice(model: str, variation: bool) -> tuple[Any, Any]:
    """The voice, and its synthesis settings (None: the voice's own)."""
    from piper import PiperVoice, SynthesisConfig

    settings = None if variation else SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    return PiperVoice.load(model, include_alignments=True), settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="the voice's .onnx file")
    parser.add_argument("--no-variation", action="store_true", help="no sampling noise")
    args = parser.parse_args()
    voice, settings = _voice(args.model, variation=not args.no_variation)
    id_map = voice.config.phoneme_id_map
    pad, bos, eos = id_map["_"], id_map["^"], id_map["$"]
    hop = voice.config.hop_length
    for line in sys.stdin:
        request = json.loads(line)
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
        audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
        audio = np.pad(audio, (0, max(0, total - len(audio))))[:total]
        with wave.open(request["out"], "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(voice.config.sample_rate)
            handle.writeframes((audio * 32767).astype("<i2").tobytes())
        reply = {"key": request["key"], "samples": samples, "total": total, "hop": hop}
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
