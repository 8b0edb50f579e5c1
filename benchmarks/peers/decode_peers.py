"""Peer decoders for benchmarks/decode_speed.py, run with a side venv's python (never by convai).

Reads the saved log-probabilities and settings (an .npz and a .json from decode_speed.py), decodes
them with pyctcdecode and with NeMo's flashlight decoder (FlashLightKenLMBeamSearchDecoder), and
prints one JSON object: per decoder, the texts and the seconds of every repeat.
"""

from __future__ import annotations

import json
import math
import sys
import time


def _time(fn, repeats: int) -> tuple[list[str], list[float]]:
    texts = fn()  # warm-up (and the texts)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return texts, seconds


def main() -> None:
    import numpy as np
    import torch

    settings = json.loads(open(sys.argv[1], encoding="utf-8").read())
    log_probs = np.load(settings["log_probs"])["log_probs"].astype(np.float32)  # (B, T, V)
    labels = settings["labels"]  # tokens in id order; the blank is the last class
    torch.set_num_threads(settings["threads"])
    out: dict[str, dict] = {}

    if "pyctcdecode" in settings["peers"]:
        from pyctcdecode import build_ctcdecoder

        decoder = build_ctcdecoder(
            [*labels, ""],
            kenlm_model_path=settings["lm"],
            unigrams=settings["unigrams"],
            # flashlight's LM scores are log10, pyctcdecode's natural: same weight on the same LM
            alpha=settings["alpha"] / math.log(10),
            beta=settings["beta"],
        )

        def run_pyctcdecode() -> list[str]:
            return [decoder.decode(item, beam_width=settings["beam"]) for item in log_probs]

        texts, seconds = _time(run_pyctcdecode, settings["repeats"])
        out["pyctcdecode"] = {"texts": texts, "seconds": seconds}

    if "nemo_flashlight" in settings["peers"]:
        from nemo.collections.asr.modules.flashlight_decoder import (
            FlashLightKenLMBeamSearchDecoder,
        )

        nemo = FlashLightKenLMBeamSearchDecoder(
            lm_path=settings["lm"],
            vocabulary=labels,
            lexicon_path=settings["nemo_lexicon"],
            beam_size=settings["beam"],
            beam_size_token=settings["beam_size_token"],
            beam_threshold=settings["beam_threshold"],
            lm_weight=settings["alpha"],
            word_score=settings["beta"],
        )
        tensor = torch.from_numpy(log_probs)

        def run_nemo() -> list[str]:
            hypotheses = nemo(log_probs=tensor)
            return [" ".join(h[0]["words"]) for h in hypotheses]

        texts, seconds = _time(run_nemo, settings["repeats"])
        out["nemo_flashlight"] = {"texts": texts, "seconds": seconds}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
