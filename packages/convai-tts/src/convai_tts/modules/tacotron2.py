"""Layers of Tacotron 2 (Shen et al. 2018): the encoder, location-sensitive attention, the
autoregressive decoder and the postnet.

Sizes are the paper's unless a caller says otherwise (the model reads them from its config).
Everything works on padded batches and gives each item what it would get alone: the encoder masks
padding after every convolution and runs its backward LSTM over each item reversed within its
own length (two plain LSTMs instead of a packed bidirectional one, so the encoder exports to ONNX
with dynamic lengths); attention never looks at padding; the postnet masks padding before every
convolution.

The decoder's one step (:meth:`Tacotron2Decoder.step`) takes and returns its whole state as
tensors, so a runtime can run it as a graph of its own and loop it (see
:class:`~convai_tts.models.tacotron2.Tacotron2Model`).

Dimension letters: B batch, T symbols (encoder steps), F mel frames, C channels.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional

__all__ = [
    "DecoderState",
    "LocationSensitiveAttention",
    "Postnet",
    "Prenet",
    "Tacotron2Decoder",
    "Tacotron2Encoder",
    "padding_mask",
    "reverse_within_lengths",
]


def padding_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """True where a position is padding.

    Shapes:
        lengths: (B,); returns (B, size).
    """
    return torch.arange(size, device=lengths.device)[None, :] >= lengths[:, None]


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each item's first ``length`` steps in reverse order; the padding after them stays put.

    Shapes:
        x: (B, T, C), lengths: (B,); returns (B, T, C).
    """
    steps = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, T)
    mirrored = lengths[:, None] - 1 - steps  # (B, T)
    index = torch.where(mirrored >= 0, mirrored, steps)
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class Tacotron2Encoder(nn.Module):
    """Symbol embeddings -> ``convs`` x (convolution, BatchNorm, ReLU, dropout) -> a
    bidirectional LSTM with ``lstm_hidden`` units per direction.

    Args:
        embedding_dim: size of the incoming symbol embeddings.
        channels: channels of the convolutions (512 in the paper).
        convs: number of convolution blocks (3).
        kernel: their kernel size (5).
        dropout: dropout after each block (0.5).
        lstm_hidden: LSTM units per direction (256); the output has twice as many.
    """

    def __init__(
        self,
        embedding_dim: int,
        channels: int = 512,
        convs: int = 3,
        kernel: int = 5,
        dropout: float = 0.5,
        lstm_hidden: int = 256,
    ) -> None:
        super().__init__()
        blocks = []
        for index in range(int(convs)):
            source = embedding_dim if index == 0 else channels
            blocks.append(
                nn.Sequential(
                    nn.Conv1d(source, channels, kernel, padding=kernel // 2),
                    nn.BatchNorm1d(channels),
                )
            )
        self.convs = nn.ModuleList(blocks)
        self.dropout = float(dropout)
        width = channels if convs else embedding_dim
        self.forward_lstm = nn.LSTM(width, lstm_hidden, batch_first=True)
        self.backward_lstm = nn.LSTM(width, lstm_hidden, batch_first=True)
        self.output_dim = 2 * int(lstm_hidden)

    def forward(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Encoder states, zero on padding.

        Shapes:
            embedded: (B, T, C_in), lengths: (B,); returns (B, T, 2 * lstm_hidden).
        """
        keep = (~padding_mask(lengths, embedded.shape[1])).unsqueeze(1).to(embedded.dtype)
        x = embedded.transpose(1, 2) * keep  # (B, T, C) -> (B, C, T)
        for block in self.convs:
            x = torch.relu(block(x))
            x = functional.dropout(x, self.dropout, self.training) * keep
        x = x.transpose(1, 2)  # (B, C, T) -> (B, T, C)
        forward, _ = self.forward_lstm(x)
        backward, _ = self.backward_lstm(reverse_within_lengths(x, lengths))
        states = torch.cat([forward, reverse_within_lengths(backward, lengths)], dim=2)
        return states * keep.transpose(1, 2)


class LocationSensitiveAttention(nn.Module):
    """Additive attention whose energies also see where it attended before: the previous and the
    cumulative attention weights, through a convolution (``location_filters`` filters of width
    ``location_kernel``) and a projection.

    Args:
        query_dim: size of the query (the attention RNN's output).
        memory_dim: size of the encoder states.
        attention_dim: size of the space the energies are computed in (128).
        location_filters: filters of the location convolution (32).
        location_kernel: its width (31).
    """

    def __init__(
        self,
        query_dim: int,
        memory_dim: int,
        attention_dim: int = 128,
        location_filters: int = 32,
        location_kernel: int = 31,
    ) -> None:
        super().__init__()
        self.query = nn.Linear(query_dim, attention_dim, bias=False)
        self.memory = nn.Linear(memory_dim, attention_dim, bias=False)
        self.location_conv = nn.Conv1d(
            2, location_filters, location_kernel, padding=location_kernel // 2, bias=False
        )
        self.location_dense = nn.Linear(location_filters, attention_dim, bias=False)
        self.energy = nn.Linear(attention_dim, 1, bias=False)

    def process_memory(self, memory: torch.Tensor) -> torch.Tensor:
        """The memory's projection, computed once per utterance.

        Shapes:
            memory: (B, T, memory_dim); returns (B, T, attention_dim).
        """
        return self.memory(memory)

    def forward(
        self,
        query: torch.Tensor,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        weights: torch.Tensor,
        cumulative: torch.Tensor,
        pad: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The context vector and the new attention weights (zero on padding, summing to 1).

        Shapes:
            query: (B, query_dim), memory: (B, T, memory_dim), processed_memory:
            (B, T, attention_dim), weights and cumulative: (B, T), pad: (B, T) bool;
            returns context (B, memory_dim) and weights (B, T).
        """
        location = self.location_conv(torch.stack([weights, cumulative], dim=1))  # (B, 32, T)
        location = self.location_dense(location.transpose(1, 2))  # (B, T, attention_dim)
        hidden = torch.tanh(self.query(query).unsqueeze(1) + location + processed_memory)
        energies = self.energy(hidden).squeeze(2).masked_fill(pad, float("-inf"))  # (B, T)
        new_weights = torch.softmax(energies, dim=1)
        context = torch.bmm(new_weights.unsqueeze(1), memory).squeeze(1)  # (B, memory_dim)
        return context, new_weights


class Prenet(nn.Module):
    """``layers`` x (linear without bias, ReLU, dropout ``p``) over the previous mel frame.

    The dropout stays on at inference (the paper's remedy for a decoder that would otherwise
    copy its input) unless ``at_inference`` is False. A caller may pass the dropout masks
    itself (``keep``: 0 or ``1 / (1 - p)`` per unit and layer), as an exported decoder step
    does; ones mean no dropout.

    Args:
        n_mels: size of a mel frame.
        dim: units of each layer (256).
        layers: number of layers (2).
        dropout: dropout probability (0.5).
        at_inference: keep the dropout on in eval mode.
    """

    def __init__(
        self, n_mels: int, dim: int = 256, layers: int = 2, dropout: float = 0.5,
        at_inference: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        sizes = [n_mels] + [dim] * layers
        self.layers = nn.ModuleList(
            nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(sizes)
        )
        self.dim = int(dim)
        self.dropout = float(dropout)
        self.at_inference = bool(at_inference)

    @property
    def active(self) -> bool:
        """Whether the dropout applies now (training, or inference with ``at_inference``)."""
        return self.dropout > 0.0 and (self.training or self.at_inference)

    def draw_keep(
        self,
        batch: int,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> torch.Tensor:
        """Dropout masks for one step (ones when the dropout is not active).

        Shapes:
            returns (batch, layers * dim), 0 or ``1 / (1 - dropout)`` per unit.
        """
        size = (batch, len(self.layers) * self.dim)
        if not self.active:
            return torch.ones(size, device=device)
        kept = 1.0 - self.dropout
        probabilities = torch.full(size, kept, device=device)
        return torch.bernoulli(probabilities, generator=generator) / kept

    def forward(self, frames: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Shapes: frames (..., n_mels), keep (..., layers * dim) or None; returns (..., dim)."""
        x = frames
        for index, layer in enumerate(self.layers):
            x = torch.relu(layer(x))
            if keep is not None:
                x = x * keep[..., index * self.dim : (index + 1) * self.dim]
            else:
                x = functional.dropout(x, self.dropout, self.active)
        return x


class DecoderState(NamedTuple):
    """Everything one decoder step hands to the next.

    Shapes:
        attention_hidden, attention_cell: (B, attention_rnn_dim); decoder_hidden, decoder_cell:
        (B, decoder_rnn_dim); weights, cumulative: (B, T) attention weights of the last step and
        their running sum; context: (B, memory_dim), the last attention context.
    """

    attention_hidden: torch.Tensor
    attention_cell: torch.Tensor
    decoder_hidden: torch.Tensor
    decoder_cell: torch.Tensor
    weights: torch.Tensor
    cumulative: torch.Tensor
    context: torch.Tensor


class Tacotron2Decoder(nn.Module):
    """The autoregressive decoder: prenet -> attention LSTM cell -> location-sensitive attention
    -> decoder LSTM cell -> a linear projection to the next mel frame and to the stop gate's
    logit (both from the decoder output joined with the attention context). One frame per step.

    Args:
        n_mels: size of a mel frame.
        memory_dim: size of the encoder states.
        prenet_dim, prenet_layers, prenet_dropout, prenet_at_inference: see :class:`Prenet`.
        attention_rnn_dim: units of the attention LSTM cell (1024).
        attention_dim, location_filters, location_kernel: see
            :class:`LocationSensitiveAttention`.
        attention_dropout: dropout on the attention cell's output (0.1).
        decoder_rnn_dim: units of the decoder LSTM cell (1024).
        decoder_dropout: dropout on the decoder cell's output (0.1).
    """

    def __init__(
        self,
        n_mels: int,
        memory_dim: int,
        *,
        prenet_dim: int = 256,
        prenet_layers: int = 2,
        prenet_dropout: float = 0.5,
        prenet_at_inference: bool = True,
        attention_rnn_dim: int = 1024,
        attention_dim: int = 128,
        location_filters: int = 32,
        location_kernel: int = 31,
        attention_dropout: float = 0.1,
        decoder_rnn_dim: int = 1024,
        decoder_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_mels = int(n_mels)
        self.memory_dim = int(memory_dim)
        self.prenet = Prenet(n_mels, prenet_dim, prenet_layers, prenet_dropout, prenet_at_inference)
        self.attention_rnn = nn.LSTMCell(prenet_dim + memory_dim, attention_rnn_dim)
        self.attention = LocationSensitiveAttention(
            attention_rnn_dim, memory_dim, attention_dim, location_filters, location_kernel
        )
        self.decoder_rnn = nn.LSTMCell(attention_rnn_dim + memory_dim, decoder_rnn_dim)
        self.projection = nn.Linear(decoder_rnn_dim + memory_dim, n_mels)
        self.gate = nn.Linear(decoder_rnn_dim + memory_dim, 1)
        self.attention_dropout = float(attention_dropout)
        self.decoder_dropout = float(decoder_dropout)

    @property
    def prenet_keep_size(self) -> int:
        """Size of the prenet dropout masks a step takes (layers x units)."""
        return len(self.prenet.layers) * self.prenet.dim

    def initial_state(self, memory: torch.Tensor) -> DecoderState:
        """The all-zero state before the first step (memory: (B, T, memory_dim))."""
        batch, steps = memory.shape[0], memory.shape[1]
        attention = memory.new_zeros(batch, self.attention_rnn.hidden_size)
        decoder = memory.new_zeros(batch, self.decoder_rnn.hidden_size)
        weights = memory.new_zeros(batch, steps)
        context = memory.new_zeros(batch, self.memory_dim)
        return DecoderState(attention, attention, decoder, decoder, weights, weights, context)

    def step(
        self,
        prenet_out: torch.Tensor,
        state: DecoderState,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        pad: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """One frame from the prenet's view of the previous one.

        Shapes:
            prenet_out: (B, prenet_dim), memory: (B, T, memory_dim), processed_memory:
            (B, T, attention_dim), pad: (B, T) bool; returns the frame (B, n_mels), the gate
            logit (B,) and the new state.
        """
        cell_input = torch.cat([prenet_out, state.context], dim=1)
        attention_hidden, attention_cell = self.attention_rnn(
            cell_input, (state.attention_hidden, state.attention_cell)
        )
        attention_hidden = functional.dropout(
            attention_hidden, self.attention_dropout, self.training
        )
        context, weights = self.attention(
            attention_hidden, memory, processed_memory, state.weights, state.cumulative, pad
        )
        cumulative = state.cumulative + weights
        decoder_hidden, decoder_cell = self.decoder_rnn(
            torch.cat([attention_hidden, context], dim=1),
            (state.decoder_hidden, state.decoder_cell),
        )
        decoder_hidden = functional.dropout(decoder_hidden, self.decoder_dropout, self.training)
        joined = torch.cat([decoder_hidden, context], dim=1)
        frame = self.projection(joined)
        gate = self.gate(joined).squeeze(1)
        new_state = DecoderState(
            attention_hidden, attention_cell, decoder_hidden, decoder_cell, weights, cumulative,
            context,
        )  # fmt: skip
        return frame, gate, new_state

    def forward(
        self,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        pad: torch.Tensor,
        targets: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher forcing: each step reads the previous *target* frame (zeros before the first).

        Shapes:
            memory: (B, T, memory_dim), processed_memory: (B, T, attention_dim), pad: (B, T),
            targets: (B, n_mels, F); returns mel (B, n_mels, F), gate logits (B, F) and
            attention weights (B, F, T).
        """
        previous = torch.cat(
            [targets.new_zeros(targets.shape[0], targets.shape[1], 1), targets[:, :, :-1]], dim=2
        ).transpose(1, 2)  # (B, n_mels, F) -> (B, F, n_mels)
        prenet_out = self.prenet(previous)  # (B, F, prenet_dim)
        state = self.initial_state(memory)
        frames, gates, alignments = [], [], []
        for index in range(prenet_out.shape[1]):
            frame, gate, state = self.step(
                prenet_out[:, index], state, memory, processed_memory, pad
            )
            frames.append(frame)
            gates.append(gate)
            alignments.append(state.weights)
        return (
            torch.stack(frames, dim=2),
            torch.stack(gates, dim=1),
            torch.stack(alignments, dim=1),
        )

    @torch.no_grad()
    def infer(
        self,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        pad: torch.Tensor,
        max_steps: int,
        gate_threshold: float,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Free-running decoding: each item stops at the first frame whose gate probability
        passes ``gate_threshold`` (that frame included), or after ``max_steps`` frames; the loop
        ends when every item has stopped. With a ``generator`` the prenet's dropout masks are
        drawn from it (repeatable output); without, from torch's global generator.

        Shapes:
            memory: (B, T, memory_dim), processed_memory: (B, T, attention_dim), pad: (B, T);
            returns mel (B, n_mels, F) (frames after an item's end are its last states' output,
            to be masked by the caller), lengths (B,) and attention weights (B, F, T).
        """
        batch = memory.shape[0]
        state = self.initial_state(memory)
        frame = memory.new_zeros(batch, self.n_mels)
        lengths = torch.full((batch,), int(max_steps), dtype=torch.long, device=memory.device)
        stopped = torch.zeros(batch, dtype=torch.bool, device=memory.device)
        frames, alignments = [], []
        for index in range(int(max_steps)):
            keep = None
            if generator is not None:
                keep = self.prenet.draw_keep(batch, generator, memory.device)
            frame, gate, state = self.step(
                self.prenet(frame, keep), state, memory, processed_memory, pad
            )
            frames.append(frame)
            alignments.append(state.weights)
            stops = (torch.sigmoid(gate) > gate_threshold) & ~stopped
            lengths = torch.where(stops, torch.full_like(lengths, index + 1), lengths)
            stopped = stopped | stops
            if bool(stopped.all()):
                break
        return torch.stack(frames, dim=2), lengths, torch.stack(alignments, dim=1)


class Postnet(nn.Module):
    """A residual refinement of the decoder's mel: ``layers`` x (convolution, BatchNorm, tanh,
    dropout), the last without tanh, back to ``n_mels`` channels. Padding is zeroed before every
    convolution, so an item's frames do not depend on the batch's padding.

    Args:
        n_mels: mel bands.
        channels: channels of the inner convolutions (512).
        kernel: kernel size (5).
        layers: number of convolutions (5).
        dropout: dropout after each (0.5; off at inference).
    """

    def __init__(
        self, n_mels: int, channels: int = 512, kernel: int = 5, layers: int = 5,
        dropout: float = 0.5,
    ) -> None:  # fmt: skip
        super().__init__()
        sizes = [n_mels] + [channels] * (layers - 1) + [n_mels]
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv1d(a, b, kernel, padding=kernel // 2), nn.BatchNorm1d(b))
            for a, b in itertools.pairwise(sizes)
        )
        self.dropout = float(dropout)

    def forward(self, mel: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """The residual to add to ``mel`` (zero on padding).

        Shapes:
            mel: (B, n_mels, F), pad: (B, F) bool; returns (B, n_mels, F).
        """
        keep = (~pad).unsqueeze(1).to(mel.dtype)  # (B, 1, F)
        x = mel
        last = len(self.convs) - 1
        for index, conv in enumerate(self.convs):
            x = conv(x * keep)
            if index != last:
                x = torch.tanh(x)
            x = functional.dropout(x, self.dropout, self.training)
        return x * keep
