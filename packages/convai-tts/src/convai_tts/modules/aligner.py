"""Learning which mel frames belong to which symbol, for recordings that come without durations
(the alignment framework of RAD-TTS, "One TTS Alignment To Rule Them All", Badlani et al. 2021).

Symbols and frames are projected into a common space by small convolution stacks; the soft
alignment of frame ``f`` over symbols is ``softmax_t(-temperature * |q_f - k_t|^2)``, multiplied
by a beta-binomial prior that favours the diagonal. Training maximizes the probability of every
monotonic path through all the symbols (the forward-sum loss, computed with CTC: each symbol is a
label, plus a blank of fixed low probability) and, later, pulls the soft alignment towards its best
monotonic path (the binarization loss). The best path is found by monotonic alignment search
(the ``monotonic-alignment-search`` package, MIT): every symbol gets at least one frame, so a
clip needs at least as many frames as symbols (:func:`forward_sum_loss` and
:func:`hard_alignment` refuse others).

The projection sizes (twice the input width, then the attention width) and the blank's log
probability (-1) are those of NeMo's alignment encoder and forward-sum loss (Apache-2.0), read for
the facts; the code is convai's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "AlignmentEncoder",
    "beta_binomial_prior",
    "binarization_loss",
    "durations_from_path",
    "forward_sum_loss",
    "hard_alignment",
]


def beta_binomial_prior(
    symbols: int, frames: int, scaling: float = 1.0, device: torch.device | None = None
) -> torch.Tensor:
    """log P(symbol t | frame f) of the beta-binomial prior, (frames, symbols): frame f of F
    expects symbol ``~ T * f / F``, with a spread that lets the speaking rate vary."""
    n = symbols - 1
    k = torch.arange(symbols, dtype=torch.float64, device=device)[None, :]
    f = torch.arange(1, frames + 1, dtype=torch.float64, device=device)[:, None]
    a, b = scaling * f, scaling * (frames + 1 - f)

    def log_beta(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.lgamma(x) + torch.lgamma(y) - torch.lgamma(x + y)

    choose = (
        torch.lgamma(torch.tensor(n + 1.0, dtype=torch.float64))
        - torch.lgamma(k + 1)
        - torch.lgamma(n - k + 1)
    )
    return (choose + log_beta(k + a, n - k + b) - log_beta(a, b)).float()


class AlignmentEncoder(nn.Module):
    """Soft alignment of mel frames to symbol vectors.

    Args:
        n_mels: mel bands of the frames.
        d_text: size of the symbol vectors.
        d_attention: size of the common space.
        temperature: the scale of the squared distances.
    """

    def __init__(
        self, n_mels: int, d_text: int, d_attention: int = 80, temperature: float = 0.0005
    ) -> None:
        super().__init__()
        self.temperature = float(temperature)
        self.key = nn.Sequential(
            nn.Conv1d(d_text, 2 * d_text, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(2 * d_text, d_attention, 1),
        )
        self.query = nn.Sequential(
            nn.Conv1d(n_mels, 2 * n_mels, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(2 * n_mels, n_mels, 1),
            nn.ReLU(),
            nn.Conv1d(n_mels, d_attention, 1),
        )

    def forward(
        self,
        mel: torch.Tensor,
        text: torch.Tensor,
        text_pad: torch.Tensor,
        log_prior: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Alignment scores of frames over symbols.

        Args:
            mel: (B, n_mels, F) log-mel frames.
            text: (B, T, d_text) symbol vectors.
            text_pad: (B, T) True at padding symbols.
            log_prior: (B, F, T) log prior added to the scores (optional).

        Returns:
            ``log_scores`` (B, F, T): ``-temperature * distance``, normalized over the symbols
            and plus the prior when there is one (the forward-sum loss's input), and ``soft``
            (B, F, T): their softmax over the real symbols (each frame's weights sum to 1).
        """
        keys = self.key(text.transpose(1, 2))  # (B, d, T)
        queries = self.query(mel)  # (B, d, F)
        distance = (queries.unsqueeze(3) - keys.unsqueeze(2)).pow(2).sum(dim=1)  # (B, F, T)
        # padding is masked before normalizing, so an item scores the same in any batch
        scores = (-self.temperature * distance).masked_fill(text_pad.unsqueeze(1), -1e4)
        if log_prior is not None:
            scores = torch.log_softmax(scores, dim=2) + log_prior
            scores = scores.masked_fill(text_pad.unsqueeze(1), -1e4)
        return scores, torch.softmax(scores, dim=2)


def _check_lengths(symbol_lengths: torch.Tensor, frame_lengths: torch.Tensor) -> None:
    short = (frame_lengths.cpu() < symbol_lengths.cpu()).nonzero().flatten().tolist()
    if short:
        row = short[0]
        raise ValueError(
            f"item {row} of the batch has {int(frame_lengths[row])} frames for "
            f"{int(symbol_lengths[row])} symbols: a monotonic alignment needs a frame per symbol"
        )


def forward_sum_loss(
    log_scores: torch.Tensor,
    symbol_lengths: torch.Tensor,
    frame_lengths: torch.Tensor,
    blank_log_prob: float = -1.0,
) -> torch.Tensor:
    """Negative log-likelihood of all monotonic alignments that visit every symbol in order,
    by CTC with the symbols as labels 1..T (mean over the batch, per symbol)."""
    _check_lengths(symbol_lengths, frame_lengths)
    batch = log_scores.shape[0]
    total = log_scores.new_zeros(())
    for row in range(batch):
        t, f = int(symbol_lengths[row]), int(frame_lengths[row])
        scores = log_scores[row, :f, :t]
        blank = scores.new_full((f, 1), blank_log_prob)
        log_probs = F.log_softmax(torch.cat([blank, scores], dim=1), dim=1)
        targets = torch.arange(1, t + 1, device=scores.device)
        total = total + F.ctc_loss(
            log_probs.unsqueeze(1),
            targets.unsqueeze(0),
            torch.tensor([f]),
            torch.tensor([t]),
            blank=0,
            reduction="sum",
        ) / max(t, 1)
    return total / batch


def hard_alignment(
    soft: torch.Tensor, symbol_lengths: torch.Tensor, frame_lengths: torch.Tensor
) -> torch.Tensor:
    """The most likely monotonic path through ``soft`` (B, F, T), as 0/1 (B, F, T); every symbol
    gets at least one frame (monotonic alignment search)."""
    from monotonic_alignment_search import maximum_path

    _check_lengths(symbol_lengths, frame_lengths)
    _, frames, symbols = soft.shape
    mask = (torch.arange(symbols)[None, :, None] < symbol_lengths.cpu()[:, None, None]) & (
        torch.arange(frames)[None, None, :] < frame_lengths.cpu()[:, None, None]
    )
    value = torch.log(soft.detach().cpu().float().clamp(min=1e-8)).transpose(1, 2)  # (B, T, F)
    path = maximum_path(value.contiguous(), mask.float())
    return path.transpose(1, 2).to(soft.device)


def durations_from_path(path: torch.Tensor) -> torch.Tensor:
    """Frames of each symbol (B, T) from a hard alignment (B, F, T)."""
    return path.sum(dim=1).round().long()


def binarization_loss(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Pull the soft alignment towards its hard path: -mean log soft over the path's cells."""
    chosen = torch.log(soft.clamp(min=1e-12))[hard > 0]
    return -chosen.sum() / hard.sum().clamp(min=1.0)
