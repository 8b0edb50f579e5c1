"""Grid search of the LM weight (alpha) and word bonus (beta) of beam search on a dev manifest.

The acoustic model runs once over the manifest; every (alpha, beta) point then only re-decodes
the saved log-probabilities, so a grid of 30 points costs 30 decodes and one forward pass.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from convai_asr.data.manifest import read_manifests
from convai_asr.decoding.greedy import ctc_greedy_decode
from convai_asr.metrics.wer import char_error_rate, word_error_rate
from convai_asr.transcribe import file_log_probs

if TYPE_CHECKING:
    from convai_asr.models.ctc import CTCModel

__all__ = ["manifest_log_probs", "tune_lm", "wer_of_decoder"]


@torch.inference_mode()
def manifest_log_probs(
    model: CTCModel, manifest: str | os.PathLike[str], *, batch_size: int = 8
) -> tuple[list[torch.Tensor], list[str]]:
    """The model's log-probabilities (T', V) of every utterance and the normalized references."""
    entries = read_manifests(str(manifest)).entries
    paths = [e.audio_filepath for e in entries]
    references = [model.normalizer(e.text) for e in entries]
    outputs: list[torch.Tensor | None] = [None] * len(paths)
    was_training = model.training
    model.eval()
    try:
        for i, _, log_probs in file_log_probs(model, paths, batch_size=batch_size):
            outputs[i] = log_probs
    finally:
        model.train(was_training)
    return [o for o in outputs if o is not None], references


def _batches(
    log_probs: Sequence[torch.Tensor], size: int = 16
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for first in range(0, len(log_probs), size):
        group = log_probs[first : first + size]
        lengths = torch.tensor([x.shape[0] for x in group])
        padded = torch.zeros(len(group), int(lengths.max()), group[0].shape[1])
        for i, x in enumerate(group):
            padded[i, : x.shape[0]] = x
        out.append((padded, lengths))
    return out


def wer_of_decoder(
    decoder: Callable[[torch.Tensor, torch.Tensor], Sequence[Any]],
    tokenizer: Any,
    log_probs: Sequence[torch.Tensor],
    references: Sequence[str],
) -> tuple[float, float, float]:
    """(WER, CER, decode seconds) of a decoder on saved log-probabilities."""
    hypotheses: list[str] = []
    started = time.perf_counter()
    for padded, lengths in _batches(log_probs):
        hypotheses += [tokenizer.decode(h.token_ids) for h in decoder(padded, lengths)]
    seconds = time.perf_counter() - started
    return (
        word_error_rate(list(references), hypotheses),
        char_error_rate(list(references), hypotheses),
        seconds,
    )


def tune_lm(
    model: CTCModel,
    manifest: str | os.PathLike[str],
    lm: str | os.PathLike[str],
    *,
    alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0),
    betas: Sequence[float] = (-1.0, 0.0, 1.0, 2.0, 3.0),
    beam: int = 32,
    lexicon: str | None = "auto",
    batch_size: int = 8,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Decode the dev manifest at every (alpha, beta) and return the grid and the best point.

    Args:
        model: the acoustic model.
        manifest: the dev manifest(s), comma-separated.
        lm: the KenLM file.
        alphas: LM weights to try.
        betas: word bonuses to try.
        beam: beam size of every decode.
        lexicon: as for ``asr/beam_kenlm``.
        batch_size: utterances per forward pass.
        progress: called with one line per grid point (default: standard error).

    Returns:
        ``{"greedy": {"wer", "cer"}, "grid": [{"alpha", "beta", "wer", "cer", "seconds"}...],
        "best": {...}, "utterances": N}``; the best point has the lowest WER (then CER, then
        the smallest alpha).
    """
    from convai_asr.decoding.beam import KenLMBeamDecoder

    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    say(f"tune: running the acoustic model over {manifest}")
    log_probs, references = manifest_log_probs(model, manifest, batch_size=batch_size)
    if not log_probs:
        raise ValueError(f"{manifest} lists no utterance")

    def greedy(x: torch.Tensor, lengths: torch.Tensor) -> list[Any]:
        return ctc_greedy_decode(x, lengths, blank_id=model.blank_id)

    g_wer, g_cer, _ = wer_of_decoder(greedy, model.tokenizer, log_probs, references)
    say(f"tune: {len(log_probs)} utterances, greedy WER {g_wer:.2%} CER {g_cer:.2%}")
    decoder = KenLMBeamDecoder(
        model.blank_id, model.tokenizer, lm=lm, lexicon=lexicon, beam=beam
    )  # loaded once: each grid point only changes the weights
    if not decoder.beta_applies and len(betas) > 1:
        say("tune: beta has no effect here (lexicon-free decoding of a subword model): beta 0")
        betas = (0.0,)
    grid = []
    total = len(alphas) * len(betas)
    for alpha in alphas:
        for beta in betas:
            decoder.set_weights(alpha, beta)
            wer, cer, seconds = wer_of_decoder(decoder, model.tokenizer, log_probs, references)
            grid.append({"alpha": alpha, "beta": beta, "wer": wer, "cer": cer, "seconds": seconds})
            say(
                f"tune: [{len(grid)}/{total}] alpha {alpha:g} beta {beta:g}: WER {wer:.2%} "
                f"CER {cer:.2%} ({seconds:.1f} s)"
            )
    best = min(grid, key=lambda p: (p["wer"], p["cer"], p["alpha"]))
    return {
        "utterances": len(log_probs),
        "lm": str(lm),
        "beam": beam,
        "greedy": {"wer": g_wer, "cer": g_cer},
        "grid": grid,
        "best": best,
    }
